"""The traffic chapter ("The traffic and the eviction policy"): its numbers, findings and ledger rows.

The stream is `experiments.models.traffic`'s mixed key families; the policies are libCacheSim's
(`experiments.models.policies`), Redis's own (`experiments.probes.evictionpolicy`) and the in-process
libraries'; the peer check sets the book's replay (`experiments.models.lrusim`) beside libCacheSim's LRU.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from experiments import rules
from experiments.decide import engine, sizing
from experiments.decide.workload import load, with_headroom
from experiments.errors import BookError
from experiments.lab.quiet import quiet
from experiments.measure import spread_between_rounds
from experiments.models import lrusim, peer, popularity, pricing
from experiments.models.taskcache import predict
from experiments.models.traffic import ChatTraffic, Trace, family_bytes, parameter, zipf_ranks
from experiments.paths import DATA
from experiments.probes import evictionpolicy
from experiments.results import Results, declared
from experiments.seed import figure, product_reads_per_s

PROOF = "traffic.ipynb"
TASKS = int(figure("task_count"))

FRACTIONS = [0.003, 0.01, 0.03, 0.1, 0.3]
"""Cache sizes of the sweep, as shares of the stream's working set (bytes)."""

TIGHT = 0.01
"""The tight cache the per-family, pool and Redis comparisons use: 1 % of the stream's working set."""

RECO_SHARES = [0.0, 0.05, 0.1, 0.25, 0.5]
"""Shares of the capacity given to a pool of the recommendations alone (0: recommendations not cached)."""

TTL_S = figure("product_cache_ttl_s")
"""The per-task cache's TTL (the note's ``TTLCache(maxsize=5000, ttl=300)``), also the key design's shortest."""

TASK_ENTRIES = [1000, int(figure("product_cache_entries"))]
"""The in-process sizes the note uses: 1,000 entries (its Q1) and its ``TTLCache(maxsize=5000)``."""


def chat_traffic(alpha: float, *, launch_at_s: float = math.inf) -> ChatTraffic:
    """The note's turns (one product read each, 40,000 a minute) with the product exponent the in-process
    chapter calibrates, and a launch at ``launch_at_s``."""
    return ChatTraffic(product_alpha=alpha, launch_at_s=launch_at_s)


def peer_check(trace: Trace, *, fraction: float) -> dict[str, int]:
    """The book's LRU replay and libCacheSim's on the same stream and capacity: the hits each counts, and the
    book's with the key design's shortest TTL, which libCacheSim cannot replay (its bindings expire nothing)."""
    capacity = fraction * float(trace.sizes[np.unique(trace.entry)].sum())

    def book(ttl_s: float) -> int:
        return lrusim.replay(trace.entry, trace.times, trace.sizes, capacity=capacity, ttl_s=ttl_s, warmup_s=0,
                             expiry="lazy")["hits"]

    with peer.Stream(trace.entry, trace.times, trace.sizes) as stream:
        return {"requests": int(trace.entry.size), "book_hits": int(book(math.inf)),
                "peer_hits": int(stream.hits("lru", capacity)), "book_hits_ttl": int(book(TTL_S))}


THROUGHPUT_STREAM = {"objects": 500_000, "alpha": 1.0, "entries": 50_000}
"""The stream both LRUs are timed on: Zipf(1.0) reads over 500K objects into a 50K-entry cache — long
enough (millions of requests) that the loop, not the set-up, is timed."""


