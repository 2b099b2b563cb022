"""Eviction policies on the chatbot's mixed traffic (`experiments.models.traffic`), simulated by libCacheSim.

* `sweep` — hit rate of each policy at each cache size (a fraction of the stream's working set, in
  bytes), from libCacheSim's compiled loop;
* `per_family` — at one size, which requests hit, per key family, and the origin calls per second the
  misses send at the stream's rates;
* `pools` — the same capacity split into a pool for the recommendations and one for the rest (Facebook's
  pools: keys that churn kept away from keys that stay), against one shared cache;
* `in_process` — one task's share of the traffic through the in-process libraries themselves:
  ``cachetools.LRUCache`` against ``theine`` (W-TinyLFU), with libCacheSim's W-TinyLFU beside theine's;
* `ttl_headroom` — with the TTL, what any policy could add to a per-task cache: LRU with the TTL against an
  unbounded cache with the same TTL (the book's exact replay).

libCacheSim's Python bindings (0.3.5) expire nothing — neither a per-request TTL nor a cache's default TTL —
so its comparisons are capacity-only: they hold where the TTL outlives an entry's time in the cache, which
is what a tight cache means. No TTL applies to the in-process library comparison either (theine's expiry
runs on the wall clock, which a replay compresses); `ttl_headroom` brings the TTL back with the book's replay.

libCacheSim's parameters are its defaults: S3-FIFO's small queue is 10 % of the cache with a move-to-main
threshold of 2; W-TinyLFU's window is a fixed 1 % with an SLRU main cache (Caffeine and theine adapt theirs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from cachetools import LRUCache
from tqdm import tqdm

from experiments.errors import ParameterError
from experiments.models import lrusim, peer
from experiments.models.traffic import FAMILIES, Trace

LABELS = {"lru": "LRU", "fifo": "FIFO", "s3fifo": "S3-FIFO", "sieve": "SIEVE", "wtinylfu": "W-TinyLFU", "lfu": "LFU"}


def working_set_bytes(trace: Trace) -> float:
    """Bytes of every object the stream reads at least once."""
    return float(trace.sizes[np.unique(trace.entry)].sum())


def sweep(trace: Trace, *, fractions: list[float], policies=peer.POLICIES, progress: bool = True) -> pd.DataFrame:
    """Hit rate of each policy at each cache size, a fraction of the working set's bytes."""
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise ParameterError(f"fractions={fractions!r} must be one or more shares of the working set in (0, 1]")
    whole = working_set_bytes(trace)
    rows = []
    with peer.Stream(trace.entry, trace.times, trace.sizes) as stream:
        for policy in tqdm(policies, desc="policies × sizes", disable=not progress):
            for fraction in fractions:
                hits = stream.hits(policy, fraction * whole)
                rows.append({"policy": LABELS[policy], "fraction": fraction, "capacity_mb": fraction * whole / 1e6,
                             "hit_rate": hits / trace.entry.size})
    return pd.DataFrame(rows)


def _family_rows(trace: Trace, flags: np.ndarray, **labels) -> list[dict]:
    span = float(trace.times[-1] - trace.times[0]) or 1.0
    rows = []
    for i, family in enumerate((*FAMILIES, "all")):
        mine = trace.family == i if family != "all" else np.ones(flags.size, bool)
        if mine.any():
            rows.append({**labels, "family": family, "hit_rate": float(flags[mine].mean()),
                         "origin_calls_per_s": float((~flags[mine]).sum()) / span})
    return rows


def per_family(trace: Trace, *, fraction: float, policies=peer.POLICIES, progress: bool = True) -> pd.DataFrame:
    """Per policy and family at one cache size: hit rate and the origin calls per second of its misses."""
    capacity = fraction * working_set_bytes(trace)
    rows = []
    with peer.Stream(trace.entry, trace.times, trace.sizes) as stream:
        for policy in tqdm(policies, desc="per-family replay", disable=not progress):
            rows += _family_rows(trace, stream.hit_flags(policy, capacity), policy=LABELS[policy])
    return pd.DataFrame(rows)


