"""Figures and tables from the seed that models use, each with its source in ``data/``.

Single figures live in ``data/seed_figures.csv`` (`figure`); the hit/miss economics table in
``data/origins.csv`` (`origin_table`); the value sizes the book times in ``data/value_sizes.csv``
(`value_sizes`). Figures the seed implies but never states are derived here once, by name, so every
chapter computes them the same way.
"""

from __future__ import annotations

import csv
from functools import lru_cache

import pandas as pd

from experiments.paths import DATA


@lru_cache(maxsize=1)
def _figures() -> dict[str, float]:
    with open(DATA / "seed_figures.csv", newline="") as handle:
        return {row["name"]: float(row["value"]) for row in csv.DictReader(handle)}


def figure(name: str) -> float:
    """The seed's value for ``name`` (a KeyError names a figure that is not in the file)."""
    return _figures()[name]


def product_reads_per_min() -> float:
    """Product reads per minute implied by the seed's Memcached scenario: a catalog sized for
    2,000 requests/min at a 95 % hit rate serves capacity ÷ (1 − hit rate) = 40,000 reads/min."""
    return figure("catalog_capacity_per_min") / (1 - figure("planned_hit_rate"))


def product_reads_per_s() -> float:
    """`product_reads_per_min` per second (≈ 667 reads/s)."""
    return product_reads_per_min() / 60


def promo_reads_per_s() -> float:
    """Promotion reads per second implied by the seed's Memcached failure 1: 40,000 users saw the
    expired coupon within one 60-second poll interval (≈ 667 reads/s, the same value by coincidence)."""
    return figure("stale_coupon_users") / figure("poll_interval_s")


def origin_table() -> pd.DataFrame:
    """The seed's hit/miss economics table plus our latency spread (``data/origins.csv``)."""
    return pd.read_csv(DATA / "origins.csv")


def value_sizes() -> pd.DataFrame:
    """The value sizes timed in the book and where each comes from (``data/value_sizes.csv``)."""
    return pd.read_csv(DATA / "value_sizes.csv")