def throughput(*, requests: int, seed: int, rounds: int = 3) -> dict[str, float]:
    """Requests per second of the book's replay and of libCacheSim's LRU on `THROUGHPUT_STREAM`, in ``rounds``
    rounds that run each once (the replay compiled first), in a quiet section: each rate is the median of its
    rounds, the ratio the median of the rounds' ratios with its spread between rounds; and the hit rate both
    count."""
    t = THROUGHPUT_STREAM
    entry = zipf_ranks(np.random.default_rng(seed), requests, t["objects"], t["alpha"])
    times, ones = np.arange(requests) / 1e4, np.ones(t["objects"])

    def timed(run) -> tuple[int, float]:
        start = time.perf_counter()
        hits = run()
        return hits, time.perf_counter() - start

    def replay() -> int:
        return lrusim.replay(entry, times, ones, capacity=t["entries"], ttl_s=math.inf, warmup_s=0, expiry="lazy")["hits"]

    lrusim.replay(entry[:100], times[:100], ones, capacity=t["entries"], ttl_s=math.inf, warmup_s=0, expiry="lazy")
    book_s, peer_s = [], []
    with quiet("the book's LRU replay against libCacheSim's"), peer.Stream(entry, times, ones) as stream:
        for _ in range(rounds):
            book_hits, took = timed(replay)
            book_s.append(took)
            peer_hits, took = timed(lambda: stream.hits("lru", t["entries"]))
            peer_s.append(took)
    ratios = [p / b for p, b in zip(peer_s, book_s)]
    return {"requests": requests, "same_hits": book_hits == peer_hits, "hit_rate": book_hits / requests,
            "book_mreq_per_s": requests / float(np.median(book_s)) / 1e6,
            "peer_mreq_per_s": requests / float(np.median(peer_s)) / 1e6,
            "replay_over_peer": float(np.median(ratios)), "replay_over_peer_spread": spread_between_rounds(ratios)}


def ttl_working_set_gb(traffic: ChatTraffic, *, key_overhead_bytes: float = 0.0) -> float:
    """An upper bound on what the TTLs let a cache hold: every product and review of the catalog, and the
    recommendations and promotions read within their TTLs, at the key design's sizes and TTLs, each item
    with ``key_overhead_bytes`` of the server's own beside its value."""
    sizes, reco_ttl = family_bytes(), figure("promo_ttl_s")  # reco and promo share the 15-minute TTL
    counts = {"product": traffic.catalog, "review": traffic.catalog, "reco": traffic.turns_per_s * reco_ttl,
              "promo": traffic.sections}
    return sum(n * (sizes[f] + key_overhead_bytes) for f, n in counts.items()) / 1e9


@lru_cache(maxsize=1)
def recommended_node() -> dict[str, str | float]:
    """The node the book recommends for the note's chatbot — the first option of `make decide` on it, given the
    catalog headroom the summary finds it needs — and the memory one node of that type can hold (after
    ElastiCache's reserved memory), in GB. The note's 13 GB is its DAX node, not a cache the book would deploy."""
    w = with_headroom(load(DATA / "workloads" / "chatbot.toml"))
    ordered, numbers = engine.rank(w, edge=False)
    chosen = next((a for a in ordered if not a.rejected_because and numbers[a.option]["cluster"]), None)
    if chosen is None:
        raise BookError("make decide recommends no node-based cluster for the chatbot with headroom: the traffic "
                        "chapter has no node to size its working set against")
    cluster = numbers[chosen.option]["cluster"]
    nodes = sizing.node_table("redis" if chosen.option.startswith("redis") else "valkey").set_index("node_type")
    return {"option": chosen.option, "node_type": cluster["node_type"],
            "usable_gb": float(nodes.loc[cluster["node_type"], "usable_gib"]) * 2**30 / 1e9}


