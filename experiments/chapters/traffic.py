"""The traffic chapter ("The traffic and the eviction policy"): its numbers, findings and ledger rows.

The stream is `experiments.models.traffic`'s mixed key families; the policies are libCacheSim's
(`experiments.models.policies`), Redis's own (`experiments.probes.evictionpolicy`) and the in-process
libraries'; the peer check sets the book's replay (`experiments.models.lrusim`) beside libCacheSim's LRU.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments import rules
from experiments.models import lrusim, peer
from experiments.models.traffic import ChatTraffic, Trace, family_bytes, parameter, zipf_ranks
from experiments.seed import figure, service_default

PROOF = "traffic.ipynb"
TASKS = int(figure("task_count"))

FRACTIONS = [0.003, 0.01, 0.03, 0.1, 0.3]
"""Cache sizes of the sweep, as shares of the stream's working set (bytes)."""

TIGHT = 0.01
"""The tight cache the per-family, pool and Redis comparisons use: 1 % of the stream's working set."""

RECO_SHARES = [0.1, 0.25, 0.5]
"""Shares of the capacity given to a pool of the recommendations alone."""

TASK_ENTRIES = [1000, int(figure("product_cache_entries"))]
"""The in-process sizes the note uses: 1,000 entries (its Q1) and its ``TTLCache(maxsize=5000)``."""


def chat_traffic(alpha: float, *, launch_at_s: float = math.inf) -> ChatTraffic:
    """The note's turns (one product read each, 40,000 a minute) with the product exponent the in-process
    chapter calibrates, and a launch at ``launch_at_s``."""
    return ChatTraffic(product_alpha=alpha, launch_at_s=launch_at_s)


def peer_check(trace: Trace, *, fraction: float) -> dict[str, int]:
    """The book's LRU replay and libCacheSim's on the same stream and capacity: the hits each counts."""
    capacity = fraction * float(trace.sizes[np.unique(trace.entry)].sum())
    book = lrusim.replay(trace.entry, trace.times, trace.sizes, capacity=capacity, ttl_s=math.inf, warmup_s=0,
                         expiry="lazy")["hits"]
    with peer.Stream(trace.entry, trace.times, trace.sizes) as stream:
        return {"requests": int(trace.entry.size), "book_hits": int(book), "peer_hits": int(stream.hits("lru", capacity))}


THROUGHPUT_STREAM = {"objects": 500_000, "alpha": 1.0, "entries": 50_000}
"""The stream both LRUs are timed on: Zipf(1.0) reads over 500K objects into a 50K-entry cache — long
enough (millions of requests) that the loop, not the set-up, is timed."""


def throughput(*, requests: int, seed: int, repeats: int = 2) -> dict[str, float]:
    """Requests per second of the book's replay and of libCacheSim's LRU on `THROUGHPUT_STREAM`, each the best
    of ``repeats`` runs (the least disturbed; the replay compiled first), and the hit rate both count."""
    t = THROUGHPUT_STREAM
    entry = zipf_ranks(np.random.default_rng(seed), requests, t["objects"], t["alpha"])
    times, ones = np.arange(requests) / 1e4, np.ones(t["objects"])

    def timed(run) -> tuple[int, float]:
        best, hits = math.inf, 0
        for _ in range(repeats):
            start = time.perf_counter()
            hits = run()
            best = min(best, time.perf_counter() - start)
        return hits, best

    def replay() -> int:
        return lrusim.replay(entry, times, ones, capacity=t["entries"], ttl_s=math.inf, warmup_s=0, expiry="lazy")["hits"]

    lrusim.replay(entry[:100], times[:100], ones, capacity=t["entries"], ttl_s=math.inf, warmup_s=0, expiry="lazy")
    book_hits, book_s = timed(replay)
    with peer.Stream(entry, times, ones) as stream:
        peer_hits, peer_s = timed(lambda: stream.hits("lru", t["entries"]))
    return {"requests": requests, "same_hits": book_hits == peer_hits, "hit_rate": book_hits / requests,
            "book_mreq_per_s": requests / book_s / 1e6, "peer_mreq_per_s": requests / peer_s / 1e6,
            "replay_over_peer": peer_s / book_s}


