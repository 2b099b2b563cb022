"""A rehearsal: the design stood up on real local servers, a workload driven through it, changes published by
two paths that each lose their process once, and the engine's prediction for the same traffic beside what
happened.

`rehearse` starts, in order, the cache (the option's engine: a primary with the deployment's replicas under
Sentinel, or no cache), the origin (`experiments.caches.origin.OriginProcess`, its slots set so its capacity is
the plan's), the source (`change_worker`'s SQLite database) with its invalidator and two writers, and the task
processes (`task_worker`). It measures what the task processes can send (`calibrate`), chooses the plan
(`experiments.rehearse.plan.choose`), runs the phases, and stops everything it started, on success, error or
interrupt. One writer publishes through the outbox and the invalidator is killed once between reading a change
and deleting its key; the other writes twice (the source, then the cache) and is killed once between the two.
Each is restarted, as a supervisor would; the counts of changes whose delete never happened are the run's
``lost_changes``.
"""

from __future__ import annotations

import math
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.decide import engine
from experiments.decide import spec as decide_spec
from experiments.decide.spec import ORIGIN_SIGMA
from experiments.decide.workload import Workload, WorkloadError
from experiments.errors import BookError
from experiments.lab.quiet import busy
from experiments.lab.servers import RedisServer
from experiments.lab.spawner import make_workdir, spawn_worker
from experiments.lab.topologies import SentinelSet
from experiments.lab.workerpool import WorkerPool
from experiments.rehearse import change_worker
from experiments.rehearse.origin import RateOrigin
from experiments.rehearse.plan import Plan, choose

ENGINES = {"redis": "redis", "valkey": "valkey", "valkey-durable": "valkey", "valkey-serverless": "valkey"}
"""The options a rehearsal stands up, and the local engine of each (a serverless cache runs as one node)."""
SUPPORTED = (*ENGINES, "no-cache")
TASK_PROCESSES = 2
"""Task processes on two cores: each stands for half of the workload's tasks."""
CHANGE_INTERVAL_S = 0.5
"""A change every half second (as run) on each of the two paths."""
STALE_GRACE_S = 0.25
"""How long after a change a hit of the old version is not yet stale: the invalidation path's time."""
BREAKER = {"breaker_failures": 3, "breaker_open_s": 5.0}
"""Three cache errors in a row open the breaker for five seconds (the degraded chapter's fail-open)."""
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
STEADY_KEYS = 500_000
"""The most keys of one family the steady state sets before the run."""
MODEL_SLACK = 0.05
"""What the engine's model leaves out at a rehearsal's scale, as a share of its prediction: its Zipf in groups of
ranks, and the reads that arrive while a miss reloads its key (a few per expiry of a hot key, at a compressed
origin latency), which it counts only as a stampede, not in the origin's load."""
DRAIN_S = 5.0
"""The longest the invalidator is given, after the run, to publish what the writers committed."""
SETTLE_S = 3.0
"""From the end of set-up to the first turn: the change processes start meanwhile (each in under a second)."""


@dataclass
class Options:
    """What a caller may choose: the TTL as run, the seed, a progress callback (a line every few seconds)."""

    target_ttl_s: float = 10.0
    seed: int = 7
    progress: object = None


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
    """The keys each path changes: the hottest keys of the families the source announces, alternating between
    the paths (a change to a key nobody reads could not be served stale)."""
    hot = [f"{prefix}{f.name}:{rank}" for rank in range(count) for f in w.families
           if f.changed_by_events and f.cacheable]
    return {"outbox": hot[0::2], "dual write": hot[1::2]}