def popularity_moves() -> pd.DataFrame:
    """What moves with the reading of the note's popularity (`experiments.models.popularity`), per reading: one
    shared cache's hit rate at the product TTL and the catalog's load against its 2,000 requests/min, 60 per-task
    caches of 5,000 entries (the in-process chapter's Q1), the hottest product's reads/s (the hot-key experiments'
    rate: they take the top-hundred reading, `popularity.hot_set`), and `make decide`'s first option for the chatbot given
    its catalog headroom (or none viable), with the origin's load under the best option."""
    ttl = figure("product_cache_ttl_s")
    chatbot = with_headroom(load(DATA / "workloads" / "chatbot.toml"))
    rows = []
    for p in (popularity.product(), popularity.top_hundred()):
        hit = p.shared_hit_rate(ttl)
        # the planned reading is the example file's own exponent (equal to the model's to 1e-4, which a test checks)
        w = chatbot if p.reading == popularity.PLANNED else dataclasses.replace(chatbot, families=tuple(
            dataclasses.replace(f, zipf_alpha=p.alpha) if f.name == "product" else f for f in chatbot.families))
        ordered, _ = engine.rank(w, edge=False)
        viable = [a for a in ordered if not a.rejected_because]
        # none viable: the option that leaves the origin least loaded (the ranking's first may be rejected for staleness)
        best = viable[0] if viable else min(ordered, key=lambda a: a.origin_load)
        rows.append({"reading": p.reading, "alpha": p.alpha, "shared_hit_pct": 100 * hit,
                     "catalog_load_x": product_reads_per_s() * 60 * (1 - hit) / figure("catalog_capacity_per_min"),
                     "per_task_hit_pct": 100 * predict(p.traffic(), tasks=TASKS, maxsize=figure("product_cache_entries"),
                                                       ttl_s=ttl)["hit_rate"],
                     "hottest_reads_per_s": p.hottest_reads_per_s(),
                     "decide_first": best.option if viable else "none viable",
                     "decide_origin_load_pct": 100 * best.origin_load})
    return pd.DataFrame(rows)


@dataclass
class TrafficResults(Results):
    """What the chapter generated, simulated and measured: the stream's one-hit wonders and family rates, the
    policy sweeps, Redis's policies on the same requests (`evictionpolicy.COMPARE`), the peer library's runs, and
    what moves with the note's two readings of its popularity (`popularity_moves`)."""

    wonders: pd.DataFrame
    sweep: pd.DataFrame
    per_family: pd.DataFrame
    pools: pd.DataFrame
    redis: pd.DataFrame = declared(evictionpolicy.COMPARE)
    in_process: pd.DataFrame
    headroom: pd.DataFrame
    peer: dict
    speed: dict
    traffic: ChatTraffic
    stream_s: float
    popularity: pd.DataFrame


def _hit(frame: pd.DataFrame, family: str = "all", **where) -> float:
    rows = frame[frame.family == family]
    for column, value in where.items():
        rows = rows[rows[column] == value]
    return float(rows.hit_rate.iloc[0])


def _best(per_family: pd.DataFrame) -> str:
    """The policy with the highest hit rate over all families (the first in `policies.LABELS` order on a tie)."""
    return str(per_family[per_family.family == "all"].set_index("policy").hit_rate.idxmax())


def key_overhead_bytes(r: TrafficResults) -> float:
    """Memory Redis spent per key beside its value in the allkeys-lru replay, by ``MEMORY USAGE`` on its resident
    keys (`evictionpolicy.key_overhead`): the key, its object and jemalloc's size class."""
    return float(r.redis.set_index("policy").loc["allkeys-lru", "overhead_bytes"])