def ttl_working_set_gb(traffic: ChatTraffic) -> float:
    """An upper bound on what the TTLs let a cache hold: every product and review of the catalog, and the
    recommendations and promotions read within their TTLs, at the key design's sizes and TTLs."""
    sizes, reco_ttl = family_bytes(), figure("promo_ttl_s")  # reco and promo share the 15-minute TTL
    return (traffic.catalog * (sizes["product"] + sizes["review"]) + traffic.turns_per_s * reco_ttl * sizes["reco"]
            + traffic.sections * sizes["promo"]) / 1e9


def note_node_usable_gb() -> float:
    """The note's DAX-sized node (13 GB) less ElastiCache's reserved memory: what a cache node of the note's
    size can hold."""
    return figure("dax_node_gb") * (1 - service_default("elasticache_reserved_memory_pct") / 100)


@dataclass
class TrafficResults:
    wonders: pd.DataFrame
    sweep: pd.DataFrame
    per_family: pd.DataFrame
    pools: pd.DataFrame
    redis: pd.DataFrame
    in_process: pd.DataFrame
    peer: dict
    speed: dict
    traffic: ChatTraffic


def _hit(frame: pd.DataFrame, family: str = "all", **where) -> float:
    rows = frame[frame.family == family]
    for column, value in where.items():
        rows = rows[rows[column] == value]
    return float(rows.hit_rate.iloc[0])


def _best(per_family: pd.DataFrame) -> str:
    """The policy with the highest hit rate over all families (the first in `policies.LABELS` order on a tie)."""
    return str(per_family[per_family.family == "all"].set_index("policy").hit_rate.idxmax())


def headline(r: TrafficResults) -> dict[str, float | str]:
    """Numbers quoted by the chapter's prose and the decision record."""
    pf, wonders = r.per_family, r.wonders.set_index("family")
    best = _best(pf)
    calls = pf[pf.family == "all"].set_index("policy").origin_calls_per_s
    big = r.sweep[r.sweep.fraction == max(FRACTIONS)].set_index("policy").hit_rate
    pools = r.pools[r.pools.setup != "one shared cache"]
    best_pool = pools[pools.family == "product"].sort_values("hit_rate").iloc[-1]
    redis = r.redis.set_index("policy")
    lib = r.in_process
    return {
        "requests": int(r.peer["requests"]), "turns_per_s": r.traffic.turns_per_s,
        "reco_one_hit_pct": 100 * float(wonders.loc["reco", "one_hit_share"]),
        "all_one_hit_pct": 100 * float(wonders.loc["all", "one_hit_share"]),
        "published_one_hit_full_pct": 100 * parameter("one_hit_full"),
        "published_one_hit_10_pct": 100 * parameter("one_hit_10pct"),
        "tight_pct": 100 * TIGHT, "best_policy": best,
        "lru_hit_pct": 100 * _hit(pf, policy="LRU"), "best_hit_pct": 100 * _hit(pf, policy=best),
        "lru_product_pct": 100 * _hit(pf, "product", policy="LRU"), "best_product_pct": 100 * _hit(pf, "product", policy=best),
        "lru_calls_per_s": float(calls["LRU"]), "best_calls_per_s": float(calls[best]),
        "fifo_hit_pct": 100 * _hit(pf, policy="FIFO"),
        "big_pct": 100 * max(FRACTIONS), "big_lru_pct": 100 * float(big["LRU"]),
        "big_best_other_pct": 100 * float(big.drop("LRU").max()), "big_best_other": str(big.drop("LRU").idxmax()),
        "shared_product_pct": 100 * _hit(r.pools, "product", setup="one shared cache"),
        "pool_product_pct": 100 * float(best_pool.hit_rate), "pool_setup": str(best_pool.setup),
        "pool_all_pct": 100 * _hit(r.pools, setup=best_pool.setup),
        "shared_all_pct": 100 * _hit(r.pools, setup="one shared cache"),
        "redis_lru_pct": 100 * float(redis.loc["allkeys-lru", "hit_rate"]),
        "redis_lfu_pct": 100 * float(redis.loc["allkeys-lfu", "hit_rate"]),
        "redis_lru_product_pct": 100 * float(redis.loc["allkeys-lru", "product_hit_rate"]),
        "redis_lfu_product_pct": 100 * float(redis.loc["allkeys-lfu", "product_hit_rate"]),
        "redis_requests": int(redis.requests.iloc[0]), "redis_cache_mb": float(redis.cache_mb.iloc[0]),
        "redis_samples": int(redis.maxmemory_samples.iloc[0]),
        **{f"{name}_{n}_pct": 100 * _hit(lib, library=library, maxsize=n)
           for name, library in (("cachetools", "cachetools LRUCache"), ("theine", "theine (W-TinyLFU)"),
                                 ("lcs_lru", "libCacheSim LRU"), ("lcs_tlfu", "libCacheSim W-TinyLFU"))
           for n in TASK_ENTRIES},
        "book_mreq_per_s": float(r.speed["book_mreq_per_s"]), "peer_mreq_per_s": float(r.speed["peer_mreq_per_s"]),
        "replay_speedup": float(r.speed["replay_over_peer"]), "speed_requests": int(r.speed["requests"]),
        "speed_hit_pct": 100 * float(r.speed["hit_rate"]),
        "ttl_working_set_gb": ttl_working_set_gb(r.traffic), "node_usable_gb": note_node_usable_gb(),
    }