def pools(trace: Trace, *, fraction: float, policy: str, reco_shares: list[float]) -> pd.DataFrame:
    """One shared cache against two pools of the same total size — the recommendations in one, products,
    promotions and reviews in the other — for each share of the capacity given to the recommendations
    (0: recommendations are not cached at all, the rest has the whole capacity)."""
    capacity = fraction * working_set_bytes(trace)
    rest = tuple(f for f in FAMILIES if f != "reco")
    with peer.Stream(trace.entry, trace.times, trace.sizes) as stream:
        rows = _family_rows(trace, stream.hit_flags(policy, capacity), setup="one shared cache", reco_share=np.nan)
    for share in reco_shares:
        if not 0 <= share < 1:
            raise ParameterError(f"reco share {share} must lie in [0, 1)")
        flags = np.zeros(trace.entry.size, bool)
        for families, pool in ((("reco",), share * capacity), (rest, (1 - share) * capacity)):
            mine = np.isin(trace.family, [FAMILIES.index(f) for f in families])
            if pool >= 1:
                with peer.Stream(trace.entry[mine], trace.times[mine], trace.sizes) as stream:
                    flags[mine] = stream.hit_flags(policy, pool)
        label = f"pools, {100 * share:g} % for reco" if share else "recommendations not cached"
        rows += _family_rows(trace, flags, setup=label, reco_share=share)
    return pd.DataFrame(rows).assign(policy=LABELS[policy])


def ttl_headroom(trace: Trace, *, maxsizes: list[int], ttl_s: float) -> pd.DataFrame:
    """What any eviction policy could add to a per-task ``TTLCache`` on ``trace``: the hit rate of LRU with
    the TTL at each size (the book's exact replay of `cachetools.TTLCache`, eager expiry, entries counted)
    against a cache of unbounded size with the same TTL — an upper bound for every policy, since a policy
    only chooses what to evict and an unbounded cache evicts nothing."""
    ones = np.ones_like(trace.sizes)
    objects = float(np.unique(trace.entry).size)

    def hit(capacity: float) -> float:
        out = lrusim.replay(trace.entry, trace.times, ones, capacity=capacity, ttl_s=ttl_s, warmup_s=2 * ttl_s,
                            expiry="eager")
        return out["hit_rate"]

    bound = hit(objects)
    return pd.DataFrame([{"maxsize": n, "ttl_s": ttl_s, "lru_ttl_hit_rate": hit(n), "any_policy_bound": bound}
                         for n in maxsizes])


def _library_flags(cache_get, cache_set, entry: np.ndarray) -> np.ndarray:
    flags = np.empty(entry.size, bool)
    for i, key in enumerate(entry.tolist()):
        hit = cache_get(key)
        flags[i] = hit
        if not hit:
            cache_set(key)
    return flags


def in_process(trace: Trace, *, maxsizes: list[int]) -> pd.DataFrame:
    """One task's stream through ``cachetools.LRUCache`` and ``theine.Cache`` (W-TinyLFU) of ``maxsize``
    entries — the libraries themselves, one request at a time, as the task would call them — with
    libCacheSim's LRU and W-TinyLFU on the same stream beside them (entries counted, not bytes)."""
    from theine import Cache as Theine

    rows = []
    ones = np.ones_like(trace.sizes)
    for maxsize in maxsizes:
        if maxsize < 1:
            raise ParameterError(f"maxsize={maxsize} must be at least 1")
        lru = LRUCache(maxsize)
        rows += _family_rows(trace, _library_flags(lambda k: lru.get(k) is not None,
                                                   lambda k: lru.__setitem__(k, True), trace.entry),
                             library="cachetools LRUCache", maxsize=maxsize)
        tlfu = Theine(maxsize)
        try:
            rows += _family_rows(trace, _library_flags(lambda k: tlfu.get(k)[1], lambda k: tlfu.set(k, True),
                                                       trace.entry), library="theine (W-TinyLFU)", maxsize=maxsize)
        finally:
            tlfu.close()
        with peer.Stream(trace.entry, trace.times, ones) as stream:
            for policy in ("lru", "wtinylfu"):
                rows += _family_rows(trace, stream.hit_flags(policy, maxsize),
                                     library=f"libCacheSim {LABELS[policy]}", maxsize=maxsize)
    return pd.DataFrame(rows)
