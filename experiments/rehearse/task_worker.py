"""An orchestrator's task processes in a rehearsal: turns sent on a schedule, each read cache-aside with the
design's timeouts and breaker, counted per second. Kept light (redis-py, sqlite3, numpy and the stdlib).

Run by `experiments.rehearse.run` through `experiments.lab.workerpool.WorkerPool` as
``python -m experiments.rehearse.task_worker``; it answers one JSON command per stdin line (``{"run": {...}}``)
with one JSON line: per second of the run, the turns sent and answered within the budget, and per family the
reads, hits, origin calls, stale hits, cache errors and reads the open breaker kept off the cache.

A turn reads each family with the family's share of the turn rate (the busiest family is read on every turn),
all its reads at once; it is answered within the budget if every read returned in time. A read of a cached
family GETs the key with the command timeout; on a miss it calls the origin (`OriginPool`) within what is left
of the budget, reads the key's version from the source, and SETs the
value with the family's TTL. An error or timeout of the cache counts against the breaker, which, open, sends
reads straight to the origin for its open time (a failed fill does not count against it). A hit is stale when
the source committed a newer version of the key than the cached one at least the invalidation grace earlier
(the changes are polled every 50 ms), and stale beyond its bound when that was more than the family's staleness
limit (as run) ago. A miss reads the key's version as the call reaches the origin, so a fill can carry an
old version past a delete (the stale-set race of cache-aside).
Values are ``<version>|`` and padding to the family's size.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

POLL_S = 0.05
"""How often a task process reads the source's new changes (to tell a stale hit)."""
TICK_S = 0.002
"""How often the schedule starts the turns that are due."""
WARM_CONNECTIONS = 32
"""Connections to the cache each task process opens before its first turn."""
LATE_S = 0.05
"""A turn sent later than this after its time counts as late: the process did not keep up with its schedule."""


def zipf_sampler(keys: int, alpha: float, rng: np.random.Generator):
    """Ranks 0..keys-1 drawn with probability ∝ (rank+1)^-alpha."""
    cdf = np.cumsum(np.arange(1, keys + 1, dtype=float) ** -alpha)
    cdf /= cdf[-1]
    return lambda n: np.minimum(np.searchsorted(cdf, rng.random(n)), keys - 1)


def arrivals(phases: list, rate_per_s: float, rng: np.random.Generator, *, slot_s: float = 0.01) -> np.ndarray:
    """Poisson arrival times (s) of a rate that follows the phases ``[seconds, start, end]`` (multiples of
    ``rate_per_s``, linear within a phase), drawn per 10 ms slot."""
    times, t0 = [], 0.0
    for seconds, start, end in phases:
        slots = max(1, round(seconds / slot_s))
        mid = (np.arange(slots) + 0.5) / slots
        counts = rng.poisson(rate_per_s * (start + (end - start) * mid) * seconds / slots)
        for i in np.nonzero(counts)[0]:
            times.append(t0 + (i + rng.random(counts[i])) * seconds / slots)
        t0 += seconds
    return np.sort(np.concatenate(times)) if times else np.empty(0)


class Breaker:
    """Open after ``failures`` consecutive cache errors; while open (``open_s``) reads skip the cache."""

    def __init__(self, failures: int, open_s: float) -> None:
        self.failures, self.open_s, self.count, self.until = failures, open_s, 0, 0.0

    def allow(self, now: float) -> bool:
        """Whether a read may try the cache at ``now``."""
        return now >= self.until

    def result(self, ok: bool, now: float) -> None:
        """Count a cache call's outcome; open the breaker after enough failures in a row."""
        self.count = 0 if ok else self.count + 1
        if self.count >= self.failures:
            self.until, self.count = now + self.open_s, 0


class Counts:
    """Per-second counters of the run, as JSON-ready lists."""

    FAMILY = ("reads", "hits", "origin_calls", "stale_hits", "stale_beyond_bound", "cache_errors", "breaker_open",
              "origin_errors")

    def __init__(self, seconds: int, families: list[str]) -> None:
        self.turns = [0] * seconds
        self.in_budget = [0] * seconds
        self.family = {f: {k: [0] * seconds for k in self.FAMILY} for f in families}
        self.stale_age_ms = {f: 0.0 for f in families}

    def add(self, family: str, what: str, second: int) -> None:
        """One more of ``what`` for ``family`` in ``second`` (outside the run: not counted)."""
        column = self.family[family][what]
        if 0 <= second < len(column):
            column[second] += 1


