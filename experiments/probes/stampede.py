"""Cache stampedes on real Redis: many callers, in several OS processes, reading one hot key as it expires.

Every run uses one real Redis, one real origin process (`experiments.caches.origin.OriginProcess`: the
catalog's 120 ms median, a bounded pool of workers, first come first served) and ``tasks`` worker
processes (`experiments.probes.stampede_worker`) with ``callers // tasks`` threads each. The hot key is
filled and set to expire soon; every caller reads it every ``period_ms`` (random phase) from
``lead_ms`` before that expiry (XFetch's readers earlier: `xfetch_lead_ms`) until ``after_ms`` past
it (reloads get ``ttl_ms``, long enough that no second expiry falls inside the window), through one
`experiments.caches.readthrough.ReadThrough` per task. The origin counts what reached it: calls, peak
concurrency and the spread of their arrivals; the callers report each call's latency and source.
Between runs the origin is left to drain what timed-out callers abandoned, so runs do not disturb
each other.

`experiments.models.herd.expected_origin_calls` is the model the runs check: the number of origin
calls per expiry when every caller reads at least once while the first reload is in flight
(``period_ms`` < origin latency).
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass

import pandas as pd
from tqdm import tqdm

from experiments.caches.origin import OriginProcess
from experiments.caches.readthrough import PROTECTIONS, SOURCES, EarlyRecompute, ReadThrough
from experiments.errors import ParameterError
from experiments.lab.quiet import quiet
from experiments.lab.servers import RedisServer
from experiments.lab.workerpool import WorkerPool
from experiments.models.herd import expected_origin_calls
from experiments.results import Table

SETTLE_MS = 150
"""Time for a run's commands to reach every task before its readers start."""

ORIGIN_WORKERS = 8
"""The origin's worker slots: the catalog at the scale of this machine (as in the no-cache chapter)."""

SLOW_MS = 50
"""A read slower than this waited for a reload (a hit takes about a millisecond here)."""

ORDER = list(PROTECTIONS)
"""The protections in the order the chapter shows them."""


@dataclass(frozen=True)
class Shape:
    """One stampede: who reads, how often, and around which expiry."""

    callers: int
    tasks: int
    period_ms: int = 50
    ttl_ms: int = 5000
    lead_ms: int = 300
    after_ms: int = 700
    timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if self.tasks < 1 or self.callers < self.tasks or self.callers % self.tasks:
            raise ParameterError(f"callers={self.callers} must be a positive multiple of tasks={self.tasks}")
        if self.tasks > 32 or self.callers > 1000:
            raise ParameterError(f"tasks={self.tasks} and callers={self.callers} exceed what a run holds here "
                                 "(at most 32 task processes and 1,000 caller threads)")
        if self.ttl_ms <= 2 * (self.lead_ms + self.after_ms):
            raise ParameterError(f"ttl_ms={self.ttl_ms} must exceed twice lead_ms + after_ms, so that a reload "
                                 "does not come up for recomputation inside the window")


class Bench:
    """The servers and task processes of the stampede runs; the same for every run."""

    def __init__(self, server: RedisServer, *, tasks: int, origin_workers: int = ORIGIN_WORKERS, seed: int = 0) -> None:
        self.server, self.tasks, self.origin_workers, self.seed = server, tasks, origin_workers, seed
        self.origin: OriginProcess | None = None
        self.pool: WorkerPool | None = None
        self.runs = 0

    def start(self) -> "Bench":
        """Start the origin process, then the ``tasks`` worker processes; on any failure, stop what started."""
        try:
            self.origin = OriginProcess(workers=self.origin_workers, seed=self.seed).__enter__()
            args = [self.server.host, str(self.server.port), self.server.password, str(self.origin.port)]
            self.pool = WorkerPool("stampede", "experiments.probes.stampede_worker", [args] * self.tasks).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the task processes, then the origin."""
        if self.pool is not None:
            self.pool.stop()
            self.pool = None
        if self.origin is not None:
            self.origin.__exit__()
            self.origin = None

    def __enter__(self) -> "Bench":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def run(self, protection: str, shape: Shape, **params) -> dict:
        """One stampede; the origin's counts and the callers' latencies and sources."""
        if shape.tasks > self.tasks:
            raise ParameterError(f"tasks={shape.tasks} exceeds the {self.tasks} task processes started")
        if protection not in PROTECTIONS:
            raise ParameterError(f"protection={protection!r} is not one of {', '.join(PROTECTIONS)}")
        self.runs += 1
        key = f"cachebook:stampede:{self.runs}:product:B08X1YRSTR"
        client = self.server.client()
        try:
            protect = PROTECTIONS[protection]()
            rt = ReadThrough(client, self.origin_fill, protect, ttl_ms=shape.ttl_ms)
            rt.fill(key)
            lead_ms = shape.lead_ms
            if protection == EarlyRecompute.name:  # readers must be reading before the early window opens
                lead_ms = xfetch_lead_ms(shape, reload_ms=rt.read(key)[2])
            # the entry has been cached for a while: it now expires (softly, for stale-while-revalidate)
            # once the commands have reached the tasks and the readers have read for lead_ms
            to_expiry_ms = SETTLE_MS + lead_ms
            client.pexpire(key, to_expiry_ms + protect.grace_ms)
            expiry = time.monotonic() + to_expiry_ms / 1000
            self.origin.reset()
            command = {"protection": protection, "params": params, "key": key, "ttl_ms": shape.ttl_ms,
                       "threads": shape.callers // shape.tasks, "period_ms": shape.period_ms,
                       "start_at": expiry - lead_ms / 1000, "stop_at": expiry + shape.after_ms / 1000,
                       "timeout_s": shape.timeout_s}
            seeds = {i: (self.seed * 1000 + self.runs) * 100 + i for i in range(shape.tasks)}
            replies = self.pool.call_many({i: command | {"seed": seeds[i]} for i in range(shape.tasks)})
            stats = self.origin.stats()
            self.origin.wait_idle()
        finally:
            client.delete(key, "lock:" + key)
            client.close()
        calls = pd.DataFrame([c for reply in replies.values() for c in reply["calls"]],
                             columns=["t_s", "latency_ms", "source"])
        return summarize(protection, shape, calls, stats, expiry=expiry, start_at=command["start_at"])

    def origin_fill(self, key: str) -> bytes:
        """The parent's own origin call that fills the key before a run (not counted: counters reset after)."""
        with socket.create_connection(("127.0.0.1", self.origin.port), timeout=5) as conn:
            conn.sendall(f"GET {key}\n".encode())
            return conn.makefile("rb").readline().strip()


