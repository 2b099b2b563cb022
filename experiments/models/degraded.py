"""What each degraded mode of `experiments.caches.degraded` sends to the catalog while the shared cache is away,
for the whole fleet at the note's read rate — and the checks a real-server run can make of it.

The fleet reads products at the note's rate (40,000/min, Zipf over the 500K-ASIN catalog with the book's
one exponent, `experiments.models.popularity.product`), spread at random over its 60 tasks, and
every task has lost the cache (a partition of the cache's node from all of them). Then, per mode, the share
of reads that reach the catalog:

* fail open — every read (1);
* fail fast — none (0), and no read is answered;
* in-process copy — the misses of 60 per-task ``TTLCache(5000, 300)`` copies in steady state
  (`experiments.models.taskcache.predict`: Che's approximation with eager expiry);
* gutter pool — the misses of one shared pool whose entries live ``gutter_ttl_s`` from their fill
  (the same model, one cache, no size limit: a key costs one call per TTL cycle). That is its steady state: a
  gutter filled only on a miss is empty when the outage starts, and during its first TTL a key read at rate λ
  reaches the catalog at λ·e^(−λt) until its first read fills it (`gutter_fill_load`): the catalog first sees
  the fail-open load, and a first-come-first-served catalog left with that backlog and a steady load at its
  capacity never drains it (`gutter_cold_answered`). Kept warm — written by the invalidator beside the shared
  cache — the gutter starts in its steady state.

`fleet_modes` turns a lab run of the modes into the fleet's table (catalog calls, load, turns answered) with the
gutter's variants, and `recommended_mode` picks the mode that answers the most turns, then loads the catalog least.

Assumptions: Poisson reads (each key's reads independent), a stationary popularity, one fill per miss (a
task's threads share a fill; concurrent misses of one hot key in different tasks would add calls the model
does not count). The lab runs one task's stream for the in-process copy, checked against
`local_copy_replay`, the exact replay of the same reads.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from cachetools import TTLCache

from experiments.errors import ParameterError
from experiments.models import popularity
from experiments.models.cachemodel import zipf_groups
from experiments.models.taskcache import TaskTraffic, predict
from experiments.params import PLAN_CEILING
from experiments.seed import figure, product_reads_per_s

GUTTER_TTL_S = 10
"""Ours: a gutter entry's life, "a few seconds" — Facebook's gutter entries "expire quickly" (NSDI'13 §3.3)."""
GUTTER_MAX_UTILIZATION = PLAN_CEILING
"""The share of the catalog's capacity a gutter may plan to use: the book's ceiling for any plan."""


def traffic() -> TaskTraffic:
    """The note's product reads: 500K ASINs, the book's exponent, 40,000 reads/min."""
    return popularity.product().traffic()


def origin_share(mode: str, *, gutter_ttl_s: float = GUTTER_TTL_S, fleet: TaskTraffic | None = None) -> float:
    """The share of the fleet's product reads that reach the catalog in ``mode`` while the cache is away."""
    fleet = fleet or traffic()
    if mode == "fail open":
        return 1.0
    if mode == "fail fast":
        return 0.0
    if mode == "in-process copy":
        hit = predict(fleet, tasks=int(figure("task_count")), maxsize=figure("product_cache_entries"),
                      ttl_s=figure("product_cache_ttl_s"))["hit_rate"]
        return 1 - hit
    if mode == "gutter pool":
        return 1 - predict(fleet, tasks=1, maxsize=fleet.catalog, ttl_s=gutter_ttl_s)["hit_rate"]
    raise ParameterError(f"mode={mode!r} is not a degraded mode")


def gutter_fill_load(t_s: np.ndarray, *, fleet: TaskTraffic | None = None) -> np.ndarray:
    """Catalog calls per second ``t_s`` seconds into an outage, through a gutter that was empty at its start and
    fills on each key's first miss (valid within the gutter's first TTL): Σ λᵢ·e^(−λᵢ·t) over the keys."""
    fleet = fleet or traffic()
    mass, count = zipf_groups(fleet.catalog, fleet.alpha)
    rate = fleet.reads_per_s * mass / count
    t = np.atleast_1d(np.asarray(t_s, float))
    return (count * rate * np.exp(-np.outer(t, rate))).sum(axis=1)


def gutter_over_capacity_s(capacity_per_s: float, *, fleet: TaskTraffic | None = None) -> float:
    """How long after the outage starts a gutter filled on a miss keeps the catalog above ``capacity_per_s``."""
    low, high = 0.0, 1e6
    if gutter_fill_load([high], fleet=fleet)[0] > capacity_per_s:
        return float("inf")
    for _ in range(80):
        mid = (low + high) / 2
        low, high = (mid, high) if gutter_fill_load([mid], fleet=fleet)[0] > capacity_per_s else (low, mid)
    return high


def gutter_cold_answered(capacity_per_s: float, *, gutter_ttl_s: float, fleet: TaskTraffic | None = None) -> float:
    """The share of reads answered over the gutter's first TTL when it fills on a miss: the reads the gutter
    already holds. Its misses queue at a first-come-first-served catalog that took the fail-open load at the start,
    and whose steady load afterwards is at least its capacity when the TTL is the one that holds it there, so the
    backlog never drains and no catalog call is answered in time (the no-cache chapter's collapse)."""
    fleet = fleet or traffic()
    t = np.linspace(0, gutter_ttl_s, 601)
    missed = gutter_fill_load(t, fleet=fleet) / fleet.reads_per_s
    steady = origin_share("gutter pool", gutter_ttl_s=gutter_ttl_s, fleet=fleet) * fleet.reads_per_s
    if steady < capacity_per_s * 0.999:
        raise ParameterError(f"the gutter's steady load ({steady:.1f}/s) is under the catalog's capacity: the backlog "
                             "would drain, which this bound does not model")
    return float(1 - np.trapezoid(missed, t) / gutter_ttl_s)


def gutter_ttl_for(capacity_per_s: float, *, fleet: TaskTraffic | None = None) -> float:
    """The shortest gutter TTL (s) whose misses stay within the catalog's ``capacity_per_s``."""
    fleet = fleet or traffic()
    if origin_share("gutter pool", gutter_ttl_s=1e7, fleet=fleet) * fleet.reads_per_s > capacity_per_s:
        raise ParameterError(f"no gutter TTL keeps the catalog under {capacity_per_s:g} calls/s")
    low, high = 0.1, 1e7
    for _ in range(60):
        mid = (low * high) ** 0.5
        if origin_share("gutter pool", gutter_ttl_s=mid, fleet=fleet) * fleet.reads_per_s > capacity_per_s:
            low = mid
        else:
            high = mid
    return high


def local_copy_replay(items: np.ndarray, times: np.ndarray, *, warm: int, entries: int, ttl_s: float) -> float:
    """The exact hit rate of one task's ``TTLCache(entries, ttl_s)`` over the reads after the first ``warm``,
    replayed one read at a time on the reads' own clock: what the lab's in-process copy must match."""
    if not 0 <= warm < len(items):
        raise ParameterError(f"warm={warm} must leave reads to count (of {len(items)})")
    now = [0.0]
    cache, hits = TTLCache(entries, ttl_s, timer=lambda: now[0]), 0
    for i, (item, at) in enumerate(zip(items.tolist(), times.tolist())):
        now[0] = at
        if item in cache:
            hits += i >= warm
        else:
            cache[item] = True
    return hits / (len(items) - warm)


def fleet_modes(lab: pd.DataFrame) -> pd.DataFrame:
    """Each degraded mode at the note's rate, while every task has lost the cache: the catalog calls per second
    the whole fleet sends (`experiments.models.degraded`) against the catalog's capacity of 2,000 requests/min,
    and the share of turns answered in budget. A read the mode serves itself is answered (the lab's turns took
    well under the budget); a read sent to the catalog is answered only while the catalog is within its
    capacity — past it, a first-come-first-served catalog answers almost nothing in time (the no-cache
    chapter); fail fast answers nothing. The gutter pool appears four times: with
    `GUTTER_TTL_S` entries, and with entries living as long as it takes to hold the
    catalog at its capacity — kept warm by the invalidator (its steady state from the outage's first second), and
    filled on a miss (empty when the outage starts: over its first TTL it answers the reads it already holds, at
    the mean catalog load of that TTL, `gutter_cold_answered`) —, and kept warm with entries that live
    as long as it takes to leave the catalog at `GUTTER_MAX_UTILIZATION` (a plan at 100 % of a capacity has no
    room for a random queue or concurrent misses of one hot key). A mode that kept no turn in budget in the lab
    answers nothing here either."""
    capacity = figure("catalog_capacity_per_min") / 60
    long_ttl = gutter_ttl_for(capacity)
    planned_ttl = gutter_ttl_for(GUTTER_MAX_UTILIZATION * capacity)
    rows = []
    for row in lab.itertuples():
        variants = ([(f"gutter pool, {GUTTER_TTL_S:.0f} s entries", GUTTER_TTL_S, False),
                     (f"gutter pool, {long_ttl:.0f} s entries, kept warm", long_ttl, False),
                     (f"gutter pool, {long_ttl:.0f} s entries, filled on a miss", long_ttl, True),
                     (f"gutter pool, {planned_ttl:.0f} s entries, kept warm", planned_ttl, False)]
                    if row.mode == "gutter pool" else [(row.mode, GUTTER_TTL_S, False)])
        for label, ttl_s, cold in variants:
            if cold:
                t = np.linspace(0, ttl_s, 601)
                calls = float(np.trapezoid(gutter_fill_load(t), t) / ttl_s)
                answered = gutter_cold_answered(capacity, gutter_ttl_s=ttl_s)
            else:
                share = origin_share(row.mode, gutter_ttl_s=ttl_s)
                calls = share * product_reads_per_s()
                within = calls <= capacity * 1.001
                answered = 0.0 if row.mode == "fail fast" else (1 - share) + (share if within else 0.0)
            rows.append({"mode": label, "catalog_calls_per_s": calls, "catalog_load_x": calls / capacity,
                         "answered_pct": 100 * answered if row.in_budget >= 0.99 else 0.0})
    return pd.DataFrame(rows)


def recommended_mode(fleet: pd.DataFrame) -> str:
    """The mode the orchestrator should use: the one that answers the most turns at the note's rate, and of
    those the one that sends the catalog the fewest calls."""
    return str(fleet.sort_values(["answered_pct", "catalog_calls_per_s"], ascending=[False, True]).iloc[0]["mode"])