class Source:
    """The source's versions as this process last read them (`POLL_S`): key -> (version, committed at)."""

    def __init__(self, path: str | None) -> None:
        self.db = sqlite3.connect(path, timeout=5, check_same_thread=False) if path else None
        self.latest: dict[str, tuple[int, float]] = {}
        self.seen = 0

    def version(self, key: str) -> int:
        """The key's version in the source now (0: never changed), as the origin serves it."""
        if self.db is None:
            return 0
        row = self.db.execute("SELECT version FROM items WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def poll(self) -> None:
        """Read the changes committed since the last poll."""
        if self.db is None:
            return
        for seq, key, version, at in self.db.execute(
                "SELECT seq, key, version, committed_at FROM changes WHERE seq > ? ORDER BY seq", (self.seen,)):
            self.latest[key] = (int(version), float(at))
            self.seen = int(seq)


class OriginPool:
    """The task process's connections to the origin: at most ``size``, reused. A call waits for a free connection
    within its timeout; once sent, a request the caller gave up on keeps its connection until the origin answers
    (the origin serves it anyway), as a client pool's connection stays busy with an abandoned request."""

    def __init__(self, port: int, size: int) -> None:
        self.port, self.size, self.opened = port, size, 0
        self.free: asyncio.Queue = asyncio.Queue()
        self.sent: set[asyncio.Task] = set()

    async def _acquire(self):
        if self.free.empty() and self.opened < self.size:
            self.opened += 1
            try:
                return await asyncio.open_connection("127.0.0.1", self.port)
            except BaseException:
                self.opened -= 1
                raise
        return await self.free.get()

    async def _exchange(self, connection, key: str) -> None:
        reader, writer = connection
        try:
            writer.write(f"GET {key}\n".encode())
            await writer.drain()
            if not await reader.readline():
                raise ConnectionError("the origin closed the connection")
        except BaseException:
            writer.close()
            self.opened -= 1
            raise
        self.free.put_nowait(connection)

    async def call(self, key: str, timeout_s: float) -> None:
        """One origin call for ``key`` within ``timeout_s`` (TimeoutError if it did not answer in time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        connection = await asyncio.wait_for(self._acquire(), timeout_s)
        exchange = asyncio.ensure_future(self._exchange(connection, key))
        self.sent.add(exchange)
        exchange.add_done_callback(self.sent.discard)
        await asyncio.wait_for(asyncio.shield(exchange), max(0.001, deadline - loop.time()))

    async def close(self) -> None:
        """Drop the requests still in flight (their callers gave up long ago) and the connections."""
        for exchange in list(self.sent):
            exchange.cancel()
        await asyncio.gather(*self.sent, return_exceptions=True)
        while not self.free.empty():
            self.free.get_nowait()[1].close()


async def drive(spec: dict) -> dict:
    """One run (see the module); ``spec`` as `experiments.rehearse.run` sends it."""
    rng = np.random.default_rng(spec["seed"])
    families = spec["families"]
    busiest = max(f["rate_per_s"] for f in families)
    times = arrivals(spec["phases"], busiest, rng)
    if times.size > spec["max_turns"]:
        raise ValueError(f"{times.size} turns exceed the bound of {spec['max_turns']}")
    seconds = int(np.ceil(sum(p[0] for p in spec["phases"]))) + 1
    counts = Counts(seconds, [f["name"] for f in families])
    samplers = {f["name"]: zipf_sampler(f["keys"], f["alpha"], rng) for f in families}
    keys = {f["name"]: samplers[f["name"]](times.size) for f in families}
    reads = {f["name"]: rng.random(times.size) < f["rate_per_s"] / busiest for f in families}
    cache = None
    if spec.get("cache"):
        c = spec["cache"]
        cache = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool(
            host=c["host"], port=c["port"], password=c["password"], protocol=2, max_connections=spec["connections"],
            socket_timeout=spec["command_timeout_s"], socket_connect_timeout=spec["connect_timeout_s"],
            timeout=spec["command_timeout_s"]))
    if cache is not None:  # the pool's connections open before the run, as a task's do when it starts; one that
        # does not open within the connect timeout (a busy machine) opens during the run, or counts as a cache error
        await asyncio.gather(*(cache.ping() for _ in range(min(spec["connections"], WARM_CONNECTIONS))),
                             return_exceptions=True)
    breaker = Breaker(spec["breaker_failures"], spec["breaker_open_s"])
    origin = OriginPool(spec["origin_port"], spec["origin_connections"])
    source = Source(spec.get("source"))
    grace = spec["stale_grace_s"]
    budget = spec["budget_s"]
    loop = asyncio.get_running_loop()
    start = loop.time() + max(0.0, spec["start_at"] - time.time())

    async def read(f: dict, rank: int, second: int, deadline: float) -> bool:
        name, key = f["name"], f"{spec['prefix']}{f['name']}:{rank}"
        counts.add(name, "reads", second)
        use_cache = cache is not None and f["cacheable"]
        if use_cache and not breaker.allow(loop.time()):
            counts.add(name, "breaker_open", second)
            use_cache = False
        if use_cache:
            try:
                value = await cache.get(key)  # within the client's socket timeout, the command timeout
                breaker.result(True, loop.time())
            except (RedisError, OSError, TimeoutError):
                breaker.result(False, loop.time())
                counts.add(name, "cache_errors", second)
                value, use_cache = None, False
            if value is not None:
                counts.add(name, "hits", second)
                version = int(value.split(b"|", 1)[0])
                latest = source.latest.get(key)
                age = time.time() - latest[1] if latest and latest[0] > version else 0.0
                if age > grace:
                    counts.add(name, "stale_hits", second)
                    counts.stale_age_ms[name] = max(counts.stale_age_ms[name], 1000 * age)
                if age > max(grace, f["stale_bound_s"]):
                    counts.add(name, "stale_beyond_bound", second)
                return loop.time() <= deadline
        counts.add(name, "origin_calls", second)
        version = source.version(key)  # the origin reads the source when the call arrives
        try:
            await origin.call(key, max(0.001, deadline - loop.time()))
        except (OSError, TimeoutError, ConnectionError):
            counts.add(name, "origin_errors", second)
            return False
        if use_cache:
            body = f"{version}|".encode().ljust(f["value_bytes"], b"x")
            try:
                await cache.set(key, body, px=max(1, round(1000 * f["ttl_s"])))
            except (RedisError, OSError, TimeoutError):
                counts.add(name, "cache_errors", second)
        return loop.time() <= deadline

    async def turn(i: int) -> None:
        sent = loop.time()
        second = int(sent - start)
        mine = [f for f in families if reads[f["name"]][i]]
        answers = await asyncio.gather(*(read(f, int(keys[f["name"]][i]), second, sent + budget) for f in mine))
        if 0 <= second < seconds:
            counts.turns[second] += 1
            counts.in_budget[second] += all(answers)

    async def poller() -> None:
        while True:
            source.poll()
            await asyncio.sleep(POLL_S)

    polling = loop.create_task(poller())
    running: set[asyncio.Task] = set()  # only the turns in flight: a finished turn is dropped at once
    late, i = 0, 0
    while i < times.size:  # every turn due is started at each tick (a sleep per turn would cost more than the turn)
        now = loop.time() - start
        while i < times.size and times[i] <= now:
            late += now - times[i] > LATE_S
            task = loop.create_task(turn(i))
            running.add(task)
            task.add_done_callback(running.discard)
            i += 1
        await asyncio.sleep(TICK_S)
    await asyncio.gather(*running)
    polling.cancel()
    await origin.close()
    if cache is not None:
        await cache.aclose()
    return {"turns": counts.turns, "in_budget": counts.in_budget, "families": counts.family,
            "stale_age_ms": counts.stale_age_ms, "late_turns": int(late)}


async def calibrate(spec: dict) -> dict:
    """The highest rate of turns (one cached read each, on warm keys) this process keeps to its schedule beside the
    others: `drive` itself for ``seconds`` at each of ``rates`` in turn, until one starts over 1 % of its turns
    late or loses one; what the rehearsal may offer is a share of it (`experiments.rehearse.plan.MACHINE_SHARE`)."""
    c = spec["cache"]
    cache = aioredis.Redis(host=c["host"], port=c["port"], password=c["password"], protocol=2)
    keys = 100
    for rank in range(keys):
        await cache.set(f"{spec['prefix']}calibrate:{rank}", b"0|".ljust(spec["value_bytes"], b"x"), px=600_000)
    kept = 0.0
    for rate in spec["rates"]:
        run = {"cache": c, "origin_port": 1, "prefix": spec["prefix"], "source": None, "seed": 1,
               "families": [{"name": "calibrate", "keys": keys, "alpha": 1.0, "ttl_s": 600, "stale_bound_s": 600,
                             "cacheable": True, "value_bytes": spec["value_bytes"], "rate_per_s": rate}],
               "phases": [[spec["seconds"], 1, 1]], "start_at": time.time() + 0.2, "max_turns": 10 ** 6,
               **{k: spec[k] for k in ("budget_s", "command_timeout_s", "connect_timeout_s", "connections",
                                       "origin_connections", "stale_grace_s", "breaker_failures", "breaker_open_s")}}
        out = await drive(run)
        turns = sum(out["turns"])
        if out["late_turns"] > 0.01 * turns or sum(out["in_budget"]) < turns:
            break
        kept = rate
    for rank in range(keys):
        await cache.delete(f"{spec['prefix']}calibrate:{rank}")
    await cache.aclose()
    return {"reads_per_s": kept}


def main() -> None:
    """Answer JSON commands on stdin until it closes (see the module)."""
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        try:
            reply = asyncio.run(drive(command["run"]) if "run" in command else calibrate(command["calibrate"]))
        except Exception as exc:  # one line back to the parent, which raises it there
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
