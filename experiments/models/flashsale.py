"""The flash-sale launch without a cache: a discrete-event simulation of the catalog, and a fluid model.

The seed's catalog is sized for 5,000 concurrent requests at 120 ms each, i.e. a capacity of
5,000 / 0.12 s ≈ 41,700 requests/s; the launch offers ten times that (50,000 concurrent requests),
building up over 15 s. Clients give up after 2 s. Autoscaling adds capacity only 90–180 s later.

**Simulation.** The catalog is ``c`` identical workers serving one first-come-first-served queue
(its connection pool, where requests are handed to the first free worker in arrival order — FCFS);
a worker picks the oldest waiting request whether or not its client is
still waiting — the catalog cannot see client timeouts — unless ``shed_expired`` is set, when a
request that cannot be answered before its client's deadline is dropped instead of served
(deadline propagation with load shedding). Requests
arrive as a Poisson stream whose rate ramps up over the spike; service times are log-normal with
the seed's median. The simulation runs at ``scale`` of the real size (1/100 by default: 50
workers); every result is per unit of capacity, which this queue's fluid behaviour does not depend on.

**Model.** A fluid queue (the standard approximation for a queue far above capacity, where the
randomness of single requests is small beside the drift): the backlog grows at λ(t) − C(t) and a
request arriving at t waits backlog/C(t). With FCFS and no shedding it succeeds iff that wait plus
its service is under the timeout. The fluid model says *when* the catalog stops answering in time
and when it recovers; it has no queue below capacity and no randomness, so it cannot say how ragged
the edges are or what happens near capacity (the 85–90 % cache cases), which the simulation shows.

**Live reads.** The launch's own questions — "is it in stock?", "what's the price?" — are reads the
key design never caches, so a cache absorbs only the rest: the catalog sees the live share of the
launch's requests whatever the hit rate (`origin_share`; the seed figure ``launch_live_share``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd

from experiments.seed import figure, origin


def origin_share(hit_rate: float, live_share: float) -> float:
    """The share of offered reads that reach the origin: the live ones, and the cacheable ones that miss."""
    return live_share + (1 - live_share) * (1 - hit_rate)


@dataclass(frozen=True)
class Launch:
    """The seed's launch, with the origin's share of reads after a cache with ``hit_rate``; ``live_share``
    of the launch's catalog requests are live reads (price, stock) that no cache serves.

    The launch's defaults are the note's (`experiments.seed.LAUNCH_INPUTS`): a catalog for 5,000 concurrent
    requests at 120 ms, ten times that offered, a 2 s timeout, a 15 s ramp, and a scale-out to the offered load
    after the middle of the note's 90–180 s. Ours: the latency's spread (``data/origins.csv``), the 300 s horizon
    and the simulation's ``scale``."""

    planned_concurrency: int = field(default_factory=lambda: int(figure("catalog_concurrency")))
    overload: float = field(default_factory=lambda: figure("launch_users") / figure("catalog_concurrency"))
    service_ms: float = field(default_factory=lambda: figure("launch_catalog_latency_ms"))
    service_sigma: float = field(default_factory=lambda: float(origin("product").latency_sigma))
    timeout_ms: float = field(default_factory=lambda: figure("catalog_timeout_ms"))
    ramp_s: float = field(default_factory=lambda: figure("spike_s"))
    scale_delay_s: float = field(default_factory=lambda: (figure("autoscale_min_s") + figure("autoscale_max_s")) / 2)
    scale_to: float = field(default_factory=lambda: figure("launch_users") / figure("catalog_concurrency"))
    horizon_s: float = 300.0
    hit_rate: float = 0.0
    live_share: float = 0.0
    shed_expired: bool = False
    scale: float = 0.01

    @property
    def capacity_per_s(self) -> float:
        """Requests per second the unscaled catalog serves at its median latency."""
        return self.planned_concurrency / (self.service_ms / 1000)

    @property
    def offered_per_s(self) -> float:
        """Requests per second reaching the catalog at the peak (after the cache, if any): every live read,
        and the cacheable reads the cache misses."""
        return self.overload * self.capacity_per_s * origin_share(self.hit_rate, self.live_share)

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        """Requests per second reaching the catalog at times ``t``: a linear ramp to the peak over ``ramp_s``."""
        return self.offered_per_s * np.clip(np.asarray(t, float) / self.ramp_s, 0, 1)


@numba.njit(cache=False)
def _serve(arrivals, service, workers, added_at, added, timeout, shed):  # pragma: no cover - compiled
    free = np.zeros(workers + added)
    free[workers:] = added_at  # autoscaled workers take requests from added_at on, oldest first
    start = np.empty(arrivals.size)
    finish = np.empty(arrivals.size)
    for i in range(arrivals.size):
        now = arrivals[i]
        w = np.argmin(free)
        begin = max(now, free[w])
        if shed and begin + service[i] - now > timeout:
            start[i] = begin
            finish[i] = -1.0  # dropped unserved: the worker stays free
            continue
        start[i] = begin
        finish[i] = begin + service[i]
        free[w] = finish[i]
    return start, finish


