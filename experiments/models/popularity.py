"""The product traffic's popularity: one Zipf model over the note's catalog, calibrated once, for every chapter.

The note gives the product traffic's skew twice, in one scenario (its Memcached failure 2), and the two do not
fit together:

* **planned** — the catalog "was sized for 2,000 requests/min" at a 95 % hit rate, so one shared cache with the
  5-minute product TTL must hit 95 % of the 40,000 product reads a minute: that takes a Zipf exponent of about
  1.33, at which the top 100 ASINs draw 83 % of the reads;
* **top hundred** — the top 100 ASINs get 15,000 of those 40,000 reads a minute (37.5 %): that takes an
  exponent near 1.0, at which one shared cache with the same TTL hits about 74 %, and the catalog sees five
  times the 2,000 misses a minute it was sized for.

Both readings spread the reads over the 500K-ASIN catalog, the only catalog size the note gives (its DAX Q3, a
figure of the store's configuration rather than of one story: reconciled here, in the open). Over a smaller set of
products that are read at all the two readings can both hold: `fitting_catalog` finds the size at which they do
(about 12,000 ASINs, 2 % of the catalog, at an exponent near 0.88) — the edge of this finding.

The book keeps the planned reading (`product`): it is the design the note plans and sizes its catalog for, and
every chapter tests that design. `reconciliation` states the readings in the open; the traffic chapter shows
which conclusions move with the choice. The hot-key experiments of the Redis, network and Memcached chapters take
their hot set from `hot_set`: the top 100 at the note's 15,000 reads a minute, as the scenario they test states it
(the top-hundred reading); under the planned reading the hottest product is read about four times as often. The hit rates
come from `experiments.models.taskcache.predict` (one cache without a size limit, expiring entries at the TTL),
the model the in-process chapter checks by simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from experiments.models.taskcache import TaskTraffic, calibrate_alpha, predict
from experiments.seed import figure, product_reads_per_min, product_reads_per_s

PLANNED = "planned 95 % hit rate"
TOP_HUNDRED = "top 100 at 15,000 of 40,000 reads/min"
BOTH = "both, over the products read at all"


@dataclass(frozen=True)
class Popularity:
    """Zipf popularity over ``catalog`` products, most popular first, at ``reads_per_s``; ``reading`` says which
    of the note's figures calibrated ``alpha``."""

    reading: str
    alpha: float
    catalog: int
    reads_per_s: float

    def traffic(self) -> TaskTraffic:
        """The same popularity as the per-task cache model's traffic."""
        return TaskTraffic(catalog=self.catalog, alpha=self.alpha, reads_per_s=self.reads_per_s)

    def top_share(self, n: int) -> float:
        """The share of the reads the ``n`` most popular products draw."""
        weights = np.arange(1, self.catalog + 1, dtype=float) ** -self.alpha
        return float(weights[:n].sum() / weights.sum())

    def hottest_reads_per_s(self) -> float:
        """How often the most popular product is read."""
        return self.top_share(1) * self.reads_per_s

    def shared_hit_rate(self, ttl_s: float) -> float:
        """What one shared cache without a size limit hits with entries that live ``ttl_s`` from their fill."""
        return float(predict(self.traffic(), tasks=1, maxsize=self.catalog, ttl_s=ttl_s)["hit_rate"])


def _base(catalog: int | None = None) -> TaskTraffic:
    return TaskTraffic(catalog=catalog or int(figure("dax_catalog")), reads_per_s=product_reads_per_s())


def _alpha_for_top_share(n: int, share: float, catalog: int) -> float:
    low, high = 0.05, 3.0
    if not Popularity("", low, catalog, 1.0).top_share(n) <= share <= Popularity("", high, catalog, 1.0).top_share(n):
        raise ValueError(f"no Zipf exponent in [{low}, {high}] gives the top {n} of {catalog:,} a {share:.1%} share")
    for _ in range(40):
        mid = (low + high) / 2
        probe = Popularity("", mid, catalog, 1.0)
        low, high = (mid, high) if probe.top_share(n) < share else (low, mid)
    return (low + high) / 2


def _top_hundred_over(catalog: int) -> Popularity:
    share = figure("hot_product_requests_per_min") / product_reads_per_min()
    return Popularity(TOP_HUNDRED, _alpha_for_top_share(int(figure("hot_products")), share, catalog), catalog,
                      product_reads_per_s())


@lru_cache(maxsize=1)
def product() -> Popularity:
    """The product traffic's popularity every chapter uses: calibrated on the planned 95 % hit rate."""
    base = _base()
    alpha = calibrate_alpha(base, target_hit=figure("planned_hit_rate"), ttl_s=figure("product_cache_ttl_s"))
    return Popularity(PLANNED, alpha, base.catalog, base.reads_per_s)


@lru_cache(maxsize=1)
def top_hundred() -> Popularity:
    """The reading the book does not use: calibrated on the top 100's share of the product reads."""
    return _top_hundred_over(_base().catalog)


def hot_set() -> Popularity:
    """The popularity the hot-key experiments drive (the Redis chapter's near cache at the hottest product's rate,
    the network chapter's hot product, the Memcached chapter's cold node under the top 100): the note's Memcached
    failure 2, which those experiments test, states its hot set — the top 100 at 15,000 of 40,000 reads a minute —
    so they take the top-hundred reading, where the hit rates take `product`."""
    return top_hundred()


@lru_cache(maxsize=1)
def fitting_catalog() -> Popularity:
    """The number of products read at all over which both readings hold at once: the top 100's share and the
    planned hit rate with the product TTL (by bisection on the catalog's size, the exponent from the share)."""
    target, ttl = figure("planned_hit_rate"), figure("product_cache_ttl_s")
    low, high = 2 * int(figure("hot_products")), int(figure("dax_catalog"))
    for _ in range(30):
        mid = int((low * high) ** 0.5)
        hit = _top_hundred_over(mid).shared_hit_rate(ttl)
        low, high = (mid, high) if hit > target else (low, mid)
        if high - low <= 1:
            break
    p = _top_hundred_over(low)
    return Popularity(BOTH, p.alpha, p.catalog, p.reads_per_s)


def reconciliation() -> pd.DataFrame:
    """The readings side by side — the planned one, the top 100's, and both over the products read at all: the
    products, exponent, the top 100's share, one shared cache's hit rate at the product TTL, and the catalog's miss
    load against the 2,000 requests/min it was sized for."""
    ttl, capacity = figure("product_cache_ttl_s"), figure("catalog_capacity_per_min")
    rows = []
    for p in (product(), top_hundred(), fitting_catalog()):
        hit = p.shared_hit_rate(ttl)
        rows.append({"reading": p.reading, "products": p.catalog, "alpha": p.alpha,
                     "top_100_share_pct": 100 * p.top_share(int(figure("hot_products"))),
                     "shared_hit_pct": 100 * hit, "catalog_load_x": product_reads_per_min() * (1 - hit) / capacity})
    return pd.DataFrame(rows)
