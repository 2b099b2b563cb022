"""The stale promotion of the seed's failure 1: per-task caches after the promotion changes at t = 0.

Every task caches the promotion for ``ttl_s`` from the moment it fetched it, and fetches again at the
first request after it expired. A request at time t ≥ 0 is answered with the old promotion if its
task's last fetch was before 0 and has not expired yet. The simulation follows each task's fetch
chain — with Poisson requests the next fetch comes an exponential gap after each expiry — from an
empty cache at a start time drawn at random over the day before the change; the model is the renewal
argument's stationary answer: a task holds a cached copy with probability τ/(τ + 1/r), of an age
uniform over [0, τ), so the share of tasks still stale t after the change is τ/(τ + 1/r) · (1 − t/τ).
Requests are spread evenly over tasks, so the share of users who see the old promotion is the share of stale tasks.
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
                             seed: int) -> np.ndarray:
    """For each trial and task, when the copy held at t = 0 was fetched (−inf if none was held)."""
    rng = np.random.default_rng(seed)
    gap = 1 / reads_per_s_per_task
    # tasks started (deployment, scale-out) at independent moments of the last day, with empty caches
    fetch = -rng.uniform(ttl_s, 86_400, (trials, tasks)) + rng.exponential(gap, (trials, tasks))
    while True:
        following = fetch + ttl_s + rng.exponential(gap, fetch.shape)
        advance = following <= 0
        if not advance.any():
            break
        fetch = np.where(advance, following, fetch)
    return np.where(fetch + ttl_s > 0, fetch, -np.inf)


def stale_over_time(*, tasks: int, ttl_s: float, reads_per_s_per_task: float, trials: int, seed: int,
                    minutes: list[float]) -> pd.DataFrame:
    """Stale tasks at each minute after the change: simulated mean and 5–95 % range, and the model."""
    fetched = last_fetch_before_change(tasks, trials, ttl_s=ttl_s, reads_per_s_per_task=reads_per_s_per_task, seed=seed)
    rows = []
    for minute in minutes:
        stale = (fetched + ttl_s > 60 * minute).sum(axis=1)
        rows.append({"minutes_after_change": minute, "simulated_mean_tasks": stale.mean(),
                     "simulated_p5_tasks": np.percentile(stale, 5), "simulated_p95_tasks": np.percentile(stale, 95),
                     "model_tasks": tasks * float(model_stale_share(60 * minute, ttl_s=ttl_s,
                                                                     reads_per_s_per_task=reads_per_s_per_task))})
    return pd.DataFrame(rows)


def chance_at_least(stale: int, tasks: int, share: float) -> float:
    """Probability that ``stale`` or more of ``tasks`` are stale when each is with probability ``share``."""
    return sum(math.comb(tasks, k) * share**k * (1 - share) ** (tasks - k) for k in range(stale, tasks + 1))
