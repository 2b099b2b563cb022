"""A near cache: an in-process L1 in front of Redis, whose entries Redis itself invalidates.

The seed says 60 in-process caches cannot be told to drop a promotion. Redis can tell them: with
``CLIENT TRACKING … BCAST PREFIX promo:`` it sends every client the name of each key under the
prefix that changes. Here every task is a separate OS process (``python -m experiments.caches.nearcache``)
with two connections to Redis — one for reads, one subscribed to ``__redis__:invalidate``, to which
the read connection's tracking messages are redirected (RESP2, as FIELD-NOTES advise for redis-py 8)
— and an L1 dictionary. Its modes:

* ``tracking`` — L1 entries are dropped when Redis says so. If the invalidation connection breaks,
  L1 is bypassed at once and flushed when the connection is back, because messages sent while it
  was down are lost;
* ``naive`` — the same, but without the flush on reconnect: what goes wrong if one forgets it;
* ``ttl`` — no tracking: entries live ``ttl_s`` seconds, the seed's per-task ``TTLCache``.

A read that races an invalidation (GET answered, then the key's invalidation handled before the
value is stored) does not store the value: each key has an epoch that invalidations advance.
Every worker also answers ``status``: the version of each promotion it holds, its age, hits,
misses, invalidations and flushes — the per-task view an operator needs for the seed's Q3.
The parent talks to the workers over stdin/stdout, one JSON object per line.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from experiments.caches.nearcache_worker import MODES, RECONNECT_DELAY_S
from experiments.errors import BookError, ParameterError
from experiments.lab.servers import RedisServer
from experiments.lab.workerpool import WorkerPool
from experiments.results import Table

# ----------------------------------------------------------------------------- the parent side

class Fleet:
    """``size`` worker processes ("tasks") with near caches in one mode, over one Redis server we own."""

    def __init__(self, server: RedisServer, *, size: int, mode: str, prefix: str, ttl_s: float = 60.0) -> None:
        if mode not in MODES:
            raise ParameterError(f"mode={mode!r} is not one of {MODES}")
        if size < 1:
            raise ParameterError(f"size={size} must be at least 1")
        self.server, self.size, self.mode, self.prefix, self.ttl_s = server, size, mode, prefix, ttl_s
        self.pool: WorkerPool | None = None

    def start(self) -> "Fleet":
        """Start every worker, then wait for each to say it is ready (they start in parallel)."""
        args = [self.server.host, str(self.server.port), self.server.password, self.prefix, self.mode, str(self.ttl_s)]
        self.pool = WorkerPool("nearcache", "experiments.caches.nearcache_worker", [args] * self.size).start()
        return self

    def call(self, index: int, **command) -> dict:
        """Send task ``index`` one command (``op=…`` and its arguments) and return its reply."""
        return self.pool.call(index, command)

    def all(self, **command) -> list[dict]:
        """The same command to every task, one after the other; the replies in task order."""
        return [self.call(i, **command) for i in range(self.size)]

    @property
    def pids(self) -> list[int]:
        """The workers' process ids, in task order."""
        return self.pool.pids

    def stop(self) -> None:
        """Stop every worker and remove their directory (nothing to do if the fleet never started)."""
        if self.pool is not None:
            self.pool.stop()

    def __enter__(self) -> "Fleet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def invalidation_latency_ms(fleet: Fleet, *, changes: int, key: str = "promo:manga-home") -> np.ndarray:
    """Time from just before a promotion changes to each task dropping it from L1, for every change."""
    full = fleet.prefix + key
    writer = fleet.server.client()
    samples = []
    try:
        writer.set(full, "v0")
        for change in range(1, changes + 1):
            fleet.all(op="read", key=full)  # every task holds the promotion
            fleet.all(op="drops")
            start = time.monotonic()
            writer.set(full, f"v{change}")
            deadline = time.monotonic() + 2
            pending = set(range(fleet.size))
            while pending and time.monotonic() < deadline:
                for i in list(pending):
                    drops = [t for k, t in fleet.call(i, op="drops")["drops"] if k == full]
                    if drops:
                        samples.append(1000 * (drops[0] - start))
                        pending.discard(i)
            if pending:
                raise BookError(f"tasks {sorted(pending)} never dropped {full} after change {change}")
    finally:
        writer.close()
    return np.array(samples)


