"""The mean latency of a cache-aside read at a hit rate, and the hit rate at which caching pays off.

At hit rate ``h`` a read costs ``h·hit + (1 − h)·(origin + miss overhead)``: the quantity the seed's
per-hit saving leaves out. The miss overhead is the failed GET plus the SET that fills the cache.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def expected_latency_ms(hit_rate, hit_ms: float, origin_ms: float, overhead_ms: float):
    """Mean latency of a cache-aside read at ``hit_rate``: hits cost ``hit_ms``, misses pay origin and overhead."""
    hit_rate = np.asarray(hit_rate, dtype=float)
    if np.any((hit_rate < 0) | (hit_rate > 1)):
        raise ValueError("hit_rate must lie in [0, 1]")
    return hit_rate * hit_ms + (1 - hit_rate) * (origin_ms + overhead_ms)


def break_even_hit_rate(hit_ms: float, origin_ms: float, overhead_ms: float) -> float:
    """The hit rate above which cache-aside beats calling the origin directly."""
    return overhead_ms / (origin_ms + overhead_ms - hit_ms)


def expected_curve(aside: pd.DataFrame, hit_rates=np.linspace(0, 1, 21)) -> pd.DataFrame:
    """Mean latency per key family over a range of hit rates (for the what-if chart)."""
    rows = [
        {"family": r.family, "hit_rate": float(h),
         "mean_latency_ms": float(expected_latency_ms(h, r.hit_p50_ms, r.seed_origin_ms, r.miss_overhead_p50_ms))}
        for r in aside.itertuples() for h in hit_rates
    ]
    return pd.DataFrame(rows)
