"""The read-through chapter's numbers, findings and ledger rows, computed from its experiments' results."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments import rules
from experiments.findings import Timing, timing
from experiments.measure import spread_between_rounds
from experiments.models.herd import expected_origin_calls
from experiments.probes import staleset, stampede
from experiments.probes.stampede import ORIGIN_WORKERS, Shape
from experiments.results import Results, declared
from experiments.seed import figure, origin

PROOF = "read-through.ipynb"
RELOAD_MS = float(origin("product").seed_origin_ms)
"""The origin's median service time (the seed's catalog latency)."""
XFETCH = "early recomputation (XFetch)"


@dataclass
class ReadThroughResults(Results):
    """What the chapter measured: the stampede's shape and the protections under it, the XFetch simulation's
    calls per expiry, and the stale-set race (each probe's declared table, `experiments.results`)."""

    shape: Shape
    compare: pd.DataFrame = declared(stampede.RUNS)
    sweep: pd.DataFrame = declared(stampede.RUNS)
    xfetch_simulated: np.ndarray
    replay: pd.DataFrame = declared(staleset.REPLAY)
    stress: pd.DataFrame = declared(staleset.STRESS)


def _row(r: ReadThroughResults, protection: str) -> pd.Series:
    return r.compare.set_index("protection").loc[protection]


def _runs(r: ReadThroughResults, protection: str) -> pd.DataFrame:
    both = pd.concat([r.compare, r.sweep], ignore_index=True)
    return both[both.protection == protection]


def headline(r: ReadThroughResults) -> dict[str, float]:
    """Numbers quoted by the chapter's prose and the decision record."""
    none, flight, lock = _row(r, "none"), _row(r, "single-flight per task"), _row(r, "distributed lock")
    xfetch, swr = _row(r, XFETCH), _row(r, "stale-while-revalidate")
    xruns = _runs(r, XFETCH).origin_calls
    stress = r.stress.set_index("cache")
    replay = r.replay.set_index("cache")
    one_task = _runs(r, "single-flight per task").query("tasks == 1").origin_calls
    numbers = {
        "callers": r.shape.callers, "tasks": r.shape.tasks, "period_ms": r.shape.period_ms,
        # n callers at random phases of one read period P arrive over P·(n−1)/(n+1) on average (the range of n
        # uniform points); what the measured spread has beyond that is dispatch, which simultaneous callers keep
        "herd_phases_ms": r.shape.period_ms * (r.shape.callers - 1) / (r.shape.callers + 1),
        "herd_dispatch_ms": max(0.0, none.arrival_spread_ms
                                - r.shape.period_ms * (r.shape.callers - 1) / (r.shape.callers + 1)),
        "none_calls": int(none.origin_calls), "none_peak": int(none.peak_origin_concurrency),
        "none_drain_s": int(none.origin_calls) * RELOAD_MS / 1000 / ORIGIN_WORKERS,
        "none_spread_ms": none.arrival_spread_ms, "none_p99_ms": none.p99_ms,
        "none_errors_pct": 100 * float(none.error_reads) / float(none.reads),
        "flight_calls": int(flight.origin_calls), "flight_p99_ms": flight.p99_ms,
        "flight_one_task_calls": int(one_task.max()) if len(one_task) else math.nan,
        "lock_calls": int(lock.origin_calls), "lock_p99_ms": lock.p99_ms, "lock_errors": int(lock.error_reads),
        "xfetch_calls": int(xfetch.origin_calls), "xfetch_runs": len(xruns), "xfetch_mean_calls": float(xruns.mean()),
        "xfetch_median_calls": float(xruns.median()),
        "xfetch_max_calls": int(xruns.max()), "xfetch_model": expected_origin_calls(XFETCH, callers=1, tasks=1),
        "xfetch_sim_mean": float(r.xfetch_simulated.mean()),
        "xfetch_sim_sem": float(r.xfetch_simulated.std(ddof=1) / math.sqrt(r.xfetch_simulated.size)),
        "xfetch_first_ms": -float(xfetch.first_call_vs_expiry_ms), "xfetch_p99_ms": xfetch.p99_ms,
        "xfetch_slow_pct": 100 * float(xfetch.slow_reads) / float(xfetch.reads),
        "swr_slow_pct": 100 * float(swr.slow_reads) / float(swr.reads),
        "none_slow_pct": 100 * float(none.slow_reads) / float(none.reads),
        "swr_calls": int(swr.origin_calls), "swr_p99_ms": swr.p99_ms, "swr_stale_reads": int(swr.stale_reads),
        "hit_p50_ms": float(r.compare.p50_ms.median()),
        "seed_callers": figure("stampede_callers"), "seed_tasks": figure("task_count"),
        "race_trials": int(stress.trials.iloc[0]),
        **{name: int(stress.loc[cache, column]) for name, cache, column in [
            ("race_redis_stale", "Redis", "stale_entries"), ("race_memcached_stale", "Memcached", "stale_entries"),
            ("race_redis_fixed_stale", "Redis, versioned set", "stale_entries"),
            ("race_memcached_fixed_stale", "Memcached, lease", "stale_entries"),
            ("race_redis_refused", "Redis, versioned set", "fills_refused"),
            ("race_memcached_refused", "Memcached, lease", "fills_refused")]},
        "replay_stale_for_s": float(replay.loc["Redis", "stale_for_s"]),
    }
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in numbers.items()}