def findings(r: TrafficResults) -> dict[str, bool]:
    """The chapter's conclusions as statements that must hold (margins wide of the measured values)."""
    h = headline(r)
    lib = r.in_process
    theine_gap = max(abs(_hit(lib, library="theine (W-TinyLFU)", maxsize=n)
                         - _hit(lib, library="libCacheSim W-TinyLFU", maxsize=n)) for n in TASK_ENTRIES)
    lru_same = all(_hit(lib, library="cachetools LRUCache", maxsize=n) == _hit(lib, library="libCacheSim LRU", maxsize=n)
                   for n in TASK_ENTRIES)
    return {
        "the book's replay and libCacheSim's LRU count the same hits on the mixed stream and the timed one":
            r.peer["book_hits"] == r.peer["peer_hits"] and bool(r.speed["same_hits"]),
        "the book's replay runs faster than libCacheSim's LRU on the same stream (so the book keeps it)":
            h["replay_speedup"] > 1,
        "cachetools' LRUCache and libCacheSim's LRU count the same hits on a task's stream": lru_same,
        "theine's W-TinyLFU is within 2 points of libCacheSim's": theine_gap < 0.02,
        "most recommendation keys are read once (one-hit wonders)": h["reco_one_hit_pct"] > 40,
        "in a tight cache a frequency-aware policy hits at least 1 point more than LRU":
            h["best_policy"] != "LRU" and h["best_hit_pct"] >= h["lru_hit_pct"] + 1,
        "in a large cache LRU hits at least as much as every other policy (sessions re-read recent keys)":
            h["big_lru_pct"] >= h["big_best_other_pct"],
        "a pool of their own for the recommendations raises the products' hit rate by over 1 point":
            h["pool_product_pct"] >= h["shared_product_pct"] + 1,
        "Redis's allkeys-lfu hits at least 1 point more than allkeys-lru at a tight maxmemory":
            h["redis_lfu_pct"] >= h["redis_lru_pct"] + 1,
        "the note's 13 GB node holds everything the TTLs keep, so no policy changes its hit rate":
            h["ttl_working_set_gb"] < h["node_usable_gb"],
    }


def record_claims(ledger, r: TrafficResults) -> pd.DataFrame:
    """This chapter's ledger row: the note's choice of an LRU for the in-process cache, judged at its own
    ``TTLCache(maxsize=5000)`` against W-TinyLFU on the same task's stream — libCacheSim's, which is
    deterministic, so the verdict does not move with theine's buffered bookkeeping (theine's is quoted)."""
    h = headline(r)
    n = int(figure("product_cache_entries"))
    ledger.record(
        "traffic.in-process-lru-policy", claim="An LRU (cachetools) is the policy for the per-task cache",
        seed_value="LRU, TTLCache(maxsize=5000)",
        measured=(f"on one task's mixed stream at {n:,} entries, LRU {h[f'cachetools_{n}_pct']:.1f} % against "
                  f"W-TinyLFU {h[f'lcs_tlfu_{n}_pct']:.1f} % (theine {h[f'theine_{n}_pct']:.1f} %); at 1,000 entries "
                  f"{h['cachetools_1000_pct']:.1f} % against {h['lcs_tlfu_1000_pct']:.1f} %"),
        rule=rules.close_to(h[f"lcs_tlfu_{n}_pct"], h[f"cachetools_{n}_pct"], unit="% hit rate", tolerance=0.01,
                            partly=0.05),
        inputs=("product_cache_entries",), proof=f"{PROOF}#in-process-cachetools-against-theine")
    return ledger.table()
