"""An analytic model of DAX's item cache: hit rate and memory for a Zipf catalog read by several projections.

DAX's item cache (AWS, *DAX: how it works*) is an LRU list under the node's memory with a
time-to-live counted from the moment an item is written into the cache; reading an item refreshes
its place in the LRU list but not its TTL, and an expired item is only noticed when it is read
(that read is a miss). Two mechanisms therefore limit the hit rate:

* **the TTL** — an entry read at Poisson rate λ is re-fetched at least every τ seconds. With a
  non-renewing TTL and no memory limit its hit probability is λτ / (1 + λτ) (the renewal argument of
  the TTL-cache literature, e.g. Fofack et al. 2014);
* **memory** — Che's approximation (Che, Tung & Wang 2002; Fricker, Robert & Roberts 2012) replaces
  the LRU list by one *characteristic time* T: an entry stays cached while it is read at least once
  every T seconds, and T solves Σᵢ sizeᵢ·(1 − e^(−λᵢT)) = memory. Expired entries keep their memory
  until LRU pushes them out, so the memory balance is the pure-LRU one.

With both, a request hits when the previous request for its entry came less than T ago *and* the
entry was fetched less than τ ago. Counting hits per fetch cycle gives H = λ∫₀^τ q(t) dt, where q(t)
is the probability that no gap of length T has occurred in a Poisson stream started at 0; q obeys
q′(t) = −λe^(−λT) q(t − T), with a drop of e^(−λT) at t = T, which integrates in closed form
(`_cycle_hits`). The hit probability is H / (1 + H). It reduces to λτ/(1+λτ) when T ≥ τ and to
Che's 1 − e^(−λT) when τ → ∞; `experiments.daxsim` checks it against an exact LRU+TTL simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from experiments.errors import ParameterError

GB = 1e9
_HEAD = 20_000
_BINS = 4000
"""The most popular `_HEAD` items are modelled one by one, the rest in `_BINS` groups (`zipf_groups`)."""


@dataclass(frozen=True)
class ProjectionWorkload:
    """GetItem traffic on a catalog: Zipf item popularity, each read using one of ``projections``.

    ``keyed_by="projection"`` is the seed's reading of DAX (one cache entry per item *and*
    projection, each ``entry_share`` of the item's size); ``keyed_by="item"`` is the documentation's
    (entries "stored by their primary key values": one full item per key, shared by every projection).
    """

    catalog: int = 500_000
    alpha: float = 1.0
    reads_per_s: float = 40_000 / 60
    item_bytes: int = 2048
    projections: int = 1
    entry_share: float = 1.0
    keyed_by: str = "projection"

    def __post_init__(self) -> None:
        if self.keyed_by not in ("projection", "item"):
            raise ParameterError(f"keyed_by={self.keyed_by!r} must be 'projection' or 'item'")
        for name in ("catalog", "item_bytes", "projections"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ParameterError(f"{name}={value!r} must be a positive integer")
        if not (self.alpha > 0 and self.reads_per_s > 0 and 0 < self.entry_share <= 1):
            raise ParameterError("alpha and reads_per_s must be positive and entry_share in (0, 1]")

    def item_popularity(self) -> np.ndarray:
        """Probability that a read is for item rank 1..catalog (Zipf with exponent ``alpha``)."""
        weights = np.arange(1, self.catalog + 1, dtype=float) ** -self.alpha
        return weights / weights.sum()

    @property
    def entries_per_item(self) -> int:
        return self.projections if self.keyed_by == "projection" else 1

    @property
    def entry_bytes(self) -> float:
        return self.item_bytes * (self.entry_share if self.keyed_by == "projection" else 1.0)

    def entry_groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cache entries in groups of similar popularity: read rate of one entry (per s), bytes of the
        group's entries, and reads per second the group receives (projections are used equally)."""
        mass, count = zipf_groups(self.catalog, self.alpha)
        per_item = self.entries_per_item
        rate = self.reads_per_s * mass / count / per_item
        return rate, count * per_item * self.entry_bytes, self.reads_per_s * mass

    def footprint_bytes(self) -> float:
        """Memory for every entry at once (the whole catalog in every projection)."""
        return self.catalog * self.entries_per_item * self.entry_bytes


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


