"""Q2 of the no-cache section: the latency of a chatbot turn that calls three origins in parallel.

A turn waits for the slowest of its product, recommendation and promotion calls, so its latency is
the maximum of three. Each origin's latency is log-normal with the seed's median (log-normal because
service latencies are positive and right-skewed; the book's origins use the same law, with the
spread in ``data/origins.csv``). With a cache, each call is a hit with probability h (a cache read)
or a miss (cache read, origin call, cache write). For independent calls the turn's CDF is the product
of the three CDFs — the order statistic of the maximum — so its quantiles come from one root search;
`monte_carlo` draws the same turns to check it.

**As the note states it.** Q2 gives every call the same 350 ms median. A turn is then within 350 ms only if all
three calls are, which happens with probability (1/2)³ = 1/8 whatever the spread (`equal_calls_within`); its
median is the call's (1/2)^(1/3) quantile, median · exp(sigma · Φ⁻¹(2^(-1/3))) for a log-normal call
(`equal_calls_p50_ms`), which depends on the spread sigma.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from experiments.seed import origin_table

FAMILIES = ("product", "reco", "promo")


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.vectorize(math.erf)(np.asarray(z, float) / math.sqrt(2)))


def call_cdf(t_ms: np.ndarray, *, median_ms: float, sigma: float, hit_rate: float, hit_ms: float,
             miss_overhead_ms: float) -> np.ndarray:
    """P(one call takes ≤ t): a hit takes ``hit_ms``; a miss takes the origin's time plus the overhead."""
    t = np.asarray(t_ms, float)
    origin_part = np.clip(t - miss_overhead_ms, 1e-12, None)
    origin = _normal_cdf((np.log(origin_part) - math.log(median_ms)) / sigma) * (t > miss_overhead_ms)
    return hit_rate * (t >= hit_ms) + (1 - hit_rate) * origin


def _specs() -> pd.DataFrame:
    return origin_table().set_index("family").loc[list(FAMILIES)]


def turn_quantile(q: float, *, hit_rate: float, hit_ms: float = 2.0, miss_overhead_ms: float = 0.0) -> float:
    """The q-quantile of a turn (ms): the root of Π F_i(t) = q, by bisection."""
    specs = _specs()

    def cdf(t: float) -> float:
        return float(np.prod([call_cdf(np.array([t]), median_ms=row.seed_origin_ms, sigma=row.latency_sigma,
                                       hit_rate=hit_rate, hit_ms=hit_ms, miss_overhead_ms=miss_overhead_ms)[0]
                              for row in specs.itertuples()]))

    low, high = 0.0, 100_000.0
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < q else (low, mid)
    return high


def monte_carlo(turns: int, *, hit_rate: float, seed: int, hit_ms: float = 2.0,
                miss_overhead_ms: float = 0.0) -> np.ndarray:
    """Latencies (ms) of ``turns`` simulated turns: three independent calls, the slowest decides."""
    rng = np.random.default_rng(seed)
    calls = []
    for row in _specs().itertuples():
        origin = miss_overhead_ms + rng.lognormal(math.log(row.seed_origin_ms), row.latency_sigma, turns)
        calls.append(np.where(rng.random(turns) < hit_rate, hit_ms, origin))
    return np.max(calls, axis=0)


def table(hit_rates: list[float], *, turns: int, seed: int, hit_ms: float = 2.0,
          miss_overhead_ms: float = 0.0) -> pd.DataFrame:
    """p50 and p99 of a turn, analytic and Monte Carlo, for each hit rate (the same for all three calls)."""
    rows = []
    for i, h in enumerate(hit_rates):
        sample = monte_carlo(turns, hit_rate=h, seed=seed + i, hit_ms=hit_ms, miss_overhead_ms=miss_overhead_ms)
        rows.append({"hit_rate": h,
                     "p50_ms": turn_quantile(0.5, hit_rate=h, hit_ms=hit_ms, miss_overhead_ms=miss_overhead_ms),
                     "p50_mc_ms": float(np.percentile(sample, 50)),
                     "p99_ms": turn_quantile(0.99, hit_rate=h, hit_ms=hit_ms, miss_overhead_ms=miss_overhead_ms),
                     "p99_mc_ms": float(np.percentile(sample, 99)),
                     "all_three_hit": h**3, "turns": turns})
    return pd.DataFrame(rows)


def equal_calls_within(t_ms: float, *, calls: int, median_ms: float, sigma: float) -> float:
    """P(a turn of ``calls`` parallel calls, each log-normal with one median, ends within ``t_ms``)."""
    one = call_cdf(np.array([t_ms]), median_ms=median_ms, sigma=sigma, hit_rate=0.0, hit_ms=0.0,
                   miss_overhead_ms=0.0)[0]
    return float(one) ** calls


def equal_calls_p50_ms(*, calls: int, median_ms: float, sigma: float) -> float:
    """The median turn of ``calls`` parallel calls with one median: the call's 2^(-1/calls) quantile."""
    return median_ms * math.exp(sigma * NormalDist().inv_cdf(0.5 ** (1 / calls)))
