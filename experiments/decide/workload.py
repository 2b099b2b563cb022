"""A reader's workload file (TOML), read and checked: every problem is one line naming the field, the value
and what is allowed, raised as `WorkloadError`.

The file describes the system the book's models decide for — its tasks, its origin, and one ``[[families]]``
table per key family, with the popularity either a Zipf exponent or a key trace (CSV ``timestamp,key,size``
with a header row, or libCacheSim's oracleGeneral binary). Unknown fields are errors, not ignored: a typo
must not silently fall back to a default. The fields are documented in the README ("Decide for your own
system").
"""

from __future__ import annotations

import csv
import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.errors import ParameterError
from experiments.params import PLAN_CEILING

POLICIES = ("lru", "fifo", "s3fifo", "sieve", "wtinylfu", "lfu")
"""Eviction policies a workload may name (libCacheSim's, `experiments.models.peer`)."""

ORACLE_GENERAL_BYTES = 24
"""One request of libCacheSim's oracleGeneral binary format: u32 time, u64 id, u32 size, i64 next access."""


class WorkloadError(ParameterError):
    """A workload file that cannot be used; the message is one line saying what and how to fix it."""


@dataclass(frozen=True, eq=False)
class Trace:
    """A key trace: per request the key's index, its time (s), and per key its size (bytes). Equal only to
    itself (hashed by identity), so a family that carries one can key a cache of hit rates."""

    entry: np.ndarray
    times: np.ndarray
    sizes: np.ndarray


@dataclass(frozen=True)
class Family:
    """One ``[[families]]`` table: the key family's reads per second, value size, TTL and staleness
    limit, whether changes are announced, whether it may be cached and lives in DynamoDB, and its
    popularity (``keys`` and ``zipf_alpha``, or a `Trace`, whose sizes then set ``value_kb``: the mean size of
    a request)."""

    name: str
    reads_per_s: float
    value_kb: float
    ttl_s: float
    max_stale_s: float
    changed_by_events: bool
    cacheable: bool
    in_dynamodb: bool
    keys: int | None = None
    zipf_alpha: float | None = None
    trace: Trace | None = None
    projections: int = 1


ORIGIN_MAX_UTILIZATION = PLAN_CEILING
"""The highest share of its capacity an origin may carry at peak in a viable plan, unless the workload sets
``origin.max_utilization``: the book's ceiling for any plan (`experiments.params.PLAN_CEILING`)."""


@dataclass(frozen=True)
class Team:
    """What the team's work costs (``[team]``; every field defaulted, ours): a loaded engineer-day, the days
    to build one component (an invalidator, a replay, a near cache), the days a month one cache service takes
    to run (upgrades, alarms, on-call), and the months a build is written off over."""

    day_usd: float = 800.0
    days_per_component: float = 10.0
    days_per_service_month: float = 2.0
    horizon_months: float = 12.0


@dataclass(frozen=True)
class Workload:
    """A checked workload file: the system's tasks, peak multiple, turn budget, origin (capacity per
    second, latency, the utilization a plan may leave it at) and key families, with the per-task cache
    memory and eviction policy, the Availability Zones its tasks spread over, the connections each task keeps
    to each cache node, and what the team's work costs; ``source`` is the file it came from."""

    name: str
    tasks: int
    peak_multiple: float
    turn_budget_ms: float
    origin_capacity_per_s: float
    origin_latency_ms: float
    families: tuple[Family, ...]
    task_cache_mb: float = 500.0
    eviction: str = "lru"
    origin_max_utilization: float = ORIGIN_MAX_UTILIZATION
    zones: int = 3
    connections_per_task: int = 8
    team: Team = field(default_factory=Team)
    source: Path = field(default=Path("."), compare=False)


def _where(path: Path, key: str) -> str:
    return f"{path.name}: {key}"


def _number(table: dict, key: str, where: str, *, minimum: float = 0.0, strict: bool = True, integer: bool = False,
            default=None):
    if key not in table:
        if default is not None:
            return default
        raise WorkloadError(f"{where}.{key} is missing: add it ({'an integer' if integer else 'a number'})")
    value = table[key]
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or (isinstance(value, float) and not math.isfinite(value)):
        raise WorkloadError(f"{where}.{key} = {value!r}: must be {'an integer' if integer else 'a number'}")
    if value < minimum or (strict and value == minimum):
        bound = f"above {minimum:g}" if strict else f"at least {minimum:g}"
        raise WorkloadError(f"{where}.{key} = {value!r}: must be {bound}")
    return value


