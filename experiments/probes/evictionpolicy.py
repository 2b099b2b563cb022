"""Redis's own eviction policies on the chatbot's mixed traffic, on a real server at a tight ``maxmemory``.

The stream of `experiments.models.traffic` is replayed as the orchestrator would send it — a GET, and on a
miss a SET of the family's value size (cache-aside) — through one Lua script per request, so the read and
the fill are one round trip and the hit is counted where it happens. Requests go in pipelined batches; the
count is bounded by ``requests`` and the time by ``timeout_s``.

Redis approximates both policies by sampling (``maxmemory-samples``, 5 by default): ``allkeys-lru`` evicts
the least recently used of the sampled keys, ``allkeys-lfu`` the least frequently used by a logarithmic
counter that decays by one per ``lfu-decay-time`` minute (1 by default). A replay runs the stream's minutes
in seconds, so the counters decay less than they would in production: the replay favours frequency.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from experiments.errors import ParameterError
from experiments.lab.servers import RedisServer
from experiments.models import peer
from experiments.models.traffic import FAMILIES, Trace
from experiments.results import Table

READ_OR_FILL = """
if redis.call('GET', KEYS[1]) then return 1 end
redis.call('SET', KEYS[1], string.rep('x', tonumber(ARGV[1])))
return 0
"""

POLICIES = ("allkeys-lru", "allkeys-lfu")


def replay(trace: Trace, *, policy: str, cache_bytes: int, requests: int, engine: str = "redis",
           batch: int = 500, timeout_s: float = 60.0) -> dict:
    """The first ``requests`` of the stream through a fresh server with ``maxmemory`` = its empty memory +
    ``cache_bytes`` and ``policy``: hit rate per family, keys evicted, the server's resident keys."""
    if policy not in POLICIES:
        raise ParameterError(f"policy={policy!r} is not one of {POLICIES}")
    if cache_bytes < 1 << 16 or requests < 1:
        raise ParameterError(f"cache_bytes={cache_bytes} must be at least 64 KiB and requests={requests} positive")
    entry, family = trace.entry[:requests], trace.family[:requests]
    sizes = trace.sizes[entry].astype(np.int64)
    flags = np.empty(entry.size, bool)
    with RedisServer(name=f"{engine}-{policy}", engine=engine) as server, server.client() as client:
        empty = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", empty + cache_bytes)
        client.config_set("maxmemory-policy", policy)
        script = client.register_script(READ_OR_FILL)
        deadline = time.monotonic() + timeout_s
        for start in range(0, entry.size, batch):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {policy} replay took over {timeout_s} s; give fewer requests")
            pipe = client.pipeline(transaction=False)
            for obj, size in zip(entry[start:start + batch].tolist(), sizes[start:start + batch].tolist()):
                script(keys=[f"o:{obj}"], args=[size], client=pipe)
            flags[start:start + batch] = pipe.execute()
        stats = client.info("stats")
        keys = int(client.dbsize())
        client.config_set("maxmemory", 0)  # sampling must not evict what it samples
        overhead = key_overhead(client)
        samples = int(client.config_get("maxmemory-samples")["maxmemory-samples"])
    out = {"policy": policy, "engine": engine, "requests": int(entry.size), "cache_mb": cache_bytes / 1e6,
           "hit_rate": float(flags.mean()), "evicted_keys": int(stats["evicted_keys"]), "resident_keys": keys,
           "maxmemory_samples": samples, "overhead_bytes": overhead}
    for i, name in enumerate(FAMILIES):
        mine = family == i
        out[f"{name}_hit_rate"] = float(flags[mine].mean()) if mine.any() else float("nan")
    return out


def key_overhead(client, keys: int = 200) -> float:
    """The mean memory (bytes) a resident key costs the server beside its value's bytes — the key, its object, the
    dictionary entry and jemalloc's size classes — by ``MEMORY USAGE key SAMPLES 0`` less ``STRLEN`` over up to
    ``keys`` keys. What the keys themselves cost, unlike ``maxmemory`` over the resident keys, which also counts
    the server's client buffers and moves with them by hundreds of bytes a key in a cache of a few hundred keys."""
    names = []
    for name in client.scan_iter(count=1000):
        names.append(name)
        if len(names) == keys:
            break
    if not names:
        return float("nan")
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.memory_usage(name, samples=0)
        pipe.strlen(name)
    replies = pipe.execute()
    return float(np.mean([int(used) - int(length) for used, length in zip(replies[::2], replies[1::2])]))


COMPARE = Table("evictionpolicy.COMPARE", (
    "policy", "engine", "requests", "cache_mb", "hit_rate", "evicted_keys", "resident_keys", "maxmemory_samples",
    *(f"{name}_hit_rate" for name in FAMILIES), "overhead_bytes", "origin_calls_per_s", "bytes_per_key"))
"""`compare`: Redis's policies, then libCacheSim's LRU and LFU (NaN where a simulator has no such count).
``bytes_per_key`` is the cache's bytes over its resident keys; ``overhead_bytes`` what a key costs beside its value
(`key_overhead`)."""


def compare(trace: Trace, *, cache_bytes: int, requests: int, engine: str = "redis") -> pd.DataFrame:
    """`replay` under ``allkeys-lru`` and ``allkeys-lfu``, and libCacheSim's exact LRU and LFU on the same
    requests and the same bytes beside them (a simulator counts value bytes only; the server also spends
    memory on each key, so it holds fewer items). Origin calls per second are the misses at the stream's rate."""
    rows = [replay(trace, policy=p, cache_bytes=cache_bytes, requests=requests, engine=engine) for p in POLICIES]
    prefix = Trace(trace.entry[:requests], trace.times[:requests], trace.family[:requests], trace.sizes,
                   trace.object_family)
    with peer.Stream(prefix.entry, prefix.times, prefix.sizes) as stream:
        for policy in ("lru", "lfu"):
            flags = stream.hit_flags(policy, cache_bytes)
            row = {"policy": policy.upper(), "engine": "libCacheSim", "requests": int(prefix.entry.size),
                   "cache_mb": cache_bytes / 1e6, "hit_rate": float(flags.mean())}
            for i, name in enumerate(FAMILIES):
                mine = prefix.family == i
                row[f"{name}_hit_rate"] = float(flags[mine].mean()) if mine.any() else float("nan")
            rows.append(row)
    table = pd.DataFrame(rows)
    span = float(prefix.times[-1] - prefix.times[0]) or 1.0
    table["origin_calls_per_s"] = (1 - table.hit_rate) * prefix.entry.size / span
    table["bytes_per_key"] = table.cache_mb * 1e6 / table.resident_keys
    COMPARE.check(table)
    return table