def characteristic_time(rates: np.ndarray, sizes: np.ndarray, capacity_bytes: float) -> float:
    """Che's T: Σ sizeᵢ(1 − e^(−λᵢT)) = capacity; ``inf`` when everything fits at once."""
    if sizes.sum() <= capacity_bytes:
        return math.inf
    low, high = 1e-9, 1e12
    for _ in range(200):
        mid = math.sqrt(low * high)
        if (sizes * -np.expm1(-rates * mid)).sum() > capacity_bytes:
            high = mid
        else:
            low = mid
        if high / low < 1 + 1e-9:
            break
    return math.sqrt(low * high)


def predict(workload: ProjectionWorkload, *, capacity_bytes: float, ttl_s: float = 300.0) -> dict[str, float]:
    """Hit rate, Che time, resident memory and origin reads/s for ``workload`` on one DAX node."""
    rate, size, reads = workload.entry_groups()
    t_char = characteristic_time(rate, size, capacity_bytes)
    hit = hit_probability(rate, t_char, ttl_s)
    hit_rate = float((reads * hit).sum() / reads.sum())
    resident = size.sum() if not math.isfinite(t_char) else float((size * -np.expm1(-rate * t_char)).sum())
    return {"hit_rate": hit_rate, "t_char_s": t_char, "resident_gb": float(resident) / GB,
            "memory_bound": math.isfinite(t_char) and t_char < ttl_s,
            "origin_reads_per_s": workload.reads_per_s * (1 - hit_rate)}


def calibrate_alpha(workload: ProjectionWorkload, *, target_hit: float, capacity_bytes: float,
                    ttl_s: float = 300.0) -> float:
    """The Zipf exponent for which ``workload`` reaches ``target_hit`` (used to meet the seed's 85 %)."""
    low, high = 0.3, 2.5
    for _ in range(30):
        mid = (low + high) / 2
        hit = predict(replace(workload, alpha=mid), capacity_bytes=capacity_bytes, ttl_s=ttl_s)["hit_rate"]
        low, high = (mid, high) if hit < target_hit else (low, mid)
    return (low + high) / 2


def region(workload: ProjectionWorkload, *, item_kb: list[int], catalogs: list[int], projections: list[int],
           capacity_bytes: float, ttl_s: float = 300.0) -> pd.DataFrame:
    """Modelled hit rate over item size × catalog × projections, popularity and traffic held fixed."""
    rows = []
    for catalog in catalogs:
        for p in projections:
            for kb in item_kb:
                w = replace(workload, catalog=catalog, item_bytes=kb * 1024, projections=p)
                out = predict(w, capacity_bytes=capacity_bytes, ttl_s=ttl_s)
                rows.append({"catalog": catalog, "projections": p, "item_kb": kb,
                             "footprint_gb": w.footprint_bytes() / GB, **out})
    return pd.DataFrame(rows)


def alpha_table(workload: ProjectionWorkload, *, alphas: list[float], projections: list[int],
                capacity_bytes: float, ttl_s: float = 300.0) -> pd.DataFrame:
    """Hit rate per Zipf exponent and projection count: can any one popularity give both 85 % and 40 %?"""
    return pd.DataFrame([
        {"alpha": a, "projections": p,
         "hit_rate": predict(replace(workload, alpha=a, projections=p), capacity_bytes=capacity_bytes,
                             ttl_s=ttl_s)["hit_rate"]}
        for a in alphas for p in projections]).pivot(index="alpha", columns="projections", values="hit_rate")


def ttl_cold_tail(workload: ProjectionWorkload, *, ttl_s: float = 300.0) -> dict[str, float]:
    """Items read less than once per TTL (so most of their reads miss however big the node), and their reads."""
    rate, _, reads = workload.entry_groups()
    _, count = zipf_groups(workload.catalog, workload.alpha)
    cold = rate * ttl_s < 1
    return {"cold_item_share": float(count[cold].sum() / workload.catalog),
            "cold_read_share": float(reads[cold].sum() / reads.sum())}