def stale_reads(fleet: Fleet, *, rounds: int, reads_per_round: int, key: str = "promo:manga-home",
                pause_s: float = 0.02) -> dict[str, float]:
    """Change the promotion every round and read it from every task: the share of reads that were stale."""
    full = fleet.prefix + key
    writer = fleet.server.client()
    stale = total = 0
    try:
        for version in range(rounds):
            writer.set(full, f"v{version}")
            time.sleep(pause_s)
            for reply in fleet.all(op="read", key=full, times=reads_per_round):
                stale += sum(v != f"v{version}" for v in reply["values"])
                total += len(reply["values"])
    finally:
        writer.close()
    status = fleet.all(op="status")
    hits = sum(s["hits"] for s in status)
    return {"mode": fleet.mode, "reads": total, "stale_reads": stale, "stale_share": stale / total,
            "l1_hit_rate": hits / (hits + sum(s["misses"] for s in status))}


LINK_DROP = Table("nearcache.LINK_DROP", ("mode", "read_while_down", "read_after_reconnect", "stale_after_reconnect",
                                          "other_tasks_fresh", "link_drops", "flushes"))
"""`link_drop`'s record."""


def link_drop(fleet: Fleet, *, key: str = "promo:manga-home") -> dict:
    """Cut task 0's invalidation connection, change the promotion while it is down, then read it there."""
    full = fleet.prefix + key
    admin = fleet.server.client()
    try:
        admin.set(full, "before")
        time.sleep(0.05)  # let the invalidation of "before" arrive before the tasks cache it
        fleet.all(op="read", key=full)
        listener = fleet.call(0, op="status")["listener_id"]
        admin.execute_command("CLIENT", "KILL", "ID", listener)
        time.sleep(RECONNECT_DELAY_S / 4)  # the cut is seen; the task has not reconnected yet
        admin.set(full, "after")
        during = fleet.call(0, op="read", key=full)["values"][0]
        time.sleep(3 * RECONNECT_DELAY_S)  # reconnected by now
        after = fleet.call(0, op="read", key=full)["values"][0]
        others = [reply["values"][0] for reply in (fleet.call(i, op="read", key=full) for i in range(1, fleet.size))]
    finally:
        admin.close()
    status = fleet.call(0, op="status")
    return LINK_DROP.record({"mode": fleet.mode, "read_while_down": during, "read_after_reconnect": after,
                             "stale_after_reconnect": after != "after",
                             "other_tasks_fresh": all(v == "after" for v in others),
                             "link_drops": status["link_drops"], "flushes": status["flushes"]})


FLEET_STATUS = Table("nearcache.FLEET_STATUS", ("task", "pid", "holds", "held_for_s", "link_up", "hits", "misses",
                                                "invalidations", "flushes"))
"""`fleet_status`: one row per task (``holds`` None: the task holds no promotion)."""

COMPARE_WITH_TTL = Table("nearcache.COMPARE_WITH_TTL", ("cache", "reads", "stale_reads", "stale_share", "l1_hit_rate"))
"""`compare_with_ttl`: the tracked near cache, then one per-task TTL cache per TTL."""


def fleet_status(fleet: Fleet, key: str = "promo:manga-home") -> pd.DataFrame:
    """One row per task: the promotion version it holds and for how long, and its cache counters."""
    full = fleet.prefix + key
    rows = []
    for i, status in enumerate(fleet.all(op="status")):
        held = status["held"].get(full)
        rows.append({"task": i, "pid": status["pid"], "holds": held["value"] if held else None,
                     "held_for_s": held["age_s"] if held else None, "link_up": status["link_up"],
                     "hits": status["hits"], "misses": status["misses"], "invalidations": status["invalidations"],
                     "flushes": status["flushes"]})
    return FLEET_STATUS.frame(rows)


def odd_tasks(status: pd.DataFrame, current: str) -> list[int]:
    """Tasks whose cached promotion is not the current one (what an operator's check looks for)."""
    return status[status.holds.notna() & (status.holds != current)].task.tolist()


def compare_with_ttl(server: RedisServer, *, size: int, ttls_s: list[float], rounds: int, reads_per_round: int,
                     prefix: str) -> pd.DataFrame:
    """Stale reads and L1 hit rate of tracked near caches and of TTL-only caches, on the same workload."""
    rows = []
    with Fleet(server, size=size, mode="tracking", prefix=prefix) as fleet:
        rows.append({"cache": "near cache (CLIENT TRACKING)", **stale_reads(fleet, rounds=rounds,
                                                                            reads_per_round=reads_per_round)})
    for ttl in ttls_s:
        with Fleet(server, size=size, mode="ttl", prefix=prefix, ttl_s=ttl) as fleet:
            rows.append({"cache": f"per-task TTL cache, {ttl:g} s", **stale_reads(fleet, rounds=rounds,
                                                                                   reads_per_round=reads_per_round)})
    return COMPARE_WITH_TTL.frame({k: v for k, v in row.items() if k != "mode"} for row in rows)