class _Supervisor:
    """The invalidator and the two writers: started, each restarted once after its planned crash (as a supervisor
    would), stopped."""

    def __init__(self, db: str, cache: dict, keys: dict[str, list[str]], start_at: float, crash_index: int,
                 workdir) -> None:
        self.db, self.cache, self.keys, self.start_at, self.workdir = db, cache, keys, start_at, workdir
        self.crash_index = crash_index
        self.procs: dict[str, subprocess.Popen] = {}
        self.crashes: dict[str, float] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _spawn(self, name: str, args: list[str]) -> None:
        proc = spawn_worker([sys.executable, "-m", "experiments.rehearse.change_worker", args[0], self.db,
                             self.cache["host"], str(self.cache["port"]), self.cache["password"], *args[1:]],
                            self.workdir / f"{name.replace(' ', '-')}.log", self.workdir)
        self.procs[name] = proc
        if not proc.stdout.readline():
            raise BookError(f"the {name} process exited at start; its log is in {self.workdir}")

    def _writer(self, path: str, first: int, crash_at: int) -> None:
        self._spawn(path, ["writer", path, str(CHANGE_INTERVAL_S), str(self.start_at + first * CHANGE_INTERVAL_S),
                           str(crash_at - first if crash_at >= 0 else -1), *self.keys[path][first:]])

    def start(self) -> "_Supervisor":
        self._spawn("invalidator", ["invalidator", self.keys["outbox"][self.crash_index]])
        self._writer("outbox", 0, -1)
        self._writer("dual write", 0, self.crash_index)
        self.thread.start()
        return self

    def _watch(self) -> None:
        while not self.stop_event.wait(0.02):
            for name, proc in list(self.procs.items()):
                if proc.poll() == -signal.SIGKILL and name not in self.crashes:
                    self.crashes[name] = time.time()
                    if name == "dual write":
                        self._writer(name, self.crash_index + 1, -1)
                    else:
                        self._spawn(name, ["invalidator", "-"])

    def stop(self) -> None:
        """Stop the writers, let the invalidator publish what they committed (at most `DRAIN_S`), stop it."""
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(5)
        for name in ("outbox", "dual write", "invalidator"):
            if name == "invalidator":
                self._drain()
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()

    def _drain(self) -> None:
        """Wait until every outbox row is published (the invalidator's offset at the last), at most `DRAIN_S`."""
        if not Path(self.db).exists():
            return
        deadline = time.monotonic() + DRAIN_S
        with sqlite3.connect(self.db, timeout=10) as db:
            while time.monotonic() < deadline:
                last = db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0]
                done = db.execute("SELECT COALESCE(MAX(seq), 0) FROM offsets WHERE name = 'invalidator'").fetchone()[0]
                if done >= last:
                    return
                time.sleep(0.02)


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


def lost_changes(db_path: str) -> dict[str, int]:
    """Per path, the committed changes whose delete never reached the cache."""
    with sqlite3.connect(db_path, timeout=10) as db:
        rows = db.execute("SELECT c.path, COUNT(*) FROM changes c WHERE NOT EXISTS "
                          "(SELECT 1 FROM published p WHERE p.seq = c.seq) GROUP BY c.path").fetchall()
    lost = {"outbox": 0, "dual write": 0} | {path: int(n) for path, n in rows}
    return {"outbox": lost["outbox"], "dual_write": lost["dual write"]}


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


def _timeline(plan: Plan, replies: list[dict], capacity_per_s: float) -> list[dict]:
    """One object per second (as run): traffic multiple, turns and the share answered in the budget, and per
    family the task processes' counts summed; the origin's load in times its capacity."""
    seconds = len(replies[0]["turns"])
    families = list(replies[0]["families"])
    rows = []
    for t in range(seconds):
        turns = sum(r["turns"][t] for r in replies)
        row = {"t_s": t, "multiple": round(plan.multiple_at(t + 0.5), 3), "turns": turns,
               "turns_in_budget": sum(r["in_budget"][t] for r in replies) / turns if turns else None}
        calls = 0
        for f in families:
            counts = {k: sum(r["families"][f][k][t] for r in replies) for k in replies[0]["families"][f]}
            row[f] = counts
            calls += counts["origin_calls"]
        row["origin_load"] = calls / capacity_per_s
        rows.append(row)
    return rows


def _measured(plan: Plan, timeline: list[dict]) -> dict:
    """Hit rate, origin load and turns answered over the peak's measured window (`Plan.peak_window`)."""
    low, high = plan.peak_window()
    window = [row for row in timeline if low <= row["t_s"] and row["t_s"] + 1 <= high]
    families = [f.name for f in plan.workload.families]
    reads = sum(row[f]["reads"] for row in window for f in families)
    hits = sum(row[f]["hits"] for row in window for f in families)
    turns = sum(row["turns"] for row in window)
    answered = sum(row["turns_in_budget"] * row["turns"] for row in window if row["turns"])
    loads = np.array([row["origin_load"] for row in window])
    return {"hit_rate": hits / reads if reads else math.nan, "origin_load_peak": float(loads.mean()),
            "origin_load_peak_se": float(loads.std(ddof=1) / math.sqrt(loads.size)) if loads.size > 1 else math.nan,
            "turns_in_budget": answered / turns if turns else math.nan, "seconds": int(loads.size)}


def agreement(totals: dict) -> dict:
    """Whether the engine's origin load at the peak (for the traffic as run) and the measured one agree: within
    three standard errors of the measured mean over the peak's seconds, plus `MODEL_SLACK`."""
    predicted = totals["predicted"]["as_run"]["origin_load_peak"]
    measured = totals["measured"]["origin_load_peak"]
    tolerance = 3 * totals["measured"]["origin_load_peak_se"] + MODEL_SLACK * predicted
    return {"difference": measured - predicted, "tolerance": tolerance, "agree": abs(measured - predicted) <= tolerance}


