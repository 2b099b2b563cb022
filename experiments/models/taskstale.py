"""The stale promotion of the seed's failure 1: per-task caches after the promotion changes at t = 0.

Every task caches the promotion for ``ttl_s`` from the moment it fetched it, and fetches again at the
first request after it expired. A request at time t ≥ 0 is answered with the old promotion if its
task's last fetch was before 0 and has not expired yet. The simulation follows each task's fetch
chain — with Poisson requests the next fetch comes an exponential gap after each expiry — from an
empty cache at a start time drawn at random over the day before the change; the model is the renewal
argument's stationary answer: a task holds a cached copy with probability τ/(τ + 1/r), of an age
uniform over [0, τ), so the share of tasks still stale t after the change is τ/(τ + 1/r) · (1 − t/τ).
Requests are spread evenly over tasks, so the share of users who see the old promotion is the share of stale tasks.

The simulation shares the model's key assumption — task phases independent and spread evenly — so their
agreement proves the arithmetic, not the assumption. `stale_after_rollout` breaks it: the tasks start in
the batches of a rolling deployment (the note's 10 at a time over 10 minutes) that ends shortly before
the change, so their caches were all filled within minutes of each other.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def model_stale_share(t_s: np.ndarray, *, ttl_s: float, reads_per_s_per_task: float) -> np.ndarray:
    """Expected share of tasks (and of users) still served the old promotion ``t_s`` after the change."""
    cached = ttl_s / (ttl_s + 1 / reads_per_s_per_task)
    return cached * np.clip(1 - np.asarray(t_s, float) / ttl_s, 0, 1)


def last_fetch_before_change(tasks: int, trials: int, *, ttl_s: float, reads_per_s_per_task: float,
                             seed: int, starts_s: np.ndarray | None = None) -> np.ndarray:
    """For each trial and task, when the copy held at t = 0 was fetched (−inf if none was held). Tasks start
    with empty caches at ``starts_s`` (one per task, before 0), or by default at independent moments of
    the last day."""
    rng = np.random.default_rng(seed)
    gap = 1 / reads_per_s_per_task
    start = (-rng.uniform(ttl_s, 86_400, (trials, tasks)) if starts_s is None
             else np.broadcast_to(np.asarray(starts_s, float), (trials, tasks)))
    fetch = start + rng.exponential(gap, (trials, tasks))
    while True:
        following = fetch + ttl_s + rng.exponential(gap, fetch.shape)
        advance = following <= 0
        if not advance.any():
            break
        fetch = np.where(advance, following, fetch)
    return np.where(fetch + ttl_s > 0, fetch, -np.inf)


def _stale_counts(fetched: np.ndarray, *, ttl_s: float, minute: float) -> dict[str, float]:
    """Stale tasks ``minute`` after the change over the trials: mean and 5–95 % range."""
    stale = (fetched + ttl_s > 60 * minute).sum(axis=1)
    return {"simulated_mean_tasks": stale.mean(), "simulated_p5_tasks": np.percentile(stale, 5),
            "simulated_p95_tasks": np.percentile(stale, 95)}


def stale_over_time(*, tasks: int, ttl_s: float, reads_per_s_per_task: float, trials: int, seed: int,
                    minutes: list[float]) -> pd.DataFrame:
    """Stale tasks at each minute after the change: simulated mean and 5–95 % range, and the model."""
    fetched = last_fetch_before_change(tasks, trials, ttl_s=ttl_s, reads_per_s_per_task=reads_per_s_per_task, seed=seed)
    return pd.DataFrame([{"minutes_after_change": minute, **_stale_counts(fetched, ttl_s=ttl_s, minute=minute),
                          "model_tasks": tasks * float(model_stale_share(60 * minute, ttl_s=ttl_s,
                                                                          reads_per_s_per_task=reads_per_s_per_task))}
                         for minute in minutes])


def chance_at_least(stale: int, tasks: int, share: float) -> float:
    """Probability that ``stale`` or more of ``tasks`` are stale when each is with probability ``share``."""
    return sum(math.comb(tasks, k) * share**k * (1 - share) ** (tasks - k) for k in range(stale, tasks + 1))


def rollout_starts(tasks: int, *, batch: int, every_s: float, ends_s_before: float) -> np.ndarray:
    """Start times of ``tasks`` replaced ``batch`` at a time, one batch every ``every_s``, the last batch
    starting ``ends_s_before`` seconds before the change."""
    batches = np.arange(tasks) // batch
    return -ends_s_before - (batches.max() - batches) * every_s


def stale_after_rollout(*, tasks: int, ttl_s: float, reads_per_s_per_task: float, batch: int, every_s: float,
                        ends_s_before: list[float], minute: float, trials: int, seed: int) -> pd.DataFrame:
    """Stale tasks ``minute`` after the change when a rolling deployment ended ``ends_s_before`` seconds
    before it: simulated mean and 5–95 % range, beside the stationary model's count."""
    model = tasks * float(model_stale_share(60 * minute, ttl_s=ttl_s, reads_per_s_per_task=reads_per_s_per_task))
    rows = []
    for i, end in enumerate(ends_s_before):
        starts = rollout_starts(tasks, batch=batch, every_s=every_s, ends_s_before=end)
        fetched = last_fetch_before_change(tasks, trials, ttl_s=ttl_s, reads_per_s_per_task=reads_per_s_per_task,
                                           seed=seed + i, starts_s=starts)
        rows.append({"rollout_ended_s_before": end, **_stale_counts(fetched, ttl_s=ttl_s, minute=minute),
                     "stationary_model_tasks": model})
    return pd.DataFrame(rows)
