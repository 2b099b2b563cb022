"""The economics chapter ("What a cache hit is worth"): its numbers, findings and ledger rows.

The measurements are `experiments.probes.hitvalue`'s (GET latency per store and value size, the
cache-aside path, the price audit); the model is `experiments.models.hitcost`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from experiments import rules
from experiments.findings import Timing, timing
from experiments.models.hitcost import break_even_hit_rate
from experiments.probes import hitvalue
from experiments.results import Results, declared

SEED_CACHE_BOUND_MS = 2.0
"""The seed's "< 2 ms" cache latency, used for every row of its economics table."""


@dataclass
class EconomicsResults(Results):
    """What the chapter measured: GET latency per store and size, the cache-aside path, the price audit."""

    hits: pd.DataFrame = declared(hitvalue.HITS)
    aside: pd.DataFrame = declared(hitvalue.ASIDE)
    audit: dict[str, int]


def _p(hits: pd.DataFrame, store: str, variant: str, column: str) -> float:
    return float(hits.loc[(hits.store == store) & (hits.variant == variant), column].iloc[0])


def headline(r: EconomicsResults) -> dict[str, float]:
    """The numbers the chapter's prose and the decision record quote (glued, never typed)."""
    hits, aside, audit = r.hits, r.aside, r.audit
    product = aside.set_index("family").loc["product"]
    overhead_ms = float(aside.miss_overhead_p50_ms.max())
    return {
        "redis_item_p50_us": _p(hits, "Redis", "item", "p50_ms") * 1000,
        "redis_item_p99_us": _p(hits, "Redis", "item", "p99_ms") * 1000,
        "redis_page_p50_us": _p(hits, "Redis", "page", "p50_ms") * 1000,
        "redis_page_p99_us": _p(hits, "Redis", "page", "p99_ms") * 1000,
        "memcached_item_p50_us": _p(hits, "Memcached", "item", "p50_ms") * 1000,
        "memcached_page_p50_us": _p(hits, "Memcached", "page", "p50_ms") * 1000,
        "local_item_p50_us": _p(hits, "in-process", "item", "p50_ms") * 1000,
        "worst_p99_ms": float(hits.p99_ms.max()),
        "worst_max_ms": float(hits.max_ms.max()),
        "product_hit_p50_ms": float(product.hit_p50_ms),
        "product_save_per_hit_ms": float(product.save_per_hit_ms),
        "product_save_at_95_ms": float(product.save_at_planned_rate_ms),
        "miss_overhead_us": overhead_ms * 1000,
        "break_even_pct": 100 * max(
            break_even_hit_rate(r.hit_p50_ms, r.seed_origin_ms, r.miss_overhead_p50_ms) for r in aside.itertuples()
        ),
        "price_fields_cached": int(sum(audit.values())),
    }


def break_even_spread_pct(aside: pd.DataFrame) -> float:
    """How far the break-even hit rate moves when the hit and the miss overhead are each one spread between
    rounds slower (the break-even is computed from both, so it has no rounds of its own)."""
    def worst(hit, overhead):
        return 100 * max(break_even_hit_rate(h, o, m) for h, o, m in zip(hit, aside.seed_origin_ms, overhead))
    return (worst(aside.hit_p50_ms + aside.hit_p50_spread_ms, aside.miss_overhead_p50_ms + aside.miss_overhead_p50_spread_ms)
            - worst(aside.hit_p50_ms, aside.miss_overhead_p50_ms))


def findings(r: EconomicsResults) -> dict[str, bool | Timing]:
    """The chapter's conclusions as statements that must hold (asserted, and compared by nbval).

    Every one of them but the audit is a timing: it holds only three spreads between rounds (the medians of
    nine rounds of GETs, five rounds of the cache-aside path) beyond its threshold.
    """
    h, hits, aside = headline(r), r.hits, r.aside
    local = hits[hits.store == "in-process"]
    redis_item = hits[(hits.store == "Redis") & (hits.variant == "item")].iloc[0]
    # a hit saves the seed's figure when it costs at most origin − saving (2 ms in every row of the note)
    allowed_hit_ms = float((aside.seed_origin_ms - aside.seed_save_ms).min())
    return {
        "every cache read (3 stores x 5 value sizes) has p99 < 2 ms":
            timing(h["worst_p99_ms"], below=SEED_CACHE_BOUND_MS, spread=float(hits.p99_spread_ms.max()), unit="ms"),
        "a Redis GET of a 2 KB product is sub-millisecond at p99":
            timing(h["redis_item_p99_us"], below=1000, spread=1000 * float(redis_item.p99_spread_ms), unit="µs"),
        "an in-process read has p99 < 0.1 ms":
            timing(local.p99_ms.max(), below=0.1, spread=float(local.p99_spread_ms.max()), unit="ms"),
        "every key family's hit saves at least the seed's figure":
            timing(aside.hit_p50_ms.max(), below=allowed_hit_ms, spread=float(aside.hit_p50_spread_ms.max()), unit="ms"),
        "a miss adds less than 1 ms to the origin call":
            timing(h["miss_overhead_us"], below=1000, spread=1000 * float(aside.miss_overhead_p50_spread_ms.max()),
                   unit="µs"),
        "cache-aside pays off above a 5 % hit rate (the note plans 95 %)":
            timing(h["break_even_pct"], below=5.0, spread=break_even_spread_pct(aside), unit="%"),
        "no price reached any cache": h["price_fields_cached"] == 0,
    }