def headline(r: TrafficResults) -> dict[str, float | str]:
    """Numbers quoted by the chapter's prose and the decision record."""
    pf, wonders = r.per_family, r.wonders.set_index("family")
    best = _best(pf)
    calls = pf[pf.family == "all"].set_index("policy").origin_calls_per_s
    big = r.sweep[r.sweep.fraction == max(FRACTIONS)].set_index("policy").hit_rate
    pools = r.pools[(r.pools.reco_share > 0) & (r.pools.family == "product")]
    best_pool = pools.set_index("setup").hit_rate.idxmax()
    redis = r.redis[r.redis.engine != "libCacheSim"].set_index("policy")
    sim = r.redis[r.redis.engine == "libCacheSim"].set_index("policy")
    room = r.headroom.set_index("maxsize")
    lib = r.in_process
    overhead = key_overhead_bytes(r)
    node = recommended_node()
    planned, top = (r.popularity.set_index("reading").loc[name] for name in (popularity.PLANNED, popularity.TOP_HUNDRED))
    return {
        "pop_planned_top100_pct": 100 * popularity.product().top_share(int(figure("hot_products"))),
        "pop_top_share_pct": 100 * popularity.top_hundred().top_share(int(figure("hot_products"))),
        "pop_fit_products": popularity.fitting_catalog().catalog, "pop_fit_alpha": popularity.fitting_catalog().alpha,
        "pop_top_alpha": float(top.alpha), "pop_top_hit_pct": float(top.shared_hit_pct),
        "pop_top_load_x": float(top.catalog_load_x), "pop_planned_per_task_pct": float(planned.per_task_hit_pct),
        "pop_top_per_task_pct": float(top.per_task_hit_pct), "pop_planned_first": str(planned.decide_first),
        "pop_top_first": str(top.decide_first), "pop_top_decide_load_pct": float(top.decide_origin_load_pct),
        "pop_planned_hottest_per_s": float(planned.hottest_reads_per_s),
        "pop_top_hottest_per_s": float(top.hottest_reads_per_s),
        "pop_hottest_ratio": float(planned.hottest_reads_per_s / top.hottest_reads_per_s),
        # what one recommended node's baseline link carries of the 2 KB item, replies' bytes only (an upper bound)
        "pop_node_item_gets_per_s": 1e9 * pricing.node_baseline_gbps(str(node["node_type"])) / 8
        / family_bytes()["product"],
        "requests": int(r.peer["requests"]), "turns_per_min": 60 * r.traffic.turns_per_s, "stream_min": r.stream_s / 60,
        "sections": r.traffic.sections, "review_share_pct": 100 * r.traffic.review_share,
        "alpha_low": parameter("alpha_low"), "alpha_high": parameter("alpha_high"),
        "reco_one_hit_pct": 100 * float(wonders.loc["reco", "one_hit_share"]),
        "all_one_hit_pct": 100 * float(wonders.loc["all", "one_hit_share"]),
        "published_one_hit_full_pct": 100 * parameter("one_hit_full"),
        "published_one_hit_10_pct": 100 * parameter("one_hit_10pct"),
        "ttl_cost_hits": int(r.peer["book_hits"] - r.peer["book_hits_ttl"]), "ttl_s": TTL_S,
        "smallest_pct": 100 * min(FRACTIONS), "big_pct": 100 * max(FRACTIONS), "tight_pct": 100 * TIGHT,
        "tight_mb": float(r.sweep[r.sweep.fraction == TIGHT].capacity_mb.iloc[0]),
        "best_policy": best, "lru_hit_pct": 100 * _hit(pf, policy="LRU"), "best_hit_pct": 100 * _hit(pf, policy=best),
        "lru_product_pct": 100 * _hit(pf, "product", policy="LRU"), "best_product_pct": 100 * _hit(pf, "product", policy=best),
        "lru_calls_per_s": float(calls["LRU"]), "best_calls_per_s": float(calls[best]),
        "calls_saved_pct": 100 * (1 - float(calls[best]) / float(calls["LRU"])),
        "fifo_hit_pct": 100 * _hit(pf, policy="FIFO"),
        "big_lru_pct": 100 * float(big["LRU"]), "big_fifo_pct": 100 * float(big["FIFO"]),
        "big_best_other_pct": 100 * float(big.drop(["LRU", "FIFO"]).max()),
        "big_best_other": str(big.drop(["LRU", "FIFO"]).idxmax()),
        "shared_product_pct": 100 * _hit(r.pools, "product", setup="one shared cache"),
        "pool_product_pct": 100 * _hit(r.pools, "product", setup=best_pool), "pool_setup": str(best_pool),
        "pool_all_pct": 100 * _hit(r.pools, setup=best_pool), "shared_all_pct": 100 * _hit(r.pools, setup="one shared cache"),
        "no_reco_product_pct": 100 * _hit(r.pools, "product", setup="recommendations not cached"),
        "redis_lru_pct": 100 * float(redis.loc["allkeys-lru", "hit_rate"]),
        "redis_lfu_pct": 100 * float(redis.loc["allkeys-lfu", "hit_rate"]),
        "redis_lru_product_pct": 100 * float(redis.loc["allkeys-lru", "product_hit_rate"]),
        "redis_lfu_product_pct": 100 * float(redis.loc["allkeys-lfu", "product_hit_rate"]),
        "redis_lru_calls_per_s": float(redis.loc["allkeys-lru", "origin_calls_per_s"]),
        "redis_lfu_calls_per_s": float(redis.loc["allkeys-lfu", "origin_calls_per_s"]),
        "sim_lru_prefix_pct": 100 * float(sim.loc["LRU", "hit_rate"]),
        "sim_lfu_prefix_pct": 100 * float(sim.loc["LFU", "hit_rate"]),
        "redis_requests": int(redis.requests.iloc[0]), "redis_cache_mb": float(redis.cache_mb.iloc[0]),
        "redis_prefix_min": float(r.stream_s / 60 * redis.requests.iloc[0] / r.peer["requests"]),
        "redis_samples": int(redis.maxmemory_samples.iloc[0]),
        "redis_bytes_per_key": float(redis.loc["allkeys-lru", "bytes_per_key"]), "key_overhead_bytes": overhead,
        **{f"{name}_{n}_pct": 100 * _hit(lib, library=library, maxsize=n)
           for name, library in (("cachetools", "cachetools LRUCache"), ("theine", "theine (W-TinyLFU)"),
                                 ("lcs_lru", "libCacheSim LRU"), ("lcs_tlfu", "libCacheSim W-TinyLFU"))
           for n in TASK_ENTRIES},
        "task_share": 1 / TASKS, "tasks": TASKS,
        **{f"lru_ttl_{n}_pct": 100 * float(room.loc[n, "lru_ttl_hit_rate"]) for n in TASK_ENTRIES},
        "any_policy_ttl_pct": 100 * float(room.any_policy_bound.iloc[0]),
        "ttl_room_1000_pp": 100 * float(room.loc[1000, "any_policy_bound"] - room.loc[1000, "lru_ttl_hit_rate"]),
        "book_mreq_per_s": float(r.speed["book_mreq_per_s"]), "peer_mreq_per_s": float(r.speed["peer_mreq_per_s"]),
        "replay_speedup": float(r.speed["replay_over_peer"]),
        "replay_speedup_spread": float(r.speed["replay_over_peer_spread"]), "speed_requests": int(r.speed["requests"]),
        "speed_hit_pct": 100 * float(r.speed["hit_rate"]), "speed_objects": THROUGHPUT_STREAM["objects"],
        "speed_entries": THROUGHPUT_STREAM["entries"],
        "ttl_working_set_gb": ttl_working_set_gb(r.traffic, key_overhead_bytes=overhead),
        "reco_ttl_min": figure("promo_ttl_s") / 60, "catalog": r.traffic.catalog,
        "node_type": node["node_type"], "node_usable_gb": node["usable_gb"],
        "node_room_pct": 100 * (1 - ttl_working_set_gb(r.traffic, key_overhead_bytes=overhead) / node["usable_gb"]),
        "node_grow_pct": 100 * (node["usable_gb"] / ttl_working_set_gb(r.traffic, key_overhead_bytes=overhead) - 1),
    }


