"""The flash-sale collapse for real, at a size this machine holds: a real origin, a real Redis, a bounded load.

The origin is `experiments.caches.origin.OriginProcess`, a process of its own (a pool of ``workers`` slots, the
seed's 120 ms median, first come first served, blind to client timeouts). The load generator is an
asyncio loop in this process that sends requests at ``rate_per_s`` for ``duration_s`` — Poisson
arrivals, so a fixed, bounded number of them — to 127.0.0.1 only, each with the seed's 2 s client
timeout, and stops by itself. With ``redis`` set, each request is cache-aside on that real Redis:
GET, and on a miss the origin call and a SET with a TTL. Per second, it counts answers in time and
timeouts.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import redis.asyncio as aioredis

from experiments.caches.origin import OriginProcess
from experiments.errors import BookError, ParameterError
from experiments.lab.quiet import quiet
from experiments.lab.servers import RedisServer
from experiments.lab.spawner import LOOPBACK
from experiments.measure import spread_between_rounds
from experiments.results import Table
from experiments.seed import origin as seed_origin


async def _drive(port: int, *, rate_per_s: float, duration_s: float, timeout_s: float, keys: int, seed: int,
                 cache_url: str | None, ttl_s: int, live_share: float) -> list[tuple[float, str, float]]:
    rng = np.random.default_rng(seed)
    count = int(rate_per_s * duration_s)
    offsets = np.cumsum(rng.exponential(1 / rate_per_s, count))
    offsets = offsets[offsets < duration_s]
    weights = np.arange(1, keys + 1, dtype=float) ** -1.0
    chosen = rng.choice(keys, size=offsets.size, p=weights / weights.sum())
    live = rng.random(offsets.size) < live_share  # price and stock: read from the origin, never cached
    # a bounded pool that makes requests wait for a connection, as an orchestrator's client pool does
    cache = (aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        cache_url, protocol=2, max_connections=64, timeout=timeout_s)) if cache_url else None)
    loop = asyncio.get_running_loop()
    start = loop.time()
    results: list[tuple[float, str, float]] = []

    async def one(offset: float, key: str, is_live: bool) -> None:
        sent = loop.time()
        cached = cache is not None and not is_live
        try:
            async with asyncio.timeout(timeout_s):
                if cached and await cache.get(key) is not None:
                    results.append((offset, "hit", 1000 * (loop.time() - sent)))
                    return
                reader, writer = await asyncio.open_connection(LOOPBACK, port)
                try:
                    writer.write(f"GET {key}\n".encode())
                    await writer.drain()
                    answer = await reader.readline()
                finally:
                    writer.close()
                if cached:
                    await cache.set(key, answer, ex=ttl_s)
            results.append((offset, "answered", 1000 * (loop.time() - sent)))
        except (TimeoutError, aioredis.ConnectionError) as exc:
            timed_out = isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
            results.append((offset, "timed out" if timed_out else "refused", 1000 * (loop.time() - sent)))
        except OSError:
            results.append((offset, "refused", 1000 * (loop.time() - sent)))

    tasks = []
    for offset, key, is_live in zip(offsets.tolist(), chosen.tolist(), live.tolist()):
        delay = start + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        family = "price" if is_live else "product"
        tasks.append(asyncio.create_task(one(offset, f"cachebook:collapse:{family}:{key}", is_live)))
    await asyncio.gather(*tasks)
    if cache is not None:
        await cache.aclose()
    return results


def run(*, workers: int, rate_per_s: float, duration_s: float, timeout_s: float = 2.0, keys: int = 200,
        redis_server: RedisServer | None = None, ttl_s: int = 300, live_share: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """One bounded load run against a fresh origin; one row per request (second sent, outcome, ms).
    ``live_share`` of the requests are live reads (price, stock) that go to the origin even with a cache."""
    if rate_per_s <= 0 or duration_s <= 0 or rate_per_s * duration_s > 50_000:
        raise ParameterError("rate_per_s and duration_s must be positive and send at most 50,000 requests")
    if not 0 <= live_share <= 1:
        raise ParameterError(f"live_share={live_share} must lie in [0, 1]")
    cache_url = redis_server.url if redis_server is not None else None
    with OriginProcess(workers=workers, seed=seed) as origin:
        drive = _drive(origin.port, rate_per_s=rate_per_s, duration_s=duration_s, timeout_s=timeout_s, keys=keys,
                       seed=seed, cache_url=cache_url, ttl_s=ttl_s, live_share=live_share)
        # a thread of its own: a notebook's kernel already runs an event loop in this one
        with ThreadPoolExecutor(1) as pool:
            results = pool.submit(asyncio.run, drive).result()
    if redis_server is not None:
        client = redis_server.client()
        try:
            for key in client.scan_iter("cachebook:collapse:*"):
                client.delete(key)
        finally:
            client.close()
    frame = pd.DataFrame(results, columns=["sent_s", "outcome", "latency_ms"])
    return frame.assign(second=frame.sent_s.astype(int))


def per_second(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Requests per second by outcome (answered in time = answered or hit)."""
    ok = frame.outcome.isin(["answered", "hit"])
    grouped = frame.assign(ok=ok).groupby("second").agg(sent=("ok", "size"), in_time=("ok", "sum"))
    return grouped.assign(timed_out=grouped.sent - grouped.in_time, answered_share=grouped.in_time / grouped.sent,
                          setup=label).reset_index()