SWR = "stale-while-revalidate"


def slow_share_grid(callers: int, tasks: int) -> list[tuple[str, int, int]]:
    """Runs the sweep adds so that the share of slow reads has rounds enough for a spread that one stalled run
    does not make (`spread_between_rounds` takes the interquartile range from five): stale-while-revalidate at
    the sweep's XFetch points, and both at about half the callers (a multiple of the sweep's task count). With
    the chapter's 160 callers in 8 tasks that is eight runs with the compared ones."""
    points = [(c, t) for name, c, t in stampede.sweep_grid(callers, tasks) if name == XFETCH]
    extra = [(SWR, c, t) for c, t in points]
    if points:
        fixed = points[-1][1]
        half = (callers // 2 // fixed * fixed, fixed)
        if half[0] >= fixed and half not in points:
            extra += [(XFETCH, *half), (SWR, *half)]
    return extra


def slow_shares(r: ReadThroughResults) -> pd.Series:
    """The share of reads over `stampede.SLOW_MS` in every XFetch and stale-while-revalidate run (%). The two
    protections and the caller counts differ a little in it (XFetch's recomputing readers are a smaller share of
    more callers), so their spread holds that difference as well as the machine's: it is wider, not narrower."""
    runs = pd.concat([_runs(r, XFETCH), _runs(r, SWR)])
    return 100 * runs.slow_reads / runs.reads


def findings(r: ReadThroughResults) -> dict[str, bool | Timing]:
    """The chapter's conclusions as statements that must hold (asserted; compared by nbval). The share of slow
    reads is a timing: the median over every XFetch and stale-while-revalidate run (the compared ones and the
    sweep's), with their spread — a run a machine stall spoiled moves neither."""
    h = headline(r)
    none_runs, flight_runs = _runs(r, "none"), _runs(r, "single-flight per task")
    lock_runs = _runs(r, "distributed lock")
    replay = r.replay.set_index("cache")
    model = h["xfetch_model"]
    return {
        "without protection, at least 90 % of the callers called the origin, at every size tried":
            bool((none_runs.origin_calls >= 0.9 * none_runs.callers).all()),
        "single-flight per task let through one call per task (up to 1.5x), at every task count tried":
            bool(((flight_runs.origin_calls >= flight_runs.tasks)
                  & (flight_runs.origin_calls <= 1.5 * flight_runs.tasks)).all()),
        "a distributed lock let at most 2 calls through, at every size tried": bool((lock_runs.origin_calls <= 2).all()),
        "the XFetch simulation agrees with e^(1/beta) within 5 %": abs(h["xfetch_sim_mean"] / model - 1) < 0.05,
        "on the real servers, the median XFetch run made at most twice e^(1/beta) calls per expiry, whatever the callers":
            h["xfetch_median_calls"] <= 2 * model,
        "with XFetch and stale-while-revalidate the median run had at most 2 % of reads over 50 ms (only a recomputing "
        "reader waits)": timing(float(slow_shares(r).median()), below=2, unit="%",
                                spread=spread_between_rounds(slow_shares(r))),
        "the fatal interleaving leaves a stale entry in plain cache-aside on Redis and on Memcached":
            bool(replay.loc["Redis", "stale"] and replay.loc["Memcached", "stale"]),
        "the versioned set (Redis) and the lease (Memcached) refuse the stale fill":
            not replay.loc["Redis, versioned set", "fill_stored"] and not replay.loc["Memcached, lease", "fill_stored"],
        "under random interleavings, plain cache-aside left stale entries on both servers":
            h["race_redis_stale"] > 0 and h["race_memcached_stale"] > 0,
        "the versioned set and the lease left none": h["race_redis_fixed_stale"] == 0 and h["race_memcached_fixed_stale"] == 0,
    }


WAIT_LOADS_KEYS = False
"""Documented: WAIT blocks until the connection's earlier writes reach N replicas; it reads nothing and
loads nothing (redis.io, "WAIT")."""


def record_claims(ledger, r: ReadThroughResults) -> pd.DataFrame:
    """This chapter's ledger rows: each verdict is its rule applied to the results."""
    h = headline(r)
    rec = ledger.record
    seed_scale = (f"{expected_origin_calls('none', callers=h['seed_callers'], tasks=h['seed_tasks']):.0f} calls without "
                  f"protection, {expected_origin_calls('single-flight per task', callers=1, tasks=h['seed_tasks']):.0f} "
                  "with single-flight per task")
    herd = ("stampede_callers", "task_count", "herd_arrival_ms")
    rec("read-through.no-miss-logic", claim="Read-through removes the miss logic from the orchestrator",
        seed_value="no cache-miss boilerplate",
        measured="the caller's code is one get(key); the miss logic and its protection move into the component",
        rule=rules.parts({"the caller's code is one get(key)": True}),  # by construction of `caches.readthrough`
        proof=f"{PROOF}#the-read-through-component")
    rec("read-through.wait", claim="Redis with WAIT semantics can act as a read-through cache",
        seed_value="Redis with WAIT semantics",
        measured=("WAIT blocks until earlier writes reach N replicas; it never loads a missing key, so Redis "
                  "offers no read-through and the proxy must be built"),
        rule=rules.parts({"WAIT loads a missing key": WAIT_LOADS_KEYS}), proof=f"{PROOF}#the-read-through-component")
    rec("read-through.single-source", claim="Read-through gives one place that owns cache population",
        seed_value="single source of truth",
        measured="one code path, but one instance per task at run time: its protection must work across instances",
        rule=rules.parts({"one code path fills the cache": True,  # by construction
                          "one instance fills it at run time": h["tasks"] == 1}),
        inputs=("task_count",), proof=f"{PROOF}#a-stampede-on-real-redis")
    rec("read-through.500-calls", claim="Without single-flight, 500 callers missing an expired key make 500 origin calls",
        seed_value=f"{h['seed_callers']:.0f} calls",
        measured=(f"{h['none_calls']} calls from {h['callers']} callers here (model: one per caller), "
                  f"{h['none_errors_pct']:.0f} % of reads timed out at 2 s"),
        rule=rules.close_to(h["callers"], h["none_calls"], unit="calls (one per caller here)", tolerance=0.05, partly=0.5),
        inputs=herd,
        threshold="one origin call per caller of the run (the note's 500 callers, scaled)",
        proof=f"{PROOF}#a-stampede-on-real-redis")
    herd_ms = figure("herd_arrival_ms")
    phases_ms, beyond_period_ms = h["herd_phases_ms"], h["herd_dispatch_ms"]
    rec("read-through.10ms", claim="The herd reaches the origin within 10 ms", seed_value=f"{herd_ms:.0f} ms",
        measured=(f"arrivals spread over {h['none_spread_ms']:.0f} ms here, one read period of the callers "
                  f"({h['period_ms']} ms, the chapter's choice, whose random phases explain {phases_ms:.0f} ms of it); the "
                  f"rest, {beyond_period_ms:.1f} ms, is what callers that read at once, as the note's do, would keep"),
        rule=rules.depends_on("when the callers read (the note: \"simultaneously\"; the chapter: once per read "
                              "period each)", {
            "callers that read at once (the note)": rules.at_most(herd_ms, beyond_period_ms, unit="ms", partly=3),
            f"callers that read once per {h['period_ms']} ms (the chapter)": rules.at_most(
                herd_ms, h["none_spread_ms"], unit="ms")}),
        inputs=herd, judges="herd_arrival_ms", proof=f"{PROOF}#a-stampede-on-real-redis")
    rec("read-through.one-call", claim="Single-flight turns 500 origin calls into 1", seed_value="1 call",
        measured=(f"{h['flight_one_task_calls']} call with one task (one proxy instance); "
                  f"{h['flight_calls']} with {h['tasks']} tasks"),
        rule=rules.parts({"one proxy instance: 1 call": h["flight_one_task_calls"] == 1,
                          f"{h['tasks']} instances: 1 call": h["flight_calls"] == 1}),
        inputs=herd, proof=f"{PROOF}#how-the-counts-scale")
    rec("read-through.cross-task", claim="Single-flight inside each proxy instance still lets a cross-task herd through",
        seed_value=f"{h['seed_tasks']:.0f} tasks", measured=f"one call per task: {h['flight_calls']} for {h['tasks']} tasks; "
        f"at the seed's scale {seed_scale}",
        rule=rules.close_to(h["tasks"], h["flight_calls"], unit="calls (one per task)", tolerance=0.01, partly=0.5),
        inputs=herd, threshold="one origin call per task of the run", proof=f"{PROOF}#how-the-counts-scale")
    rec("read-through.lock-equivalent", claim="Cache-aside with a distributed lock on miss is equivalent",
        seed_value="equivalent",
        measured=(f"{h['lock_calls']} origin call, as for a read-through with the same lock; waiting callers pay "
                  f"p99 {h['lock_p99_ms']:.0f} ms; XFetch ({h['xfetch_p99_ms']:.1f} ms) and stale-while-revalidate "
                  f"({h['swr_p99_ms']:.1f} ms) avoid the wait"),
        rule=rules.parts({"cache-aside with the lock makes one origin call per expiry": h["lock_calls"] == 1}),
        proof=f"{PROOF}#read-through-decision-heuristic")
    rec("read-through.table.latency", claim="A read-through cache answers in under 2 ms", seed_value="<2ms",
        measured=f"median read {h['hit_p50_ms']:.2f} ms on loopback",
        rule=rules.at_most(2.0, h["hit_p50_ms"], unit="ms"),
        judges="table_cache_latency_ms", proof=f"{PROOF}#a-stampede-on-real-redis")
    rec("read-through.table.invalidation", claim="Read-through invalidation is event-driven if implemented",
        seed_value="Event-driven (if implemented)",
        measured="read-through changes who fills the cache, not how it is invalidated; the stale-set race applies",
        rule=rules.parts({"an event's DEL reaches a read-through cache as it does cache-aside": True}),  # same store
        proof=f"{PROOF}#the-stale-set-race")
    rec("read-through.table.consistency", claim="Read-through gives strong consistency", seed_value="Strong",
        measured=(f"a fill racing an update left a stale entry for {h['replay_stale_for_s']:.0f} s; "
                  f"{h['race_redis_stale']} (Redis) and {h['race_memcached_stale']} (Memcached) of {h['race_trials']:,} "
                  "random races; 0 with a versioned set or a lease"),
        rule=rules.parts({"no fill racing an update left a stale entry":
                          h["race_redis_stale"] == 0 and h["race_memcached_stale"] == 0}),
        proof=f"{PROOF}#the-stale-set-race")
    rec("read-through.table.failure-risk", claim="Read-through's key risk is a thundering herd without single-flight",
        seed_value="Thundering herd if single-flight is missing",
        measured=(f"holds across tasks too: single-flight per task still sent {h['flight_calls']} calls; the stale-set "
                  "race is the other risk"),
        rule=rules.parts({"without single-flight every caller reaches the origin (within 10 %)":
                          h["none_calls"] >= 0.9 * h["callers"],
                          "single-flight per task still lets one call per task through": h["flight_calls"] >= h["tasks"]}),
        inputs=herd, proof=f"{PROOF}#how-the-counts-scale")
    return ledger.table()


def summary_row(h: dict[str, float]) -> pd.DataFrame:
    """The seed's summary-table row for read-through beside the row this chapter measured, from its
    `headline` numbers (which the summary chapter reads back from the results)."""
    return pd.DataFrame([
        {"column": "Latency", "seed": "<2ms", "measured": f"median read {h['hit_p50_ms']:.2f} ms (loopback)"},
        {"column": "Invalidation", "seed": "Event-driven (if implemented)", "measured": "as for cache-aside: events or TTL"},
        {"column": "Consistency", "seed": "Strong",
         "measured": "eventual: TTL-long stale entries from the stale-set race unless fills are version- or lease-guarded"},
        {"column": "Key failure risk", "seed": "Thundering herd if single-flight is missing",
         "measured": f"a herd per task ({h['flight_calls']} calls for {h['tasks']} tasks) unless the protection spans tasks"},
    ])
