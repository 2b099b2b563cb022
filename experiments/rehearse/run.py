"""A rehearsal: the design stood up on real local servers, a workload driven through it, changes published by
two paths that each lose their process once, and the engine's prediction for the same traffic beside what
happened.

`rehearse` starts, in order, the cache (the option's engine: a primary with the deployment's replicas under
Sentinel, or no cache) and the task processes (`task_worker`); measures the rate they keep to (`calibrate`) and
chooses the plan (`experiments.rehearse.plan.choose`); starts the origin (`origin.RateOrigin`, the plan's capacity
in calls per second), sets the cache to the engine's steady state, starts the source's change paths
(`supervisor.Supervisor`), runs the phases inside a quiet section (no other chapter's load beside it: the run is
a measurement), and stops everything it started, on success, error or interrupt. One writer publishes through the
outbox and the invalidator is killed once between reading a change and deleting its key; the other writes twice
(the source, then the cache) and is killed once between the two. `tally` puts the counts together.

What the speed-up does not compress (see `plan`): the turn's budget and the client's timeouts stay real, so a
turn is judged against a budget ``speed`` times looser than the workload's in its own time — the rehearsal's
"within the budget" tells an origin that could not answer at all, not a slow one; the breaker's open time is
divided by the speed (five seconds in the workload's time); the invalidation grace (0.25 s as run) is longer
than a staleness limit of seconds in the workload's time, so stale hits are counted from it and judged against
each family's limit (as run) separately.
"""

from __future__ import annotations

import shutil
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np

from experiments.decide import engine
from experiments.decide import spec as decide_spec
from experiments.decide.spec import ORIGIN_SIGMA
from experiments.decide.workload import Workload, WorkloadError
from experiments.errors import BookError
from experiments.lab.quiet import quiet
from experiments.lab.servers import RedisServer
from experiments.lab.spawner import make_workdir
from experiments.lab.topologies import SentinelSet
from experiments.lab.workerpool import WorkerPool
from experiments.rehearse import change_worker, tally
from experiments.rehearse.origin import RateOrigin
from experiments.rehearse.plan import Plan, choose
from experiments.rehearse.supervisor import CHANGE_INTERVAL_S, Supervisor

ENGINES = {"redis": "redis", "valkey": "valkey", "valkey-durable": "valkey", "valkey-serverless": "valkey"}
"""The options a rehearsal stands up, and the local engine of each (a serverless cache runs as one node)."""
SUPPORTED = (*ENGINES, "no-cache")
TASK_PROCESSES = 2
"""Task processes on two cores: each stands for half of the workload's tasks."""
STALE_GRACE_S = 0.25
"""How long after a change a hit of the old version is not yet stale: the invalidation path's time."""
BREAKER = {"breaker_failures": 3, "breaker_open_s": 5.0}
"""Three cache errors in a row open the breaker for five seconds of the workload's time (the degraded chapter's
fail-open); as run, divided by the speed."""
ORIGIN_CONNECTIONS = 64
"""Each task process's connections to the origin: more than the calls the origin answers within its latency, so
the queue forms at the origin, first come first served, as the no-cache chapter's does."""
MAX_TURNS = 400_000
"""The most turns one task process sends in a run."""
VALUE_BYTES = 1024
"""Every value as run: a value's size moves neither a hit rate nor the origin's load, and the engine sizes the
nodes and links for the real sizes; a 100 KB value would make the task processes measure their own copying."""
CALIBRATION_RATES = (250, 500, 1000, 2000, 4000, 8000)
"""The rates (turns a second, each process) `task_worker.calibrate` tries, in turn, for a second each."""
CHANGED_KEYS = range(16, 24)
"""The ranks of each announced family the change paths cycle over: read often enough that a lost delete is served
(tens of reads a second as run), not the very hottest, whose every delete is a stampede of reloads (the engine's
``stampede_calls_per_expiry``, 22 origin calls for the chatbot's hottest product) that this first increment does
not set out to measure."""
STEADY_KEYS = 500_000
"""The most keys of one family the steady state sets before the run."""
SETTLE_S = 6.0
"""From the end of set-up to the first turn: the steady state is set and the change processes start meanwhile."""


