"""Client-side caching from the libraries, on real servers: what redis-py and valkey-glide offer.

The book keeps its own near cache (`experiments.caches.nearcache`: ``CLIENT TRACKING`` with a flush
when the invalidation link comes back). Two libraries now offer one:

* `redis_py_refusal` — redis-py 8's ``CacheConfig`` refuses, at connect, any server whose ``HELLO``
  does not say ``server: redis`` at version 7.4 or later (``MIN_ALLOWED_VERSION`` in
  ``redis/connection.py``): Debian's Redis 7.0 and every Valkey are refused;
* `glide_cache` — valkey-glide's ``ClientSideCache`` with ``server_assisted=True`` (``CLIENT TRACKING
  ON BCAST``): reads served locally, a change seen through tracking, and what a dropped connection
  does — a change made while the link is down is never announced, so unless the cache is flushed on
  reconnect the old value is served until the entry's TTL. The drop and the change are one
  ``MULTI``/``EXEC``, so the change always falls in the gap (a killed connection is not written to).

glide's Python client is asynchronous; each experiment runs its own event loop in a worker thread, so
a notebook (whose kernel already runs a loop) can call it as it calls everything else.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import redis

from experiments.lab.quiet import quiet
from experiments.lab.servers import RedisServer, server_identity
from experiments.measure import chunk_stats, spread_between_rounds
from experiments.results import Table

ENTRY_TTL_MS = 1000
"""The glide cache's entry TTL here: short, so the stale window after a link drop is measured in full."""


REFUSAL = Table("clientcache.REFUSAL", ("engine", "hello_server", "hello_version", "redis_py_cache_accepted", "reason"))
"""`redis_py_refusal`'s record."""

GLIDE = Table("clientcache.GLIDE", (
    "engine", "version", "local_reads_of_100", "change_seen_p50_ms", "change_seen_max_ms", "change_seen_spread_ms",
    "tracked_connections", "stale_reads_after_drop", "stale_after_drop_s", "entry_ttl_s"))
"""`glide_cache`'s record (``stale_after_drop_s`` infinite: never seen within the bound)."""


def redis_py_refusal(server: RedisServer) -> dict:
    """Try redis-py's built-in client-side cache against ``server``; what the server says it is and whether
    redis-py accepts it (and its one-line reason if not)."""
    from redis.cache import CacheConfig

    hello = server.client(protocol=3, decode_responses=True).execute_command("HELLO", "3", "AUTH", "default",
                                                                              server.password)
    try:
        with server.client(protocol=3, cache_config=CacheConfig()) as cached:
            cached.ping()
        accepted, reason = True, ""
    except redis.ConnectionError as exc:
        accepted, reason = False, str(exc)
    return REFUSAL.record({"engine": server.engine.name, "hello_server": hello["server"],
                           "hello_version": hello["version"], "redis_py_cache_accepted": accepted, "reason": reason})


def _run(coroutine):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _glide_experiment(server: RedisServer, changes: int) -> dict:
    from glide import ClientSideCache, GlideClient, GlideClientConfiguration, NodeAddress, ProtocolVersion, ServerCredentials

    cache = ClientSideCache.create(max_cache_kb=1024, entry_ttl_ms=ENTRY_TTL_MS, server_assisted=True)
    config = GlideClientConfiguration([NodeAddress(server.host, server.port)], protocol=ProtocolVersion.RESP3,
                                      credentials=ServerCredentials(server.password), client_side_cache=cache,
                                      request_timeout=1000)
    glide = await GlideClient.create(config)
    admin = server.client()
    key = "promo:manga-home"
    try:
        admin.set(key, "v0")
        await glide.get(key)
        gets_before = admin.info("commandstats").get("cmdstat_get", {}).get("calls", 0)
        for _ in range(100):
            await glide.get(key)
        served_by_server = admin.info("commandstats").get("cmdstat_get", {}).get("calls", 0) - gets_before
        latencies = []
        for i in range(1, changes + 1):
            start = time.perf_counter()
            admin.set(key, f"v{i}")
            while (await glide.get(key)) != f"v{i}".encode():
                if time.perf_counter() - start > 2:
                    raise TimeoutError("glide's cache did not see a change within 2 s")
            latencies.append((time.perf_counter() - start) * 1000)
        tracked = [c["id"] for c in admin.client_list() if "t" in c["flags"]]
        drop = admin.pipeline(transaction=True)  # one MULTI: the change lands before glide can reconnect
        for client_id in tracked:
            drop.execute_command("CLIENT", "KILL", "ID", client_id)
        drop.set(key, "after-drop")
        drop.execute()
        dropped_at = time.perf_counter()
        stale_reads, fresh_at = 0, None
        while fresh_at is None and time.perf_counter() - dropped_at < 3 * ENTRY_TTL_MS / 1000:
            if await glide.get(key) == b"after-drop":
                fresh_at = time.perf_counter() - dropped_at
            else:
                stale_reads += 1
                await asyncio.sleep(0.05)
        identity = server_identity(admin)
    finally:
        await glide.close()
        admin.close()
    return GLIDE.record({
        "engine": server.engine.name, "version": identity["version"], "local_reads_of_100": 100 - served_by_server,
        "change_seen_p50_ms": float(np.median(latencies)), "change_seen_max_ms": float(np.max(latencies)),
        "change_seen_spread_ms": spread_between_rounds(chunk_stats(latencies, np.median)),
        "tracked_connections": len(tracked), "stale_reads_after_drop": stale_reads,
        "stale_after_drop_s": fresh_at if fresh_at is not None else float("inf"), "entry_ttl_s": ENTRY_TTL_MS / 1000})


def glide_cache(server: RedisServer, *, changes: int = 20) -> dict:
    """valkey-glide's server-assisted client-side cache on ``server``: the share of 100 reads served
    locally, how soon a change made by another client is seen (p50, max over ``changes``), and how long
    a change made while glide's connection was down stays unseen (bounded at three entry TTLs)."""
    with quiet("glide's client-side cache"):
        return _run(_glide_experiment(server, changes))
