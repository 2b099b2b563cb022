"""How many origin calls one expiry of a hot key causes, per stampede protection: the model and its simulation.

`expected_origin_calls` holds when every caller reads at least once while the first reload is in
flight (the read period is shorter than the origin's latency); the read-through chapter checks it on
real Redis with callers in separate task processes (`experiments.probes.stampede`). For XFetch the
count does not depend on the callers at all, which `xfetch_simulation` checks by Monte Carlo.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from experiments.errors import ParameterError

PROTECTIONS = ("none", "single-flight per task", "distributed lock", "early recomputation (XFetch)",
               "stale-while-revalidate")
"""The protections the model covers, in the order the chapter shows them (the names of
`experiments.caches.readthrough.PROTECTIONS`; a test keeps the two the same)."""

XFETCH = "early recomputation (XFetch)"


def expected_origin_calls(protection: str, *, callers: int, tasks: int, beta: float = 1.0) -> float:
    """Origin calls per expiry of one hot key, if every caller reads during the first reload.

    No protection: every caller misses once. Single-flight per task: one call per task. A lock, or
    stale-while-revalidate: one. XFetch: the first early recomputation happens at a random time
    whose hazard, summed over all readers, has the integral Exp(1) by then; each read of the next
    delta seconds recomputes too with probability exp(-g / (beta delta)), which adds
    e^(1/beta) - 1 calls on average — e^(1/beta) in all, whatever the number of callers.
    """
    model = {"none": callers, "single-flight per task": tasks, "distributed lock": 1,
             "early recomputation (XFetch)": math.exp(1 / beta), "stale-while-revalidate": 1}
    if protection not in model:
        raise ParameterError(f"protection={protection!r} is not one of {', '.join(model)}")
    return float(model[protection])


def xfetch_simulation(*, reads_per_s: float, delta_s: float = 0.12, beta: float = 1.0, trials: int = 2000,
                      seed: int = 0) -> np.ndarray:
    """Origin calls per expiry under XFetch, simulated: Poisson reads from well before expiry, each
    recomputing with probability exp(-g / (beta delta)) at time-to-expiry g, until the first
    recomputation's result lands delta seconds later. It checks `expected_origin_calls`' e^(1/beta)."""
    rng = np.random.default_rng(seed)
    lead_s = beta * delta_s * (math.log(max(reads_per_s * beta * delta_s, 1.0)) + 6)
    counts = np.empty(trials)
    for i in range(trials):
        times = np.sort(rng.uniform(-lead_s, 0.0, rng.poisson(reads_per_s * lead_s)))
        fires = -beta * delta_s * np.log1p(-rng.random(times.size)) >= -times
        if not fires.any():  # nobody recomputed early: every read of the first reload's delta misses
            counts[i] = rng.poisson(reads_per_s * delta_s) + 1
            continue
        first = times[np.argmax(fires)]
        counts[i] = np.count_nonzero(fires & (times >= first) & (times < first + delta_s))
    return counts


def xfetch_betas(*, reads_per_s: float, betas: list[float], delta_s: float = 0.12, trials: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """For each beta: simulated and modelled calls per expiry, and how early the first recomputation comes."""
    rows = []
    for beta in betas:
        counts = xfetch_simulation(reads_per_s=reads_per_s, delta_s=delta_s, beta=beta, trials=trials, seed=seed)
        rows.append({"beta": beta, "simulated_calls": counts.mean(),
                     "model_calls": expected_origin_calls(XFETCH, callers=1, tasks=1, beta=beta),
                     "first_recompute_before_expiry_ms": 1000 * beta * delta_s * math.log(reads_per_s * beta * delta_s)})
    return pd.DataFrame(rows)