SUMMARY = Table("collapse.SUMMARY", (
    "setup", "requests", "answered_pct", "answered_spread_pct", "timed_out_pct", "hit_pct", "p50_ms", "p99_ms",
    "origin_goodput_per_s", "capacity_per_s"))
"""`experiment`'s summary: one row per setup (no cache, cache-aside, cache-aside with live reads)."""


def summary(frame: pd.DataFrame, label: str, *, capacity_per_s: float) -> dict[str, float]:
    """Share answered in time (with its spread between the run's seconds), its p50/p99, and the goodput in units
    of the origin's capacity."""
    ok = frame[frame.outcome.isin(["answered", "hit"])]
    seconds = max(1, frame.second.max() + 1)
    shares = 100 * per_second(frame, label).answered_share
    return SUMMARY.record({"setup": label, "requests": len(frame), "answered_pct": 100 * len(ok) / len(frame),
            "answered_spread_pct": spread_between_rounds(shares),
            "timed_out_pct": 100 * float((frame.outcome == "timed out").mean()),
            "hit_pct": 100 * float((frame.outcome == "hit").mean()),
            "p50_ms": float(ok.latency_ms.median()) if len(ok) else math.nan,
            "p99_ms": float(ok.latency_ms.quantile(0.99)) if len(ok) else math.nan,
            "origin_goodput_per_s": float((frame.outcome == "answered").sum() / seconds),
            "capacity_per_s": capacity_per_s})


LIVE_SETUP = "cache-aside on Redis, price and stock read live"


def experiment(redis_server: RedisServer, *, workers: int = 8, overload: float = 5.0, duration_s: float = 6.0,
               live_share: float = 0.5, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same overload without a cache, with cache-aside on real Redis, and with cache-aside when
    ``live_share`` of the requests are live reads no cache serves: per-second outcomes and a summary."""
    capacity = workers / (float(seed_origin("product").seed_origin_ms) / 1000)  # the origin's default service time
    rate = overload * capacity
    started = time.monotonic()
    with quiet("the same overload without a cache and with cache-aside"):
        plain = run(workers=workers, rate_per_s=rate, duration_s=duration_s, seed=seed)
        cached = run(workers=workers, rate_per_s=rate, duration_s=duration_s, redis_server=redis_server, seed=seed)
        live = run(workers=workers, rate_per_s=rate, duration_s=duration_s, redis_server=redis_server,
                   live_share=live_share, seed=seed)
    if time.monotonic() - started > 9 * (duration_s + 3):
        raise BookError("the collapse experiment overran its time bound; is the machine overloaded?")
    runs = {"no cache": plain, "cache-aside on Redis": cached, LIVE_SETUP: live}
    frames = pd.concat([per_second(frame, label) for label, frame in runs.items()], ignore_index=True)
    table = SUMMARY.frame(summary(frame, label, capacity_per_s=capacity) for label, frame in runs.items())
    return frames, table