def _flag(table: dict, key: str, where: str) -> bool:
    if key not in table:
        raise WorkloadError(f"{where}.{key} is missing: add it (true or false)")
    if not isinstance(table[key], bool):
        raise WorkloadError(f"{where}.{key} = {table[key]!r}: must be true or false")
    return table[key]


def _text(table: dict, key: str, where: str) -> str:
    if key not in table:
        raise WorkloadError(f"{where}.{key} is missing: add it (a string)")
    if not isinstance(table[key], str) or not table[key].strip():
        raise WorkloadError(f"{where}.{key} = {table[key]!r}: must be a non-empty string")
    return table[key]


def _no_unknown(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise WorkloadError(f"{where}: unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def read_trace(path: Path, where: str) -> Trace:
    """A CSV trace (``timestamp,key,size`` with a header row) or an oracleGeneral binary (by its ``.bin``
    suffix); keys become indices (in sorted order of the keys), a key's size its last size seen."""
    if not path.is_file():
        what = "a directory, not a file" if path.is_dir() else "no such file"
        raise WorkloadError(f"{where} = {str(path)!r}: {what} (a path is relative to the workload file)")
    if path.suffix == ".bin":
        data = path.read_bytes()
        if not data or len(data) % ORACLE_GENERAL_BYTES:
            raise WorkloadError(f"{where} = {str(path)!r}: not an oracleGeneral trace ({len(data)} bytes is not a "
                                f"positive multiple of {ORACLE_GENERAL_BYTES})")
        records = np.frombuffer(data, np.dtype([("time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"),
                                                ("next_access", "<i8")]))
        times, keys, sizes = records["time"].astype(float), records["obj_id"], records["obj_size"].astype(float)
    else:
        try:
            with open(path, newline="") as handle:
                rows = list(csv.reader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise WorkloadError(f"{where} = {str(path)!r}: cannot be read as CSV ({exc})") from None
        if not rows or [c.strip() for c in rows[0]] != ["timestamp", "key", "size"]:
            raise WorkloadError(f"{where} = {str(path)!r}: the first row must be the header timestamp,key,size")
        if len(rows) < 2:
            raise WorkloadError(f"{where} = {str(path)!r}: has no requests after its header")
        try:
            times = np.array([float(r[0]) for r in rows[1:]])
            keys = np.array([r[1] for r in rows[1:]])
            sizes = np.array([float(r[2]) for r in rows[1:]])
        except (ValueError, IndexError):
            bad = next(i for i, r in enumerate(rows[1:], start=2) if len(r) != 3 or not _numeric(r[0], r[2]))
            raise WorkloadError(f"{where} = {str(path)!r}: row {bad} is not timestamp,key,size with numbers "
                                f"for timestamp and size") from None
    if not (np.isfinite(times).all() and np.isfinite(sizes).all()) or (sizes <= 0).any() or (np.diff(times) < 0).any():
        raise WorkloadError(f"{where} = {str(path)!r}: sizes must be positive finite numbers and timestamps finite and "
                            f"never going back")
    _, first, entry = np.unique(keys, return_index=True, return_inverse=True)
    per_key = np.zeros(first.size)
    per_key[entry] = sizes
    return Trace(entry.astype(np.int64), times - times[0], per_key)


def _numeric(*values: str) -> bool:
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return True


FAMILY_FIELDS = {"name", "reads_per_s", "keys", "zipf_alpha", "trace", "value_kb", "ttl_s", "max_stale_s",
                 "changed_by_events", "cacheable", "in_dynamodb", "projections"}
TOP_FIELDS = {"name", "tasks", "peak_multiple", "turn_budget_ms", "origin", "families", "task_cache_mb", "eviction",
              "zones", "connections_per_task", "team"}
ORIGIN_FIELDS = {"capacity_per_s", "latency_ms", "max_utilization"}
TEAM_FIELDS = {"day_usd", "days_per_component", "days_per_service_month", "horizon_months"}


def _team(data: dict, path: Path) -> Team:
    table = data.get("team", {})
    where = _where(path, "team")
    if not isinstance(table, dict):
        raise WorkloadError(f"{where}: must be a [team] table")
    _no_unknown(table, TEAM_FIELDS, where)
    default = Team()
    return Team(**{name: _number(table, name, where, minimum=0.0, strict=name == "horizon_months",
                                 default=getattr(default, name)) for name in sorted(TEAM_FIELDS)})


def _family(table, index: int, path: Path) -> Family:
    where = _where(path, f"families[{index}]")
    if not isinstance(table, dict):
        raise WorkloadError(f"{where}: must be a [[families]] table")
    _no_unknown(table, FAMILY_FIELDS, where)
    has_zipf, has_trace = "zipf_alpha" in table, "trace" in table
    if has_zipf == has_trace:
        raise WorkloadError(f"{where}: give exactly one of zipf_alpha (with keys) and trace, not "
                            f"{'both' if has_zipf else 'neither'}")
    if has_trace and "keys" in table:
        raise WorkloadError(f"{where}.keys: a trace sets its own keys; remove keys (or the trace)")
    if has_trace and "value_kb" in table:
        raise WorkloadError(f"{where}.value_kb: a trace sets its own sizes; remove value_kb (or the trace)")
    trace = read_trace(path.parent / _text(table, "trace", where), f"{where}.trace") if has_trace else None
    return Family(
        name=_text(table, "name", where), reads_per_s=_number(table, "reads_per_s", where),
        value_kb=float(trace.sizes[trace.entry].mean() / 1000) if trace is not None else _number(table, "value_kb", where),
        ttl_s=_number(table, "ttl_s", where),
        max_stale_s=_number(table, "max_stale_s", where, strict=False),
        changed_by_events=_flag(table, "changed_by_events", where), cacheable=_flag(table, "cacheable", where),
        in_dynamodb=_flag(table, "in_dynamodb", where),
        keys=_number(table, "keys", where, minimum=1, strict=False, integer=True) if has_zipf else None,
        zipf_alpha=_number(table, "zipf_alpha", where) if has_zipf else None, trace=trace,
        projections=_number(table, "projections", where, minimum=1, strict=False, integer=True, default=1))


def load(path: str | Path) -> Workload:
    """Read and check a workload file; the first problem found is raised as a one-line `WorkloadError`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise WorkloadError(f"{path}: no such workload file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"{path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkloadError(f"{path.name}: not valid TOML ({exc})") from None
    top = _where(path, "workload")
    _no_unknown(data, TOP_FIELDS, top)
    origin = data.get("origin")
    if not isinstance(origin, dict):
        raise WorkloadError(f"{path.name}: the [origin] table is missing: add capacity_per_s and latency_ms")
    _no_unknown(origin, ORIGIN_FIELDS, _where(path, "origin"))
    families = data.get("families")
    if not isinstance(families, list) or not families:
        raise WorkloadError(f"{path.name}: no [[families]] table: add one per key family")
    parsed = tuple(_family(f, i, path) for i, f in enumerate(families))
    names = [f.name for f in parsed]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise WorkloadError(f"{path.name}: two families are named {duplicate!r}; family names must be unique")
    utilization = _number(origin, "max_utilization", _where(path, "origin"), default=ORIGIN_MAX_UTILIZATION)
    if utilization > 1:
        raise WorkloadError(f"{_where(path, 'origin')}.max_utilization = {utilization!r}: must be at most 1 (a share "
                            f"of the origin's capacity)")
    eviction = data.get("eviction", "lru")
    if eviction not in POLICIES:
        raise WorkloadError(f"{top}.eviction = {eviction!r}: must be one of {', '.join(POLICIES)}")
    return Workload(
        name=_text(data, "name", top), tasks=_number(data, "tasks", top, minimum=1, strict=False, integer=True),
        peak_multiple=_number(data, "peak_multiple", top, minimum=1, strict=False),
        turn_budget_ms=_number(data, "turn_budget_ms", top),
        origin_capacity_per_s=_number(origin, "capacity_per_s", _where(path, "origin")),
        origin_latency_ms=_number(origin, "latency_ms", _where(path, "origin")),
        families=parsed, task_cache_mb=_number(data, "task_cache_mb", top, default=500.0), eviction=eviction,
        origin_max_utilization=utilization,
        zones=_number(data, "zones", top, minimum=1, strict=False, integer=True, default=3),
        connections_per_task=_number(data, "connections_per_task", top, minimum=1, strict=False, integer=True,
                                     default=8),
        team=_team(data, path), source=path)


def with_headroom(w: Workload) -> Workload:
    """The same workload with the origin's capacity raised so that its planned load sits at the utilization a
    plan may use (the note's catalog, sized for exactly its misses, becomes 1/0.8 = 1.25 times larger)."""
    return dataclasses.replace(w, name=f"{w.name}, catalog with headroom",
                               origin_capacity_per_s=w.origin_capacity_per_s / w.origin_max_utilization)
