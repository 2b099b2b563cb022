"""The polling workaround: how long a changed promotion stays stale, and how many users see it.

If invalidations are pulled every ``P`` seconds, an event lands at a uniformly random moment of the
poll cycle, so the old value is served for ``S ~ Uniform(0, P)`` (plus the time to apply the delete):
``P/2`` on average, ``P`` at worst. Users arriving at rate ``λ`` during that window see the stale
value: ``λ·P/2`` on average. `simulate` checks the model with seeded Poisson arrivals; `implied_rate`
inverts the seed's "40,000 users in 60 s".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.results import Table


def expected_stale_users(rate_per_s: float, poll_s: float, apply_s: float = 0.0) -> float:
    """Mean number of users served the stale value: λ·(P/2 + apply time)."""
    return rate_per_s * (poll_s / 2 + apply_s)


def worst_case_stale_users(rate_per_s: float, poll_s: float, apply_s: float = 0.0) -> float:
    """Users served stale when the event lands just after a poll: λ·(P + apply time)."""
    return rate_per_s * (poll_s + apply_s)


def implied_rate(users: float, window_s: float) -> float:
    """The arrival rate (users/s) under which ``users`` arrive in ``window_s``."""
    return users / window_s


def simulate(rate_per_s: float, poll_s: float, *, trials: int, seed: int, apply_s: float = 0.0) -> np.ndarray:
    """Users served stale in each of ``trials`` events at random phases of the poll cycle."""
    rng = np.random.default_rng(seed)
    windows = rng.uniform(0, poll_s, trials) + apply_s
    return rng.poisson(rate_per_s * windows)


SWEEP = Table("pollmodel.SWEEP", ("poll_s", "model_mean_users", "simulated_mean_users", "simulated_p95_users",
                                   "worst_case_users"))
"""`sweep`: one row per poll interval."""


def sweep(rate_per_s: float, polls_s: list[float], *, trials: int, seed: int) -> pd.DataFrame:
    """Model against simulation for several poll intervals."""
    rows = []
    for i, poll in enumerate(polls_s):
        simulated = simulate(rate_per_s, poll, trials=trials, seed=seed + i)
        rows.append({"poll_s": poll, "model_mean_users": expected_stale_users(rate_per_s, poll),
                     "simulated_mean_users": float(simulated.mean()),
                     "simulated_p95_users": float(np.percentile(simulated, 95)),
                     "worst_case_users": worst_case_stale_users(rate_per_s, poll)})
    return SWEEP.frame(rows)