def record_claims(ledger, r: EconomicsResults) -> pd.DataFrame:
    """Write this chapter's rows of the claims ledger; returns them as a table. (The in-process cache's
    own latency claims are judged once, in the in-process chapter, from its lookup benchmark.)"""
    h, hits, aside = headline(r), r.hits, r.aside
    proof = "economics.ipynb"
    ledger.record(
        "economics.cache-latency", claim="A cache read costs under 2 ms, whatever the key family",
        seed_value="< 2 ms", measured=f"worst p99 {h['worst_p99_ms']:.3f} ms over 3 stores x 5 sizes (loopback)",
        rule=rules.at_most(SEED_CACHE_BOUND_MS, h["worst_p99_ms"], unit="ms"),
        judges="cache_latency_ms", proof=f"{proof}#how-fast-is-a-hit",
    )
    for row in aside.itertuples():
        ledger.record(
            f"economics.save.{row.family}", claim=f"A cache hit saves the origin call for {row.scenario.lower()}",
            seed_value=f"{row.seed_save_ms:.0f} ms",
            measured=(f"{row.save_per_hit_ms:.1f} ms (origin {row.seed_origin_ms:.0f} ms − hit "
                      f"{row.hit_p50_ms * 1000:.0f} µs)"),
            rule=rules.at_least(row.seed_save_ms, row.save_per_hit_ms, unit="ms"),
            threshold="the note's Save Per Request for the family (data/origins.csv)", proof=f"{proof}#what-a-hit-saves",
        )
    ledger.record(
        "economics.redis-sub-ms", claim="Redis serves reads in under a millisecond",
        seed_value="sub-millisecond",
        measured=(f"2 KB GET p50 {h['redis_item_p50_us']:.0f} µs, p99 {h['redis_item_p99_us']:.0f} µs; "
                  f"100 KB p99 {h['redis_page_p99_us']:.0f} µs"),
        rule=rules.at_most(1000, h["redis_item_p99_us"], unit="µs"),
        threshold="the note's 'sub-millisecond': 1,000 µs", proof=f"{proof}#how-fast-is-a-hit",
    )
    worst_mc = float(hits.loc[hits.store == "Memcached", "p99_ms"].max())
    worst_redis = float(hits.loc[hits.store == "Redis", "p99_ms"].max())
    ledger.record(
        "economics.table.redis-latency", claim="Redis latency is under 2 ms",
        seed_value="< 2 ms", measured=f"worst p99 {worst_redis:.3f} ms over the value sizes (loopback)",
        rule=rules.at_most(SEED_CACHE_BOUND_MS, worst_redis, unit="ms"),
        judges="table_cache_latency_ms", proof=f"{proof}#how-fast-is-a-hit",
    )
    ledger.record(
        "economics.table.memcached-latency", claim="Memcached latency is under 2 ms",
        seed_value="< 2 ms", measured=f"worst p99 {worst_mc:.3f} ms (loopback)",
        rule=rules.at_most(SEED_CACHE_BOUND_MS, worst_mc, unit="ms"),
        judges="table_cache_latency_ms", proof=f"{proof}#how-fast-is-a-hit",
    )
    ledger.record(
        "economics.prices-never-cached", claim="Prices are never cached; they are always read live",
        seed_value="never cached",
        measured=f"{h['price_fields_cached']} price fields found in 3 caches (enforced by the key design in code)",
        rule=rules.at_most(0, h["price_fields_cached"], unit="price fields"),
        threshold="none: the note's 'never cached'", proof=f"{proof}#prices-never-reach-a-cache",
    )
    return ledger.table()


def hit_chart_frame(hits: pd.DataFrame) -> pd.DataFrame:
    """Long table for the latency chart: one row per store, value and percentile, in µs."""
    frame = hits.assign(value=hits.family + " " + hits.variant + " (" + (hits.size_bytes // 1024).astype(str) + " KB)")
    long = frame.melt(id_vars=["store", "value"], value_vars=["p50_ms", "p99_ms"], var_name="percentile",
                      value_name="latency_ms")
    long["percentile"] = long.percentile.str.replace("_ms", "")
    long["latency_us"] = long.latency_ms * 1000
    return long.drop(columns="latency_ms")