def simulate(launch: Launch, *, seed: int) -> pd.DataFrame:
    """Per second of the launch: offered, answered in time, timed out, p50/p99 of the answers (ms), and the median
    and 99th percentile of the wait in the catalog's queue, answered in time or not (ms)."""
    rng = np.random.default_rng(seed)
    peak = launch.offered_per_s * launch.scale
    # thinning of a Poisson stream at the peak rate gives the ramp
    candidates = np.cumsum(rng.exponential(1 / peak, int(peak * launch.horizon_s * 1.05) + 10))
    candidates = candidates[candidates < launch.horizon_s]
    keep = rng.random(candidates.size) < np.clip(candidates / launch.ramp_s, 0, 1)
    arrivals = candidates[keep]
    service = rng.lognormal(math.log(launch.service_ms / 1000), launch.service_sigma, arrivals.size)
    workers = max(1, round(launch.planned_concurrency * launch.scale))
    added = round(workers * (launch.scale_to - 1))
    start, finish = _serve(arrivals, service, workers, launch.scale_delay_s, added, launch.timeout_ms / 1000,
                           launch.shed_expired)
    response = finish - arrivals
    ok = (finish >= 0) & (response <= launch.timeout_ms / 1000)
    second = arrivals.astype(np.int64)
    frame = pd.DataFrame({"t_s": second, "ok": ok, "response_ms": np.where(ok, 1000 * response, np.nan),
                          "wait_ms": 1000 * (start - arrivals)})
    per_s = frame.groupby("t_s").agg(offered=("ok", "size"), answered=("ok", "sum"),
                                      p50_ms=("response_ms", "median"),
                                      p99_ms=("response_ms", lambda x: x.quantile(0.99)),
                                      wait_p50_ms=("wait_ms", "median"),
                                      wait_p99_ms=("wait_ms", lambda x: x.quantile(0.99))).reset_index()
    per_s["timed_out"] = per_s.offered - per_s.answered
    per_s[["offered", "answered", "timed_out"]] = per_s[["offered", "answered", "timed_out"]] / launch.scale
    return per_s.assign(answered_share=per_s.answered / per_s.offered)


def fluid(launch: Launch, *, step_s: float = 0.1) -> pd.DataFrame:
    """The fluid model: backlog, wait and whether a request arriving then is answered in time."""
    t = np.arange(0, launch.horizon_s, step_s)
    capacity = np.where(t >= launch.scale_delay_s, launch.scale_to, 1.0) * launch.capacity_per_s
    rate = launch.rate_at(t)
    backlog = np.zeros_like(t)
    for i in range(1, t.size):
        backlog[i] = max(0.0, backlog[i - 1] + (rate[i - 1] - capacity[i - 1]) * step_s)
    wait_ms = 1000 * backlog / capacity
    if launch.shed_expired:  # what cannot be answered in time is dropped: the answered share is C/λ
        answered = np.where(rate > capacity, capacity / np.maximum(rate, 1e-12), 1.0)
        wait_ms = np.minimum(wait_ms, launch.timeout_ms - launch.service_ms)
    else:
        answered = (wait_ms + launch.service_ms <= launch.timeout_ms).astype(float)
    return pd.DataFrame({"t_s": t, "backlog": backlog, "wait_ms": wait_ms, "answered_share": answered})


def summarize(per_s: pd.DataFrame, model: pd.DataFrame, launch: Launch) -> dict[str, float]:
    """When answers stop and resume, per simulation and per model, and the share answered overall."""
    def first(frame, condition, after=0.0):
        hit = frame[(frame.t_s >= after) & condition(frame)]
        return float(hit.t_s.iloc[0]) if len(hit) else math.nan

    sim_stop = first(per_s, lambda f: f.answered_share < 0.5)
    model_stop = first(model, lambda f: f.answered_share < 0.5)
    sim_resume = first(per_s, lambda f: f.answered_share >= 0.5, after=sim_stop) if sim_stop == sim_stop else math.nan
    model_resume = (first(model, lambda f: f.answered_share >= 0.5, after=model_stop) if model_stop == model_stop
                    else math.nan)
    return {"hit_rate": launch.hit_rate, "live_share": launch.live_share, "shed_expired": launch.shed_expired,
            "scale_to": launch.scale_to,
            "scale_delay_s": launch.scale_delay_s,
            "answered_pct": 100 * float(per_s.answered.sum() / per_s.offered.sum()),
            "sim_stop_s": sim_stop, "model_stop_s": model_stop, "sim_resume_s": sim_resume, "model_resume_s": model_resume,
            "peak_p99_ms": float(per_s.p99_ms.max())}