def rehearse(w: Workload, option: str | None = None, options: Options | None = None) -> dict:
    """The rehearsal of ``option`` (default: the engine's first) on ``w``: the JSON of the module."""
    options = options or Options()
    say = options.progress or (lambda _line: None)
    option = chosen_option(w, option)
    assessment, numbers = engine.assess(w, option, edge=False)
    deployment = decide_spec.deployment(w, option, numbers | {"builds": assessment.builds}) or {}
    replicas = int(deployment.get("replicas", 0) or 0)
    with ExitStack() as stack, busy():
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
        plan = choose(w, option, machine_reads_per_s=machine, target_ttl_s=options.target_ttl_s)
        capacity = plan.origin_capacity_per_s
        latency_ms = w.origin_latency_ms / plan.speed  # the origin's time runs as fast as the TTLs' (see plan)
        say(f"the task processes send {machine:,.0f} GETs/s; scale {plan.scale:.3g}, speed {plan.speed:.3g}x: "
            f"{plan.offered_peak_per_s:,.0f} reads/s at the peak, an origin of {capacity:,.0f} calls/s, "
            f"{plan.seconds:.0f} s")
        origin = stack.enter_context(RateOrigin(capacity, latency_ms, ORIGIN_SIGMA, options.seed))
        db = str(workdir / "source.sqlite")
        change_worker.create(db)
        prefix = "rehearse:"
        families = [{"name": f.name, "keys": int(f.keys), "alpha": float(f.zipf_alpha),
                     "ttl_s": f.ttl_s / plan.speed, "value_bytes": VALUE_BYTES,
                     "cacheable": bool(f.cacheable and numbers["families"][f.name].get("cached")),
                     "rate_per_s": plan.reads_per_s(f.name) / len(pool)} for f in w.families]
        start_at = time.time() + SETTLE_S
        # the steady state as of the first turn, before any change is committed
        placed = _steady_state(cache, families, len(pool), prefix, options.seed, start_at) if cache else 0
        peak_low, _ = plan.peak_window()
        crash_index = int(peak_low / CHANGE_INTERVAL_S)
        changes = int(plan.seconds / CHANGE_INTERVAL_S) + 2
        supervisor = None
        if cache is not None and any(f.changed_by_events and f.cacheable for f in w.families):
            supervisor = _Supervisor(db, cache, _change_keys(w, prefix, 2 * changes), start_at, crash_index, workdir)
            stack.callback(supervisor.stop)
            supervisor.start()
        if time.time() > start_at:
            raise BookError(f"the rehearsal's processes took over {SETTLE_S:.0f} s to start; the machine is too busy")
        run = {**client, "cache": cache, "origin_port": origin.port, "families": families, "prefix": prefix,
               "phases": [[p.seconds, p.start, p.end] for p in plan.phases], "source": db, "start_at": start_at,
               "max_turns": MAX_TURNS}
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
        timeline = _timeline(plan, replies, capacity)
        predicted, measured = plan.predicted(), _measured(plan, timeline)
        stale_prices = sum(row[f.name]["stale_hits"] for row in timeline for f in w.families if f.max_stale_s == 0)
        return {
            "workload": w.name, "option": option, "scale": plan.scale, "speed": plan.speed,
            "machine_reads_per_s": machine,
            "origin": {"latency_ms": latency_ms, "capacity_per_s": capacity},
            "phases": [vars(p) for p in plan.phases], "peak_window_s": list(plan.peak_window()),
            "late_turns": sum(r["late_turns"] for r in replies), "steady_state_keys": placed,
            "stale_age_ms": {f: max(r["stale_age_ms"][f] for r in replies) for f in replies[0]["stale_age_ms"]},
            "crashes": {name: round(at - start_at, 2) for name, at in (supervisor.crashes if supervisor else {}).items()},
            "timeline": timeline,
            "totals": {"predicted": predicted, "measured": measured, "agreement": agreement(
                {"predicted": predicted, "measured": measured}),
                       "stale_prices_served": stale_prices,
                       "lost_changes": lost_changes(db) if supervisor else {"outbox": 0, "dual_write": 0}},
        }


class _Ticker:
    """A progress line every five seconds of the run: the phase, and the origin's calls against its capacity."""

    def __init__(self, say, origin: RateOrigin, capacity: float, plan: Plan, start_at: float) -> None:
        self.say, self.origin, self.capacity, self.plan, self.start_at = say, origin, capacity, plan, start_at
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def start(self) -> None:
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
        self.stop_event.set()
        self.thread.join(6)