RUNS = Table("stampede.RUNS", (
    "protection", "callers", "tasks", "origin_calls", "peak_origin_concurrency", "arrival_spread_ms",
    "first_call_vs_expiry_ms", "reads", "p50_ms", "p99_ms", "max_ms", "slow_reads", *(f"{s}_reads" for s in SOURCES),
    "expected_calls"))
"""`compare` and `sweep`: one `summarize` row per run."""


def summarize(protection: str, shape: Shape, calls: pd.DataFrame, stats: dict, *, expiry: float,
              start_at: float) -> dict:
    """One row: what reached the origin and what the callers saw."""
    sources = calls.source.value_counts()
    spread_ms = (1000 * (stats["last_arrival"] - stats["first_arrival"])) if stats["calls"] else 0.0
    first_ms = (1000 * (stats["first_arrival"] - expiry)) if stats["calls"] else math.nan
    return RUNS.record({"protection": protection, "callers": shape.callers, "tasks": shape.tasks,
            "origin_calls": stats["calls"], "peak_origin_concurrency": stats["peak_in_flight"],
            "arrival_spread_ms": spread_ms, "first_call_vs_expiry_ms": first_ms,
            "reads": len(calls), "p50_ms": float(calls.latency_ms.median()),
            "p99_ms": float(calls.latency_ms.quantile(0.99)), "max_ms": float(calls.latency_ms.max()),
            "slow_reads": int((calls.latency_ms > SLOW_MS).sum()),
            **{f"{s}_reads": int(sources.get(s, 0)) for s in SOURCES},
            "expected_calls": expected_origin_calls(protection, callers=shape.callers, tasks=shape.tasks)})


def compare(bench: Bench, shape: Shape, protections: list[str] = ORDER) -> pd.DataFrame:
    """Every protection under the same stampede, in a quiet section (its latencies are compared)."""
    with quiet("every protection under the same stampede"):
        return RUNS.frame(bench.run(name, shape) for name in protections)


def xfetch_lead_ms(shape: Shape, *, reload_ms: float, beta: float = 1.0) -> int:
    """How long before expiry readers must already be reading for XFetch to work as designed, given
    the reload time ``reload_ms`` stored with the value (`Bench.run` passes the one it stored).

    The first early recomputation comes about ``beta * delta * ln(rate * beta * delta)`` before
    expiry (rate = all readers' reads per second); readers who only start later all find themselves
    inside the window at once. Four extra deltas of margin leave a chance below 2 % of that.
    """
    rate = shape.callers * 1000 / shape.period_ms
    delta = reload_ms / 1000
    first = beta * delta * math.log(rate * beta * delta)
    return int(1000 * (first + 4 * beta * delta)) + shape.period_ms


def sweep(bench: Bench, grid: list[tuple[str, int, int]], *, progress: bool = True, **shape) -> pd.DataFrame:
    """Runs over (protection, callers, tasks) points, with a progress bar."""
    rows = []
    with quiet("the stampede sweep"):
        for name, callers, tasks in tqdm(grid, desc="stampede sweep", disable=not progress, mininterval=1):
            rows.append(bench.run(name, Shape(callers=callers, tasks=tasks, **shape)))
    return RUNS.frame(rows)


def at_seed_scale(table: pd.DataFrame, *, callers: int = 500, tasks: int = 60) -> pd.DataFrame:
    """The model's origin calls at the seed's 500 callers in 60 tasks, beside this machine's measurement."""
    rows = [{"protection": row.protection, "measured_calls": row.origin_calls, "model_here": row.expected_calls,
             "model_at_seed_scale": expected_origin_calls(row.protection, callers=callers, tasks=tasks)}
            for row in table.itertuples()]
    return pd.DataFrame(rows)


def sweep_grid(callers: int, tasks: int) -> list[tuple[str, int, int]]:
    """The sweep the chapter runs: single-flight per task over task counts (callers fixed), and no
    protection, the lock and XFetch over caller counts (tasks fixed at 4 or fewer)."""
    task_counts = [t for t in (1, 2, 4, 8, 16, 32) if t <= tasks and callers % t == 0]
    fixed = max(t for t in task_counts if t <= 4)
    caller_counts = sorted({c for c in (callers // 4, callers) if c >= fixed and c % fixed == 0})
    return ([("single-flight per task", callers, t) for t in task_counts]
            + [(p, c, fixed) for p in ("none", "distributed lock", EarlyRecompute.name) for c in caller_counts])
