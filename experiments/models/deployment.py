"""Origin load when per-task caches start empty: a scale-out and a rolling deployment, and their mitigations.

Tasks cache the promotion of each store category for a TTL. Every read goes to a random live task;
a task that does not hold the category (or holds an expired copy) calls the Promotions service,
which answers after ``latency_s``, and caches the answer. New tasks start empty, and either fill
on demand (``lazy``), or warm every category at start-up from the origin (``origin`` — the seed's
description) or from a shared cache that stays warm (``shared``, e.g. the Redis the other chapters
measure). Mitigations are switches: a random TTL jitter, per-task request coalescing (a miss while
the same category is already being fetched waits for that fetch), and smaller, more frequent batches.

The request loop is compiled with numba; the result is the origin's calls per second.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numba
import numpy as np
import pandas as pd

from experiments.errors import ParameterError
from experiments.seed import figure, promo_reads_per_s, rollout_interval_s
from experiments.seed import origin as seed_origin

WARM_MODES = ("lazy", "origin", "shared")


@dataclass(frozen=True)
class PromoTraffic:
    """Promotion reads: the seed's 200 categories, 60 tasks, 15-minute TTL, 80 ms Promotions service (each
    default read from the note's figures; ``alpha``, the categories' Zipf exponent, is ours)."""

    reads_per_s: float = field(default_factory=promo_reads_per_s)
    categories: int = field(default_factory=lambda: int(figure("promo_categories")))
    alpha: float = 1.0
    tasks: int = field(default_factory=lambda: int(figure("task_count")))
    ttl_s: float = field(default_factory=lambda: figure("promo_ttl_s"))
    latency_s: float = field(default_factory=lambda: float(seed_origin("promo").seed_origin_ms) / 1000)
    horizon_s: float = 2700.0


@dataclass(frozen=True)
class Change:
    """A fleet change: ``replace`` swaps tasks in batches; ``add`` brings new tasks in at once."""

    name: str
    kind: str = "replace"
    batch: int = field(default_factory=lambda: int(figure("rollout_batch")))
    interval_s: float = field(default_factory=rollout_interval_s)
    start_s: float = 900.0
    warm: str = "lazy"
    jitter: float = 0.0
    coalesce: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("replace", "add") or self.warm not in WARM_MODES:
            raise ParameterError(f"kind={self.kind!r} must be replace/add and warm={self.warm!r} one of {WARM_MODES}")
        if not 0 <= self.jitter < 1 or self.batch < 1 or self.interval_s <= 0:
            raise ParameterError("jitter must be in [0, 1), batch at least 1 and interval_s positive")


def _events(change: Change, tasks: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Times and slots of the tasks that start empty, and the number of slots ever live."""
    if change.kind == "add":
        slots = np.arange(tasks, tasks + change.batch)
        return np.full(change.batch, change.start_s), slots, tasks + change.batch
    slots = np.arange(tasks)
    times = change.start_s + (slots // change.batch) * change.interval_s
    return times.astype(float), slots, tasks


@numba.njit(cache=False)
def _kernel(times, cats, slots, ev_times, ev_slots, expires, categories, ttl, latency, jitter, coalesce,
            warm, horizon, seed):  # pragma: no cover - compiled
    np.random.seed(seed)
    n_slots = expires.shape[0]
    inflight = np.full((n_slots, categories), -1.0)
    origin = np.zeros(int(horizon) + 1, np.int64)
    shared = np.zeros(int(horizon) + 1, np.int64)
    e = 0
    for r in range(times.size):
        now = times[r]
        while e < ev_times.size and ev_times[e] <= now:
            slot = ev_slots[e]
            t = ev_times[e]
            for c in range(categories):
                expires[slot, c] = -1.0
                inflight[slot, c] = -1.0
                if warm == 1:
                    origin[int(t)] += 1
                if warm >= 1:
                    expires[slot, c] = t + latency + ttl * (1.0 + jitter * (2.0 * np.random.random() - 1.0))
            if warm == 2:
                shared[int(t)] += categories
            e += 1
        slot = slots[r]
        c = cats[r]
        if expires[slot, c] > now:
            continue
        if coalesce and inflight[slot, c] > now:
            continue
        origin[int(now)] += 1
        inflight[slot, c] = now + latency
        expires[slot, c] = now + latency + ttl * (1.0 + jitter * (2.0 * np.random.random() - 1.0))
    return origin, shared


def simulate(traffic: PromoTraffic, change: Change, *, seed: int) -> pd.DataFrame:
    """Calls per second to the Promotions service (and to the shared cache) for one fleet change."""
    rng = np.random.default_rng(seed)
    count = int(traffic.reads_per_s * traffic.horizon_s)
    times = np.cumsum(rng.exponential(1 / traffic.reads_per_s, count))
    times = times[times < traffic.horizon_s]
    weights = np.arange(1, traffic.categories + 1, dtype=float) ** -traffic.alpha
    cats = rng.choice(traffic.categories, size=times.size, p=weights / weights.sum())
    ev_times, ev_slots, n_slots = _events(change, traffic.tasks)
    live = np.where((change.kind == "add") & (times >= change.start_s), n_slots, traffic.tasks)
    slots = np.minimum((rng.random(times.size) * live).astype(np.int64), n_slots - 1)
    # tasks present from the start are warm: each category was fetched at a random time in the last TTL
    expires = np.full((n_slots, traffic.categories), -1.0)
    expires[:traffic.tasks] = rng.uniform(0, traffic.ttl_s, (traffic.tasks, traffic.categories))
    origin, shared = _kernel(times, cats.astype(np.int64), slots, ev_times, ev_slots.astype(np.int64), expires,
                             traffic.categories, traffic.ttl_s, traffic.latency_s, change.jitter, change.coalesce,
                             WARM_MODES.index(change.warm), traffic.horizon_s, seed)
    return pd.DataFrame({"t_s": np.arange(origin.size), "origin_calls": origin, "shared_cache_calls": shared,
                         "change": change.name})


def summarize(frame: pd.DataFrame, change: Change, traffic: PromoTraffic) -> dict[str, float]:
    """Warm baseline, peak and extra calls after the change, and the cold-start calls of its first minute."""
    before = frame[(frame.t_s >= 60) & (frame.t_s < change.start_s)].origin_calls
    after = frame[frame.t_s >= change.start_s]
    baseline = float(before.mean())
    first_minute = frame[(frame.t_s >= change.start_s) & (frame.t_s < change.start_s + 60)].origin_calls.sum()
    return {"change": change.name, "baseline_per_s": baseline, "peak_per_s": float(after.origin_calls.max()),
            "peak_over_baseline": float(after.origin_calls.max()) / baseline,
            "first_minute_calls": int(first_minute), "first_minute_extra": float(first_minute - 60 * baseline),
            "extra_calls": float(after.origin_calls.sum() - baseline * len(after)),
            "shared_cache_calls": int(frame.shared_cache_calls.sum())}


def compare(traffic: PromoTraffic, changes: list[Change], *, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every change simulated on the same request stream: the per-second load and a summary table."""
    frames = [simulate(traffic, change, seed=seed) for change in changes]
    summary = pd.DataFrame([summarize(f, c, traffic) for f, c in zip(frames, changes)])
    return pd.concat(frames, ignore_index=True), summary


def scenarios(start_s: float = 900.0) -> list[Change]:
    """The seed's scale-out and rolling deployment, and the mitigations the chapter compares."""
    roll = Change("rolling deploy, lazy fill", start_s=start_s)
    return [
        Change("scale-out +10 tasks, lazy fill", kind="add", start_s=start_s),
        Change("scale-out +10 tasks, warm from origin", kind="add", warm="origin", start_s=start_s),
        roll,
        replace(roll, name="rolling deploy, warm from origin", warm="origin"),
        replace(roll, name="rolling deploy, warm from shared cache", warm="shared"),
        replace(roll, name="rolling deploy, warm from origin, TTL jitter ±20 %", warm="origin", jitter=0.2),
        replace(roll, name="rolling deploy, lazy fill, coalescing", coalesce=True),
        replace(roll, name="rolling deploy, warm from origin, batches of 2 every 20 s", warm="origin", batch=2,
                interval_s=20.0),
    ]
