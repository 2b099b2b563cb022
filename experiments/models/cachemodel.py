"""Hit rate of an LRU cache with a TTL, for Poisson reads of many entries: the book's one cache model.

Two chapters need it: DAX's item cache (LRU under the node's memory, TTL from the write into the
cache) and the per-task ``cachetools.TTLCache`` of the in-process chapter (LRU by entry count, TTL
from insertion). Two mechanisms limit the hit rate:

* **the TTL** — an entry read at Poisson rate λ is re-fetched at least every τ seconds. With a
  non-renewing TTL and no capacity limit its hit probability is λτ / (1 + λτ) (the renewal argument
  of the TTL-cache literature, e.g. Fofack et al. 2014);
* **capacity** — Che's approximation (Che, Tung & Wang 2002; Fricker, Robert & Roberts 2012)
  replaces the LRU list by one *characteristic time* T: an entry stays cached while it is read at
  least once every T seconds, and T solves Σᵢ sizeᵢ·occupancyᵢ(T) = capacity.

With both, a request hits when the previous request for its entry came less than T ago *and* the
entry was fetched less than τ ago. Counting hits per fetch cycle gives H = λ∫₀^τ q(t) dt, where q(t)
is the probability that no gap of length T has occurred in a Poisson stream started at 0; q obeys
q′(t) = −λe^(−λT) q(t − T), with a drop of e^(−λT) at t = T, which integrates in closed form
(`_cycle_hits`). The hit probability is H / (1 + H). It reduces to λτ/(1+λτ) when T ≥ τ and to
Che's 1 − e^(−λT) when τ → ∞.

Occupancy depends on when expired entries leave. *Lazy* expiry (DAX: an expired item is noticed
when read) keeps them until LRU pushes them out, so occupancy is the pure-LRU 1 − e^(−λT).
*Eager* expiry (cachetools purges expired entries before every insertion) frees them at once, so an
entry is resident exactly while it can hit and occupancy equals the hit probability (PASTA).
`experiments.models.lrusim` replays both exactly; the chapters check the model against it.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from experiments.errors import ParameterError

EXPIRY = ("lazy", "eager")
_HEAD = 20_000
_BINS = 4000
"""The most popular `_HEAD` items are modelled one by one, the rest in `_BINS` groups (`zipf_groups`)."""


def _cycle_series(c: np.ndarray, x: float) -> np.ndarray:
    """Σ_{k ≤ x} (−c)^k (x − k)^(k+1) / (k+1)!, the integral of the delay equation's solution."""
    if x < 0:
        return np.zeros_like(c)
    k = np.arange(int(min(math.floor(x), 200)) + 1)
    log_fact = np.array([math.lgamma(j + 2) for j in k])
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) where e^(−λT) underflows; column 0 is set below
        logs = k * np.log(c[:, None]) + (k + 1) * np.log(x - k) - log_fact
    terms = np.exp(logs)
    terms[:, 0] = x
    return (terms * (-1.0) ** k).sum(axis=1)


def _cycle_hits(rates: np.ndarray, t_char: float, ttl: float) -> np.ndarray:
    """Expected hits between two fetches of an entry (H above) for each Poisson read rate."""
    rates = np.asarray(rates, dtype=float)
    if not math.isfinite(t_char) or t_char >= ttl:
        return rates * ttl
    a = rates * t_char
    sigma = ttl / t_char
    c = a * np.exp(-a)
    hits = np.expm1(np.minimum(a, 700.0))  # τ → ∞: Che's LRU, H = e^(λT) − 1
    exact = c * sigma <= 20  # beyond, q(τ) < e^-20 and the alternating series loses precision
    if exact.any():
        ae, ce = a[exact], c[exact]
        hits[exact] = ae * (_cycle_series(ce, sigma) - np.exp(-ae) * _cycle_series(ce, sigma - 1))
    return hits


def hit_probability(rates: np.ndarray, t_char: float, ttl: float) -> np.ndarray:
    """Probability that a read of an entry with the given rate hits, under LRU time ``t_char`` and TTL ``ttl``."""
    hits = _cycle_hits(rates, t_char, ttl)
    return hits / (1 + hits)


@lru_cache(maxsize=16)
def zipf_groups(catalog: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Zipf popularity in groups of ranks: probability mass and item count of each group.

    The first `_HEAD` ranks are single items; beyond, ranks are grouped geometrically (each group
    spans under 0.3 % of rank, so popularity varies by less than that within it), and a group's mass
    is the midpoint-rule integral of r^(−α). A 50-million-item catalog becomes ~25,000 groups.
    """
    head = min(catalog, _HEAD)
    weight = np.arange(1, head + 1, dtype=float) ** -alpha
    count = np.ones(head)
    if catalog > head:
        edges = np.unique(np.geomspace(head + 1, catalog + 1, _BINS + 1).round().astype(np.int64))
        low, high = edges[:-1] - 0.5, edges[1:] - 0.5
        if abs(alpha - 1) < 1e-12:
            tail = np.log(high / low)
        else:
            tail = (high ** (1 - alpha) - low ** (1 - alpha)) / (1 - alpha)
        weight = np.concatenate([weight, tail])
        count = np.concatenate([count, np.diff(edges).astype(float)])
    return weight / weight.sum(), count


def occupancy(rates: np.ndarray, t_char: float, ttl: float, expiry: str) -> np.ndarray:
    """Share of time each entry is resident (see the module docstring for the two expiry rules)."""
    if expiry == "lazy":
        return np.ones_like(rates) if not math.isfinite(t_char) else -np.expm1(-rates * t_char)
    return hit_probability(rates, t_char, ttl)


def characteristic_time(rates: np.ndarray, sizes: np.ndarray, capacity: float, *, ttl: float = math.inf,
                        expiry: str = "lazy") -> float:
    """Che's T: Σ sizeᵢ · occupancyᵢ(T) = capacity; ``inf`` when every entry fits (or the TTL keeps them below)."""
    if expiry not in EXPIRY:
        raise ParameterError(f"expiry={expiry!r} must be one of {EXPIRY}")
    if (sizes * occupancy(rates, math.inf, ttl, expiry)).sum() <= capacity:
        return math.inf
    low, high = 1e-9, 1e12
    for _ in range(200):
        mid = math.sqrt(low * high)
        if (sizes * occupancy(rates, mid, ttl, expiry)).sum() > capacity:
            high = mid
        else:
            low = mid
        if high / low < 1 + 1e-9:
            break
    return math.sqrt(low * high)


def mixture(rates: np.ndarray, sizes: np.ndarray, reads: np.ndarray, *, capacity: float, ttl: float,
            expiry: str) -> dict[str, float]:
    """Hit rate over groups of entries (per-entry read rate, group size, group reads/s), T, and resident size."""
    t_char = characteristic_time(rates, sizes, capacity, ttl=ttl, expiry=expiry)
    hit = hit_probability(rates, t_char, ttl)
    return {"hit_rate": float((reads * hit).sum() / reads.sum()), "t_char_s": t_char,
            "resident": float((sizes * occupancy(rates, t_char, ttl, expiry)).sum())}
