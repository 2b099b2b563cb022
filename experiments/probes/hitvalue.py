"""What a cache hit costs on real servers, for the economics chapter.

* `time_hits` — GET latency of one cache entry on Redis, Memcached and an in-process cache, for the
  value sizes of ``data/value_sizes.csv``;
* `time_cache_aside` — the orchestrator's path through `CacheAside` on a hit, the extra cost of a
  miss (the failed GET and the SET that fills the cache) and the simulated origin call;
* `drive_with_prices` and `price_audit` — requests with prices served through every cache, then
  every value stored in every cache searched for a live (price) field.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from tqdm import tqdm

from experiments.caches.cache_aside import CacheAside
from experiments.caches.keydesign import load as load_key_design
from experiments.caches.origin import Origin, document
from experiments.lab.quiet import calm_round, quiet
from experiments.measure import summarize_ms, summarize_rounds_ms, time_calls_ms
from experiments.models.hitcost import expected_latency_ms
from experiments.results import Table
from experiments.seed import figure, origin_table, value_sizes

ASIN = "B08X1YRSTR"
"""The ASIN the seed uses in its examples."""


def sample_key(family: str, ident: str = ASIN) -> str:
    """A key of the key design for ``family`` (all ids set to ``ident``)."""
    fam = load_key_design()[family]
    return fam.key(**{f: ident for f in fam.id_fields})


HITS = Table("hitvalue.HITS", ("store", "family", "variant", "size_bytes", "p50_ms", "p99_ms", "p50_spread_ms",
                               "p99_spread_ms", "max_ms", "n"))
"""`time_hits`: one row per store and value size (`experiments.measure.summarize_rounds_ms`)."""

ASIDE = Table("hitvalue.ASIDE", (
    "family", "scenario", "origin_p50_ms", "origin_p99_ms", "hit_p50_ms", "hit_p99_ms", "hit_p50_spread_ms",
    "miss_overhead_p50_ms", "miss_overhead_p50_spread_ms", "seed_origin_ms", "seed_save_ms", "save_per_hit_ms",
    "save_at_planned_rate_ms"))
"""`time_cache_aside`: one row per origin family (the saving a hit makes, and at the note's planned hit rate)."""


def time_hits(caches: list, repetitions: int, *, rounds: int = 9, progress: bool = True) -> pd.DataFrame:
    """GET latency of a present key, per cache and value size (raw bytes, no decoding): ``repetitions``
    reads each, in ``rounds`` rounds that visit every cache and size in turn, summarized as the median
    over rounds of each percentile (`summarize_rounds_ms`). Nine rounds: a stretch of stalls on a busy machine
    must spoil five of them, not three, to move a percentile (a CI run on a contended machine once did); a round
    during which the CPU was crowded by load that takes no lock is taken again (`calm_round`)."""
    jobs = []
    for cache in caches:
        for size in value_sizes().itertuples():
            key = sample_key(size.family, f"{ASIN}-{size.variant}")
            payload = load_key_design().cacheable_payload(key, document(size.family, ASIN, size.size_bytes))
            cache.set(key, json.dumps(payload).encode(), 3600)
            jobs.append((cache, size, key))
    samples: dict[int, list] = {i: [] for i in range(len(jobs))}
    per_round = max(1, repetitions // rounds)
    with quiet("GET latency per store and size"):
        for _ in tqdm(range(rounds), desc="GET latency rounds", disable=not progress):
            for i, (cache, _size, key) in enumerate(jobs):
                samples[i].append(calm_round(lambda: time_calls_ms(lambda: cache.get(key), per_round, warmup=50)))
    return HITS.frame({"store": cache.name, "family": size.family, "variant": size.variant,
                       "size_bytes": size.size_bytes, **summarize_rounds_ms(samples[i])}
                      for i, (cache, size, key) in enumerate(jobs))


def time_cache_aside(cache, *, origin_calls: int, repetitions: int, seed: int, rounds: int = 5,
                     progress: bool = True) -> pd.DataFrame:
    """Per key family: origin latency, cache-aside hit latency, and the overhead a miss adds.

    The origin is simulated with the seed's median latency (so ``origin_p50_ms`` reproduces an
    input, not a measurement); the hit path and the miss overhead are measured on ``cache``, in a quiet
    section, in ``rounds`` rounds (the p50 is the median of the rounds' p50s, with its spread between rounds).
    Product documents are read without their live price (an intent that needs no price).
    """
    table = origin_table()
    sizes = value_sizes().drop_duplicates("family").set_index("family")
    rows = []
    for i, spec in enumerate(tqdm(list(table.itertuples()), desc="cache-aside", disable=not progress)):
        origin = Origin(spec.family, spec.seed_origin_ms, spec.latency_sigma,
                        int(sizes.loc[spec.family, "size_bytes"]), seed=seed + i)
        aside = CacheAside(cache, {spec.family: origin})
        key = sample_key(spec.family, f"{ASIN}-aside")
        origin_ms = time_calls_ms(lambda: origin.fetch(key), origin_calls, warmup=0)
        cache.delete(key)
        aside.get(key, live=False)  # the miss fills the cache
        payload = cache.get(key)
        missing = sample_key(spec.family, f"{ASIN}-absent")

        def miss_overhead() -> None:
            cache.get(missing)
            cache.set(missing, payload, 60)

        per_round = max(1, repetitions // rounds)
        with quiet(f"cache-aside hit and miss overhead ({spec.family})"):
            hit = summarize_rounds_ms([calm_round(lambda: time_calls_ms(lambda: aside.get(key, live=False), per_round))
                                       for _ in range(rounds)])
            overhead = summarize_rounds_ms([calm_round(lambda: time_calls_ms(miss_overhead, per_round))
                                            for _ in range(rounds)])
        origin_stats = summarize_ms(origin_ms)
        rows.append({
            "family": spec.family, "scenario": spec.scenario,
            "origin_p50_ms": origin_stats["p50_ms"], "origin_p99_ms": origin_stats["p99_ms"],
            "hit_p50_ms": hit["p50_ms"], "hit_p99_ms": hit["p99_ms"], "hit_p50_spread_ms": hit["p50_spread_ms"],
            "miss_overhead_p50_ms": overhead["p50_ms"], "miss_overhead_p50_spread_ms": overhead["p50_spread_ms"],
            "seed_origin_ms": spec.seed_origin_ms, "seed_save_ms": spec.seed_save_ms,
        })
    frame = pd.DataFrame(rows)
    frame["save_per_hit_ms"] = frame.seed_origin_ms - frame.hit_p50_ms
    frame["save_at_planned_rate_ms"] = [
        r.seed_origin_ms - expected_latency_ms(figure("planned_hit_rate"), r.hit_p50_ms, r.seed_origin_ms,
                                               r.miss_overhead_p50_ms)
        for r in frame.itertuples()
    ]
    ASIDE.check(frame)
    return frame


def drive_with_prices(caches: list, *, keys: int, requests: int, seed: int) -> None:
    """Serve product and price requests through cache-aside on every cache, prices included.

    Origins answer in ≈ 0.1 ms here: this is an audit of what gets stored, not a timing.
    """
    rng = np.random.default_rng(seed)
    asins = [f"B{n:09d}" for n in range(keys)]
    for cache in caches:
        origins = {f: Origin(f, 0.1, 0.1, 2048, seed) for f in ("product", "price", "review")}
        aside = CacheAside(cache, origins)
        for index in rng.integers(0, keys, requests):
            document = aside.get(sample_key("product", asins[index]))
            assert "price_cents" in document, "a product read must carry its live price"
            aside.get(sample_key("price", asins[index]))
            aside.get(sample_key("review", asins[index]))


def price_audit(caches: list, live_fields=("price_cents",)) -> dict[str, int]:
    """How many stored values in each cache contain a live field (the book's rule says: zero)."""
    counts = {}
    for cache in caches:
        stored = cache.items()
        counts[cache.name] = sum(
            any(field in json.loads(value) for field in live_fields) for value in stored.values()
        )
    return counts