@dataclass
class Options:
    """What a caller may choose: the TTL as run, the seed, a progress callback (a line every few seconds), and the
    share of its capacity the engine puts the origin at the peak (default: the engine's, for the written workload;
    a lower one gives the origin headroom the plan does not)."""

    target_ttl_s: float = 10.0
    seed: int = 7
    progress: object = None
    origin_load: float | None = None


def chosen_option(w: Workload, option: str | None) -> str:
    """``option``, or the engine's first; one-line error for an option the workload rejects or none is viable."""
    ordered, _ = engine.rank(w, edge=False)
    if option is None:
        viable = [a.option for a in ordered if not a.rejected_because]
        if not viable:
            raise WorkloadError(f"the engine rejects every option for {w.name!r}: name one with OPTION=…")
        option = viable[0]
    found = next((a for a in ordered if a.option == option), None)
    if found is None:
        raise WorkloadError(f"OPTION={option!r} is not one of the engine's options: {', '.join(engine.OPTIONS)}")
    if found.rejected_because and option != "no-cache":
        raise WorkloadError(f"the engine rejects {option} for {w.name!r}: {found.rejected_because[0]}")
    if option not in SUPPORTED:
        raise WorkloadError(f"a rehearsal stands up {', '.join(SUPPORTED)}; {option} is not one of them yet")
    return option


def _change_keys(w: Workload, prefix: str, count: int) -> dict[str, list[str]]:
    """``count`` changes for each path, cycling over `CHANGED_KEYS` of the families the source announces, the paths
    alternating between them: a change to a key nobody reads could not be served stale, and the delete the dual
    write loses must fall on a key that is read."""
    hot = [f"{prefix}{f.name}:{rank}" for rank in CHANGED_KEYS for f in w.families
           if f.changed_by_events and f.cacheable]
    return {path: [hot[(2 * i + offset) % len(hot)] for i in range(count)]
            for offset, path in enumerate(("outbox", "dual write"))}


def _steady_state(cache: dict, families: list[dict], processes: int, prefix: str, seed: int, start_at: float) -> int:
    """Fill the cache with the state the engine's TTL model holds in its steady state, so the run starts there
    rather than cold: each key of a cached family is present with its stationary probability λT / (1 + λT) (λ its
    reads per second as run, T its TTL as run: a key filled on a miss stays T, then waits for its next read), with
    a remaining TTL uniform on (0, T) at ``start_at``. A cold start instead fills the unwarmed keys together and
    they expire together one TTL later, an echo the steady state never has. Returns the keys set (at most
    `STEADY_KEYS`)."""
    import redis

    rng = np.random.default_rng(seed)
    client = redis.Redis(host=cache["host"], port=cache["port"], password=cache["password"], protocol=2)
    placed = 0
    try:
        for f in (f for f in families if f["cacheable"]):
            weight = np.arange(1, f["keys"] + 1, dtype=float) ** -f["alpha"]
            rate = f["rate_per_s"] * processes * weight / weight.sum()
            present = np.nonzero(rng.random(f["keys"]) < rate * f["ttl_s"] / (1 + rate * f["ttl_s"]))[0][:STEADY_KEYS]
            remaining_ms = 1000 * (f["ttl_s"] * rng.random(present.size) + max(0.0, start_at - time.time()))
            value = b"0|".ljust(f["value_bytes"], b"x")
            for start in range(0, present.size, 5000):
                pipe = client.pipeline(transaction=False)
                for rank, ms in zip(present[start:start + 5000].tolist(), remaining_ms[start:start + 5000].tolist()):
                    pipe.set(f"{prefix}{f['name']}:{rank}", value, px=max(1, round(ms)))
                pipe.execute()
            placed += int(present.size)
    finally:
        client.close()
    return placed


def _cache(option: str, replicas: int, stack: ExitStack) -> dict | None:
    """The option's cache on local servers: a primary and ``replicas`` under Sentinel (a single node for one
    without replicas); None for no cache."""
    if option == "no-cache":
        return None
    if replicas:
        group = stack.enter_context(SentinelSet(replicas=replicas, engine=ENGINES[option]))
        primary = group.primary
    else:
        primary = stack.enter_context(RedisServer(name=f"rehearse-{option}", engine=ENGINES[option]))
    return {"host": primary.host, "port": primary.port, "password": primary.password}


