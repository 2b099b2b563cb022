"""An analytic model of DAX's item cache: hit rate and memory for a Zipf catalog read by several projections.

DAX's item cache (AWS, *DAX: how it works*) is an LRU list under the node's memory with a
time-to-live counted from the moment an item is written into the cache; reading an item refreshes
its place in the LRU list but not its TTL, and an expired item is only noticed when it is read
(that read is a miss) — *lazy* expiry in `experiments.models.cachemodel`, which holds the model itself.
This module describes the workload (items, projections, the two readings of how projections are
keyed) and asks the model the chapter's questions; `experiments.models.daxsim` checks it by simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from experiments.errors import ParameterError
from experiments.models.cachemodel import mixture, zipf_groups
from experiments.seed import product_reads_per_s, service_default

ITEM_TTL_S = service_default("dax_item_ttl_s")
"""A DAX cluster's default item-cache TTL (record-ttl-millis of its default parameter group: 5 minutes)."""

GB = 1e9
KB = 1e3
"""Decimal units throughout the DAX model: the note's 13 GB node and 2 KB items are 13e9 and 2,000 bytes."""


@dataclass(frozen=True)
class ProjectionWorkload:
    """GetItem traffic on a catalog: Zipf item popularity, each read using one of ``projections``.

    ``keyed_by="projection"`` is the seed's reading of DAX (one cache entry per item *and*
    projection, each ``entry_share`` of the item's size); ``keyed_by="item"`` is the documentation's
    (entries "stored by their primary key values": one full item per key, shared by every projection).
    """

    catalog: int = 500_000
    alpha: float = 1.0
    reads_per_s: float = field(default_factory=product_reads_per_s)
    item_bytes: int = 2000
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
        """Cache entries one item takes: one per projection when the query cache is keyed by projection."""
        return self.projections if self.keyed_by == "projection" else 1

    @property
    def entry_bytes(self) -> float:
        """Bytes of one cache entry: the item's, or its projection's share of them."""
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


def predict(workload: ProjectionWorkload, *, capacity_bytes: float, ttl_s: float = ITEM_TTL_S) -> dict[str, float]:
    """Hit rate, Che time, resident memory and origin reads/s for ``workload`` on one DAX node."""
    out = mixture(*workload.entry_groups(), capacity=capacity_bytes, ttl=ttl_s, expiry="lazy")
    return {"hit_rate": out["hit_rate"], "t_char_s": out["t_char_s"], "resident_gb": out["resident"] / GB,
            "memory_bound": math.isfinite(out["t_char_s"]) and out["t_char_s"] < ttl_s,
            "origin_reads_per_s": workload.reads_per_s * (1 - out["hit_rate"])}


def calibrate_alpha(workload: ProjectionWorkload, *, target_hit: float, capacity_bytes: float,
                    ttl_s: float = ITEM_TTL_S) -> float:
    """The Zipf exponent for which ``workload`` reaches ``target_hit`` (used to meet the seed's 85 %)."""
    low, high = 0.3, 2.5
    for _ in range(30):
        mid = (low + high) / 2
        hit = predict(replace(workload, alpha=mid), capacity_bytes=capacity_bytes, ttl_s=ttl_s)["hit_rate"]
        low, high = (mid, high) if hit < target_hit else (low, mid)
    return (low + high) / 2


def region(workload: ProjectionWorkload, *, item_kb: list[int], catalogs: list[int], projections: list[int],
           capacity_bytes: float, ttl_s: float = ITEM_TTL_S) -> pd.DataFrame:
    """Modelled hit rate over item size × catalog × projections, popularity and traffic held fixed."""
    rows = []
    for catalog in catalogs:
        for p in projections:
            for kb in item_kb:
                w = replace(workload, catalog=catalog, item_bytes=int(kb * KB), projections=p)
                out = predict(w, capacity_bytes=capacity_bytes, ttl_s=ttl_s)
                rows.append({"catalog": catalog, "projections": p, "item_kb": kb,
                             "footprint_gb": w.footprint_bytes() / GB, **out})
    return pd.DataFrame(rows)


def alpha_table(workload: ProjectionWorkload, *, alphas: list[float], projections: list[int],
                capacity_bytes: float, ttl_s: float = ITEM_TTL_S) -> pd.DataFrame:
    """Hit rate per Zipf exponent and projection count: can any one popularity give both 85 % and 40 %?"""
    return pd.DataFrame([
        {"alpha": a, "projections": p,
         "hit_rate": predict(replace(workload, alpha=a, projections=p), capacity_bytes=capacity_bytes,
                             ttl_s=ttl_s)["hit_rate"]}
        for a in alphas for p in projections]).pivot(index="alpha", columns="projections", values="hit_rate")


def ttl_cold_tail(workload: ProjectionWorkload, *, ttl_s: float = ITEM_TTL_S) -> dict[str, float]:
    """Items read less than once per TTL (so most of their reads miss however big the node), and their reads."""
    rate, _, reads = workload.entry_groups()
    _, count = zipf_groups(workload.catalog, workload.alpha)
    cold = rate * ttl_s < 1
    return {"cold_item_share": float(count[cold].sum() / workload.catalog),
            "cold_read_share": float(reads[cold].sum() / reads.sum())}