FREQUENCY_OR_DEMOTION = ("S3-FIFO", "SIEVE", "W-TinyLFU", "LFU")
"""The policies that keep a new key from displacing old ones until it is read again (quick demotion, lazy
promotion) or until it is frequent enough (frequency admission, LFU)."""


def findings(r: TrafficResults) -> dict[str, bool]:
    """The chapter's conclusions as statements that must hold (margins wide of the measured values). The speed
    of the book's replay against libCacheSim's is reported with its spread, not asserted: it moves by more than
    a third of itself between rounds on two shared cores, and the book keeps its replay for the TTL it models
    (libCacheSim's trace format carries none), not for its speed."""
    h = headline(r)
    lib = r.in_process
    theine_gap = max(abs(_hit(lib, library="theine (W-TinyLFU)", maxsize=n)
                         - _hit(lib, library="libCacheSim W-TinyLFU", maxsize=n)) for n in TASK_ENTRIES)
    lru_same = all(_hit(lib, library="cachetools LRUCache", maxsize=n) == _hit(lib, library="libCacheSim LRU", maxsize=n)
                   for n in TASK_ENTRIES)
    big = r.sweep[r.sweep.fraction == max(FRACTIONS)].set_index("policy").hit_rate
    return {
        "the book's replay and libCacheSim's LRU count the same hits on the mixed stream and the timed one":
            r.peer["book_hits"] == r.peer["peer_hits"] and bool(r.speed["same_hits"]),
        "cachetools' LRUCache and libCacheSim's LRU count the same hits on a task's stream": lru_same,
        "theine's W-TinyLFU is within 2 points of libCacheSim's": theine_gap < 0.02,
        "most recommendation keys are read once (one-hit wonders)": h["reco_one_hit_pct"] > 50,
        "in a tight cache a policy that demotes new keys quickly or admits by frequency hits 2 points more than LRU":
            h["best_policy"] in FREQUENCY_OR_DEMOTION and h["best_hit_pct"] >= h["lru_hit_pct"] + 2,
        "in a large cache LRU hits at least 1 point more than S3-FIFO, SIEVE, W-TinyLFU and LFU (recent keys return)":
            bool((big["LRU"] >= big[list(FREQUENCY_OR_DEMOTION)] + 0.01).all()),
        "a pool of their own for the recommendations raises the products' hit rate by over 1 point":
            h["pool_product_pct"] >= h["shared_product_pct"] + 1,
        "Redis's allkeys-lfu hits at least 2 points more than allkeys-lru at a tight maxmemory":
            h["redis_lfu_pct"] >= h["redis_lru_pct"] + 2,
        "with the note's TTL, no policy can add a point to a per-task cache of 5,000 entries":
            h[f"lru_ttl_{TASK_ENTRIES[-1]}_pct"] >= h["any_policy_ttl_pct"] - 1,
        "over the 500K catalog the note's two readings of its product traffic do not fit: on its top 100's share one "
        "shared cache hits under 80 % and the catalog carries over 4 times the misses it was sized for, and no option "
        "of decide is viable":
            h["pop_top_hit_pct"] < 80 and h["pop_top_load_x"] > 4 and h["pop_top_first"] == "none viable"
            and h["pop_planned_first"] != "none viable",
        "on either reading the hottest product asks under 1 % of what one recommended node's link carries of the 2 KB "
        "item":
            max(h["pop_planned_hottest_per_s"], h["pop_top_hottest_per_s"]) < 0.01 * h["pop_node_item_gets_per_s"],
        "one node of the type the book recommends holds everything the TTLs keep, so no policy changes its hit rate":
            h["ttl_working_set_gb"] < h["node_usable_gb"],
    }