def rehearse(w: Workload, option: str | None = None, options: Options | None = None) -> dict:
    """The rehearsal of ``option`` (default: the engine's first) on ``w``: the JSON of the module."""
    options = options or Options()
    say = options.progress or (lambda _line: None)
    option = chosen_option(w, option)
    assessment, numbers = engine.assess(w, option, edge=False)
    deployment = decide_spec.deployment(w, option, numbers | {"builds": assessment.builds}) or {}
    replicas = int(deployment.get("replicas", 0) or 0)
    with quiet(f"a rehearsal of {option}"), ExitStack() as stack:
        workdir = make_workdir("rehearse")
        stack.callback(shutil.rmtree, workdir, True)
        say(f"starting {option}: {'a primary and ' + str(replicas) + ' replicas' if replicas else 'one node'}"
            if option != "no-cache" else "starting the origin (no cache)")
        cache = _cache(option, replicas, stack)
        spare = None if cache else _cache("redis", 0, stack)  # no cache: calibrate on a node of its own
        pool = stack.enter_context(WorkerPool("rehearse-tasks", "experiments.rehearse.task_worker",
                                              [[] for _ in range(TASK_PROCESSES)]))
        timeouts = decide_spec.timeout_plan(w)
        client = {"budget_s": w.turn_budget_ms / 1000, "command_timeout_s": timeouts.command_timeout_s,
                  "connect_timeout_s": 0.1, "connections": max(8, w.connections_per_task * w.tasks // len(pool)),
                  "origin_connections": ORIGIN_CONNECTIONS, "stale_grace_s": STALE_GRACE_S, **BREAKER}
        say("measuring the rate the task processes keep to (1 s steps) …")
        calibration = pool.call_many({i: {"calibrate": {"cache": cache or spare, "prefix": f"r{i}:", "seconds": 1.0,
                                                        "rates": CALIBRATION_RATES, "value_bytes": VALUE_BYTES,
                                                        **client}} for i in range(len(pool))})
        machine = sum(r["reads_per_s"] for r in calibration.values())
        if machine <= 0:
            raise BookError(f"the task processes could not keep to {CALIBRATION_RATES[0]} turns a second: the machine "
                            "is too busy for a rehearsal now; run it when other load has stopped")
        plan = choose(w, option, machine_reads_per_s=machine, target_ttl_s=options.target_ttl_s)
        predicted = plan.predicted()
        capacity = plan.origin_capacity_per_s
        if options.origin_load:  # the same misses against another capacity
            written = predicted["as_run"]["origin_load_peak"]
            capacity *= written / options.origin_load
            predicted["as_run"]["origin_load_peak"] = options.origin_load
        latency_ms = w.origin_latency_ms / plan.speed  # the origin's time runs as fast as the TTLs' (see plan)
        say(f"the task processes keep to {machine:,.0f} turns/s; scale {plan.scale:.3g}, speed {plan.speed:.3g}x: "
            f"{plan.offered_peak_per_s:,.0f} reads/s at the peak, an origin of {capacity:,.0f} calls/s, "
            f"{plan.seconds:.0f} s")
        origin = stack.enter_context(RateOrigin(capacity, latency_ms, ORIGIN_SIGMA, options.seed))
        db = str(workdir / "source.sqlite")
        change_worker.create(db)
        prefix = "rehearse:"
        families = [{"name": f.name, "keys": int(f.keys), "alpha": float(f.zipf_alpha),
                     "ttl_s": f.ttl_s / plan.speed, "stale_bound_s": f.max_stale_s / plan.speed,
                     "value_bytes": VALUE_BYTES, "cacheable": bool(f.cacheable and numbers["families"][f.name].get("cached")),
                     "rate_per_s": plan.reads_per_s(f.name) / len(pool)} for f in w.families]
        start_at = time.time() + SETTLE_S
        # the steady state as of the first turn, before any change is committed
        placed = _steady_state(cache, families, len(pool), prefix, options.seed, start_at) if cache else 0
        peak_low, peak_high = plan.peak_window()
        supervisor = None
        if cache is not None and any(f.changed_by_events and f.cacheable for f in w.families):
            changes = int(plan.seconds / CHANGE_INTERVAL_S) + 2
            supervisor = Supervisor(db, cache, _change_keys(w, prefix, changes), start_at,
                                    int(peak_low / CHANGE_INTERVAL_S), workdir)
            stack.callback(supervisor.stop)
            supervisor.start()
        if time.time() > start_at:
            raise BookError(f"the rehearsal's processes took over {SETTLE_S:.0f} s to start: the machine is too busy now")
        run = {**client, "cache": cache, "origin_port": origin.port, "families": families, "prefix": prefix,
               "phases": [[p.seconds, p.start, p.end] for p in plan.phases], "source": db, "start_at": start_at,
               "max_turns": MAX_TURNS, "breaker_open_s": BREAKER["breaker_open_s"] / plan.speed}
        for i in range(len(pool)):
            pool.send(i, {"run": run | {"seed": options.seed * 100 + i}})
        ticker = _Ticker(say, origin, capacity, plan, start_at)
        ticker.start()
        try:
            replies = [pool.receive(i) for i in range(len(pool))]
        except BaseException:  # interrupted or failed: a task process in the middle of its run reads no stdin
            for worker in pool.workers:
                worker.kill()
            raise
        finally:
            ticker.stop()
        if supervisor is not None:
            supervisor.stop()
        rows = tally.timeline(plan, replies, origin.counts(start_at, len(replies[0]["turns"])), capacity)
        measured = tally.measured(plan, rows, capacity)
        deletes = tally.deletes_per_s(db if supervisor else None, start_at + peak_low, start_at + peak_high)
        prices = [f.name for f in w.families if f.max_stale_s == 0]
        return {
            "workload": w.name, "option": option, "scale": plan.scale, "speed": plan.speed,
            "machine_reads_per_s": machine,
            "origin": {"latency_ms": latency_ms, "capacity_per_s": capacity},
            "phases": [vars(p) for p in plan.phases], "peak_window_s": [peak_low, peak_high],
            "late_turns": sum(r["late_turns"] for r in replies), "steady_state_keys": placed,
            "stale_age_s": {f: plan.speed * max(r["stale_age_ms"][f] for r in replies) / 1000
                            for f in replies[0]["stale_age_ms"]},
            "crashes": {name: round(at - start_at, 2) for name, at in (supervisor.crashes if supervisor else {}).items()},
            "timeline": rows,
            "totals": {
                "predicted": predicted, "measured": measured,
                "agreement": tally.agreement(predicted["as_run"], measured, deletes_per_s=deletes,
                                             capacity_per_s=capacity, cached=cache is not None),
                "stale_prices_served": sum(row[f]["stale_hits"] for row in rows for f in prices) if prices else None,
                "stale_beyond_bound": {f.name: sum(row[f.name]["stale_beyond_bound"] for row in rows) for f in w.families},
                "lost_changes": tally.lost_changes(db) if supervisor else {"outbox": 0, "dual_write": 0}},
        }


class _Ticker:
    """A progress line every five seconds of the run: the phase, and the origin's calls against its capacity."""

    def __init__(self, say, origin: RateOrigin, capacity: float, plan: Plan, start_at: float) -> None:
        self.say, self.origin, self.capacity, self.plan, self.start_at = say, origin, capacity, plan, start_at
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def start(self) -> None:
        """Begin the progress lines."""
        self.thread.start()

    def _tick(self) -> None:
        last, last_at = 0, time.time()
        while not self.stop_event.wait(5.0):
            calls, now = self.origin.calls(), time.time()
            t = now - self.start_at
            self.say(f"[{t:4.0f} s of {self.plan.seconds:.0f}] {self.plan.multiple_at(t):.2f}x normal traffic; origin "
                     f"{(calls - last) / (now - last_at) / self.capacity:.0%} of its capacity")
            last, last_at = calls, now

    def stop(self) -> None:
        """End them."""
        self.stop_event.set()
        self.thread.join(6)
