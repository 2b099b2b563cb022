"""Keeping an ordered recommendation list under concurrent updates: Redis sorted set vs Memcached bytes.

Memcached stores bytes, so adding an item to a list means read, modify, write — and two writers
that interleave lose one update. ``gets``/``cas`` turns the write into compare-and-set: a writer
whose version is stale retries. A Redis sorted set does the update on the server in one command.
`concurrent_updates` runs ``writers`` threads, each adding ``updates`` new items, and reports lost
updates, retries, round trips, bytes moved and latency per update.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pandas as pd

from experiments.results import Table

KEY = "reco:u42:B08X1YRSTR"


def _redis_update(target, item: str, score: float, stats: dict) -> None:
    target.client.zadd(target.namespace + KEY, {item: score})
    stats["round_trips"] += 1
    stats["bytes"] += len(item) + 8


def _memcached_update(target, item: str, score: float, stats: dict, use_cas: bool) -> None:
    client, key = stats["client"], target.namespace + KEY
    while True:
        if use_cas:
            raw, token = client.gets(key)
        else:
            raw, token = client.get(key), None
        items = json.loads(raw) if raw else []
        items.append([item, score])
        items.sort(key=lambda pair: -pair[1])
        payload = json.dumps(items).encode()
        stats["round_trips"] += 2
        stats["bytes"] += len(raw or b"") + len(payload)
        if not use_cas:
            client.set(key, payload, noreply=False)
            return
        if client.cas(key, payload, token, noreply=False):
            return
        stats["retries"] += 1


def concurrent_updates(target, store: str, *, writers: int, updates: int) -> dict:
    """``writers`` threads each add ``updates`` distinct items to one list; what arrived, at what cost."""
    if store == "Redis sorted set":
        target.client.delete(target.namespace + KEY)
        target.key(KEY)
        apply = _redis_update
    else:
        target.client.set(target.key(KEY), b"[]", noreply=False)
        use_cas = store == "Memcached gets/cas"
        apply = lambda t, i, s, st: _memcached_update(t, i, s, st, use_cas)
    stats = [{"round_trips": 0, "bytes": 0, "retries": 0, "latency_ms": [],
              "client": target.new_client() if hasattr(target, "new_client") else target.client}
             for _ in range(writers)]
    barrier = threading.Barrier(writers)

    def writer(w: int) -> None:
        barrier.wait()
        for u in range(updates):
            start = time.perf_counter_ns()
            apply(target, f"B{w:03d}{u:05d}", float(w * updates + u), stats[w])
            stats[w]["latency_ms"].append((time.perf_counter_ns() - start) / 1e6)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stats:
        if s["client"] is not target.client:
            s["client"].close()
    if store == "Redis sorted set":
        stored = target.client.zcard(target.namespace + KEY)
    else:
        stored = len(json.loads(target.client.get(target.namespace + KEY)))
    total = writers * updates
    latencies = np.concatenate([s["latency_ms"] for s in stats])
    return {"store": store, "updates": total, "items_stored": stored, "lost_updates": total - stored,
            "retries": sum(s["retries"] for s in stats),
            "round_trips_per_update": sum(s["round_trips"] for s in stats) / total,
            "kb_moved_per_update": sum(s["bytes"] for s in stats) / total / 1024,
            "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99))}


COMPARE = Table("listupdates.COMPARE", ("store", "updates", "items_stored", "lost_updates", "retries",
                                        "round_trips_per_update", "kb_moved_per_update", "p50_ms", "p99_ms"))
"""`compare`: the Redis sorted set, Memcached get/set and Memcached gets/cas, in that order."""


def compare(redis_target, memcached_target, *, writers: int, updates: int) -> pd.DataFrame:
    """The three ways side by side."""
    return COMPARE.frame([
        concurrent_updates(redis_target, "Redis sorted set", writers=writers, updates=updates),
        concurrent_updates(memcached_target, "Memcached get/set", writers=writers, updates=updates),
        concurrent_updates(memcached_target, "Memcached gets/cas", writers=writers, updates=updates),
    ])