def record_claims(ledger, r: TrafficResults) -> pd.DataFrame:
    """This chapter's ledger row: the note's choice of an LRU with a TTL for the per-task product cache,
    judged at its own ``TTLCache(maxsize=5000, ttl=300)`` on one task's product reads. No eviction policy can
    beat a cache that evicts nothing, so the bound of every policy is an unbounded cache with the same TTL
    (the book's exact replay; libCacheSim's policies cannot replay a TTL)."""
    h = headline(r)
    n = TASK_ENTRIES[-1]
    ledger.record(
        "traffic.in-process-lru-policy", claim="An LRU with a TTL (cachetools.TTLCache) is the policy for the per-task cache",
        seed_value="TTLCache(maxsize=5000, ttl=300)",
        measured=(f"one task's product reads: LRU with the TTL {h[f'lru_ttl_{n}_pct']:.1f} % at {n:,} entries, and "
                  f"{h['any_policy_ttl_pct']:.1f} % for any policy (a cache that evicts nothing); at 1,000 entries "
                  f"{h['lru_ttl_1000_pct']:.1f} %. Without the TTL, W-TinyLFU (theine) hit {h[f'theine_{n}_pct']:.1f} % "
                  f"of the mixed stream against LRU's {h[f'cachetools_{n}_pct']:.1f} %"),
        rule=rules.close_to(h["any_policy_ttl_pct"], h[f"lru_ttl_{n}_pct"], unit="% hit rate", tolerance=0.01,
                            partly=0.05),
        inputs=("product_cache_entries", "product_cache_ttl_s"),
        threshold="the best any policy can do: a cache that evicts nothing",
        proof=f"{PROOF}#in-process-cachetools-against-theine")
    return ledger.table()
