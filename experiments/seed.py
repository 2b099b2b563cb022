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
def _figures() -> dict[str, dict]:
    with open(DATA / "seed_figures.csv", newline="") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def figure(name: str) -> float:
    """The seed's value for ``name`` (a KeyError names a figure that is not in the file)."""
    return float(_figures()[name]["value"])


def figure_unit(name: str) -> str:
    """The unit the seed states ``name`` in (``ms``, ``requests/min``…)."""
    return _figures()[name]["unit"]


CONFIGURATION = "configuration"
"""The scenario of figures that describe the note's system as configured (60 tasks, the per-task
``TTLCache(maxsize=5000, ttl=300)``, the top 100 ASINs): they hold in every scenario."""


def scenario(name: str) -> str:
    """The scenario of the note that figure ``name`` belongs to (the section whose story gives it).

    The note's scenarios carry figures that do not fit together — its Memcached failure sizes the
    catalog for 2,000 requests/min at a 95 % hit rate, its no-cache failure for 5,000 concurrent
    requests at a 10 % miss baseline — so a model combines figures of one scenario only, and a ledger
    row shows the scenario of each input (`experiments.ledger.Ledger.record`)."""
    return _figures()[name]["scenario"]


PRODUCT_READS_INPUTS = ("catalog_capacity_per_min", "planned_hit_rate")
"""The figures `product_reads_per_min` derives from (both from the Memcached failure 2 scenario)."""


def product_reads_per_min() -> float:
    """Product reads per minute implied by the seed's Memcached scenario: a catalog sized for
    2,000 requests/min at a 95 % hit rate serves capacity ÷ (1 − hit rate) = 40,000 reads/min."""
    return figure("catalog_capacity_per_min") / (1 - figure("planned_hit_rate"))


def product_reads_per_s() -> float:
    """`product_reads_per_min` per second (≈ 667 reads/s)."""
    return product_reads_per_min() / 60


PROMO_READS_INPUTS = ("stale_coupon_users", "poll_interval_s")
"""The figures `promo_reads_per_s` derives from (both from the Memcached failure 1 scenario)."""


def promo_reads_per_s() -> float:
    """Promotion reads per second implied by the seed's Memcached failure 1: 40,000 users saw the
    expired coupon within one 60-second poll interval (≈ 667 reads/s, the same value by coincidence)."""
    return figure("stale_coupon_users") / figure("poll_interval_s")


LAUNCH_INPUTS = ("launch_users", "catalog_concurrency", "launch_catalog_latency_ms", "catalog_timeout_ms", "spike_s",
                 "autoscale_min_s", "autoscale_max_s")
"""The figures the launch model (`experiments.models.flashsale.Launch`) takes: the no-cache failure's launch and
catalog, and no-cache Q1's ramp and scale-out times."""

LAUNCH_RECONCILED = ("no-cache Q1's 15 s spike and 90-180 s scale-out are the ramp and the catalog's response of the "
                     "no-cache failure's launch, the one launch the note tells twice")
"""How a ledger row that uses `LAUNCH_INPUTS` makes its two scenarios fit."""


def rollout_interval_s() -> float:
    """Seconds between two batches of the note's rolling deployment (in-process Q2): its 60 tasks replaced in
    batches of 10 over 10 minutes, six batches 100 s apart."""
    return figure("rollout_minutes") * 60 / (figure("task_count") / figure("rollout_batch"))


def launch_capacity_per_s() -> float:
    """The catalog's capacity in the no-cache failure, per second: 5,000 concurrent requests at its 120 ms
    (Little's law), ≈ 41,667 requests/s."""
    return figure("catalog_concurrency") / (figure("launch_catalog_latency_ms") / 1000)


def launch_reads_per_s() -> float:
    """The launch's catalog reads per second in the no-cache failure: 50,000 concurrent requests where the
    catalog was sized for 5,000 — ten times its capacity, ≈ 416,667 reads/s."""
    return launch_capacity_per_s() * figure("launch_users") / figure("catalog_concurrency")


@lru_cache(maxsize=1)
def _defaults() -> dict[str, float]:
    with open(DATA / "service_defaults.csv", newline="") as handle:
        return {row["name"]: float(row["value"]) for row in csv.DictReader(handle)}


def service_default(name: str) -> float:
    """A documented default of a service the note names (``data/service_defaults.csv``, with its source):
    the setting the note's system would run with, where the book runs shorter settings to stay fast."""
    return _defaults()[name]


def origin_table() -> pd.DataFrame:
    """The seed's hit/miss economics table plus our latency spread (``data/origins.csv``)."""
    return pd.read_csv(DATA / "origins.csv")


def origin(family: str) -> pd.Series:
    """One family's row of `origin_table`: its origin's latency (``seed_origin_ms``), cache bound, saving, and
    our latency spread (``latency_sigma``)."""
    return origin_table().set_index("family").loc[family]


def value_sizes() -> pd.DataFrame:
    """The value sizes timed in the book and where each comes from (``data/value_sizes.csv``)."""
    return pd.read_csv(DATA / "value_sizes.csv")