def scenarios() -> dict[str, Launch]:
    """The launch without a cache, with load shedding, with more or faster scaling, and behind caches."""
    base, planned = Launch(), figure("planned_hit_rate")
    return {"no cache": base,
            "no cache, catalog sheds expired requests": Launch(shed_expired=True),
            "no cache, scaled out after 90 s": Launch(scale_delay_s=figure("autoscale_min_s")),
            "no cache, scaled out after 180 s": Launch(scale_delay_s=figure("autoscale_max_s")),
            "no cache, scaled to 20x": Launch(scale_to=2 * base.overload),  # ours: twice the offered load
            "cache at 85 % hit": Launch(hit_rate=0.85),  # ours: ten points under the plan
            "cache at 95 % hit": Launch(hit_rate=planned),
            "cache at 95 % hit, price and stock read live": Launch(hit_rate=planned,
                                                                   live_share=figure("launch_live_share"))}


def compare(launches: dict[str, Launch], *, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Each launch simulated and modelled: per-second simulation, the fluid model, and a summary."""
    sims, models, rows = [], [], []
    for i, (label, launch) in enumerate(launches.items()):
        per_s, model = simulate(launch, seed=seed + i), fluid(launch)
        sims.append(per_s.assign(launch=label))
        models.append(model.assign(launch=label))
        rows.append({"launch": label, **summarize(per_s, model, launch)})
    return pd.concat(sims, ignore_index=True), pd.concat(models, ignore_index=True), pd.DataFrame(rows)


def burst_answered(launch: Launch, requests: float, window_s: float) -> float:
    """The share of a burst answered in time (fluid): ``requests`` arriving evenly over ``window_s`` (0: at one
    instant) at the launch's catalog (capacity C, idle before the burst, no autoscaling within it). Arriving t into
    the burst at a rate λ > C, a request waits (λ − C)·t / C, so it is answered while t ≤ (timeout − service)·C /
    (λ − C); at one instant, the first (timeout − service)·C requests are."""
    if window_s == 0:
        return min(1.0, burst_absorbed_up_to(launch) / requests)
    rate, capacity = requests / window_s, launch.capacity_per_s
    if rate <= capacity:
        return 1.0
    ok_until = (launch.timeout_ms - launch.service_ms) / 1000 * capacity / (rate - capacity)
    return min(1.0, ok_until / window_s)


def burst_absorbed_up_to(launch: Launch) -> float:
    """The largest burst arriving at one instant that an idle catalog still answers in full: what it serves before
    the clients' timeout, (timeout − service)·C requests — the edge between a burst and a collapse."""
    return (launch.timeout_ms - launch.service_ms) / 1000 * launch.capacity_per_s


def burst_simulated(launch: Launch, requests: float, window_s: float, *, seed: int) -> float:
    """`burst_answered` by the discrete-event simulation: the burst's requests at uniform random times over
    ``window_s`` (all at 0 for an instant; at the launch's ``scale``), served first come first served with
    log-normal service times."""
    rng = np.random.default_rng(seed)
    arrivals = np.sort(rng.uniform(0, window_s, max(1, round(requests * launch.scale))))
    service = rng.lognormal(math.log(launch.service_ms / 1000), launch.service_sigma, arrivals.size)
    workers = max(1, round(launch.planned_concurrency * launch.scale))
    _, finish = _serve(arrivals, service, workers, math.inf, 0, launch.timeout_ms / 1000, False)
    return float(np.mean(finish - arrivals <= launch.timeout_ms / 1000))


READINGS = (("50,000 requests at one instant", 1, 0.0), ("two reads per user at one instant", 2, 0.0),
            ("50,000 requests over 1 s", 1, 1.0), ("50,000 requests over the 15 s spike", 1, 15.0))
"""The bursts `launch_readings` puts beside the book's reading: (label, catalog reads per user, window in s)."""


def launch_readings(launch: Launch, *, sustained_answered_pct: float, seed: int) -> pd.DataFrame:
    """The note's "50,000 users simultaneously ask" read several ways. The chapter's: the note's "10× the planned
    load" as an offered rate, ten times the catalog's capacity for the launch (``sustained_answered_pct``, from
    `simulate`). A closed loop: each user has one request outstanding, so 50,000 are in flight and each waits
    50,000 / C (Little's law). And bursts that arrive once (`READINGS`), by the fluid model and the simulation."""
    users, capacity, timeout = figure("launch_users"), launch.capacity_per_s, launch.timeout_ms / 1000
    closed_s = users / capacity
    rows = [{"reading": "ten times the capacity, offered for the launch (the chapter's)", "requests": math.nan,
             "window_s": math.nan, "answered_model_pct": sustained_answered_pct,
             "answered_sim_pct": sustained_answered_pct},
            {"reading": "50,000 users, one request outstanding each (closed loop)", "requests": users,
             "window_s": math.nan, "answered_model_pct": 100.0 if closed_s <= timeout else 0.0,
             "answered_sim_pct": math.nan}]
    rows += [{"reading": label, "requests": users * reads, "window_s": w,
              "answered_model_pct": 100 * burst_answered(launch, users * reads, w),
              "answered_sim_pct": 100 * burst_simulated(launch, users * reads, w, seed=seed + i)}
             for i, (label, reads, w) in enumerate(READINGS)]
    return pd.DataFrame(rows)
