"""What a rehearsal counted, put together: the per-second timeline, the peak's measurement, its agreement with
the engine, the changes each path lost and the deletes the change paths made in the peak."""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing

import numpy as np

from experiments.rehearse.plan import Plan

MODEL_SLACK = 0.05
"""What the engine's model leaves out at a rehearsal's scale, as a share of its prediction: its Zipf in groups of
ranks, and the reads that arrive while a miss reloads its key (a few per expiry of a hot key), which it counts only
as a stampede, not in the origin's load."""


def timeline(plan: Plan, replies: list[dict], origin_counts: list[int], capacity_per_s: float) -> list[dict]:
    """One object per second (as run): traffic multiple, turns and the share answered within the budget, per
    family the task processes' counts summed, and the origin's load by its own count of calls, in times its
    capacity."""
    rows = []
    for t in range(len(replies[0]["turns"])):
        turns = sum(r["turns"][t] for r in replies)
        row = {"t_s": t, "multiple": round(plan.multiple_at(t + 0.5), 3), "turns": turns,
               "turns_in_budget": sum(r["in_budget"][t] for r in replies) / turns if turns else None}
        for f, columns in replies[0]["families"].items():
            row[f] = {k: sum(r["families"][f][k][t] for r in replies) for k in columns}
        row["origin_calls"] = origin_counts[t] if t < len(origin_counts) else 0
        row["origin_load"] = row["origin_calls"] / capacity_per_s
        rows.append(row)
    return rows


def measured(plan: Plan, rows: list[dict], capacity_per_s: float) -> dict:
    """Over the peak's window (`Plan.peak_window`): the hit rate over all reads, the origin's load (mean of its
    seconds) and its standard error — the larger of the seconds' spread over √n and the Poisson noise of the calls
    counted —, the turns answered within the budget, and the reads that met an open breaker or a cache error."""
    low, high = plan.peak_window()
    window = [row for row in rows if low <= row["t_s"] and row["t_s"] + 1 <= high]
    families = [f.name for f in plan.workload.families]
    total = {k: sum(row[f][k] for row in window for f in families)
             for k in ("reads", "hits", "breaker_open", "cache_errors", "origin_errors")}
    turns = sum(row["turns"] for row in window)
    answered = sum(row["turns_in_budget"] * row["turns"] for row in window if row["turns"])
    loads = np.array([row["origin_load"] for row in window], dtype=float)
    spread = loads.std(ddof=1) / math.sqrt(loads.size) if loads.size > 1 else math.inf
    poisson = math.sqrt(max(1.0, float(loads.sum()) * capacity_per_s)) / (capacity_per_s * max(1, loads.size))
    return {"hit_rate": total["hits"] / total["reads"] if total["reads"] else math.nan,
            "origin_load_peak": float(loads.mean()) if loads.size else math.nan,
            "origin_load_peak_se": float(max(spread, poisson)),
            "turns_in_budget": answered / turns if turns else math.nan, "seconds": int(loads.size),
            "breaker_open_reads": total["breaker_open"], "cache_errors": total["cache_errors"],
            "origin_timeouts": total["origin_errors"]}


def agreement(predicted: dict, measured_: dict, *, deletes_per_s: float, capacity_per_s: float,
              cached: bool) -> dict:
    """Whether the engine's origin load at the peak (for the traffic as run, plus one miss for each delete the
    change paths made in the window, which the engine's steady state does not count) and the origin's own count
    agree: within three standard errors plus `MODEL_SLACK`. Not judged (``agree`` None) without a cache, where
    every read is a call by construction. Not agreeing, with the cause, when the cache failed or the breaker was
    open in the window, or when the origin fell behind — calls timed out, so their misses never filled and drew
    more misses: a collapse the engine's steady state does not describe (an expiry of a hot key while the origin
    has a queue draws the reads of the whole wait)."""
    expected = predicted["origin_load_peak"] + deletes_per_s / capacity_per_s
    difference = measured_["origin_load_peak"] - expected
    tolerance = 3 * measured_["origin_load_peak_se"] + MODEL_SLACK * expected
    out = {"expected": expected, "difference": difference, "tolerance": tolerance}
    if not cached:
        return out | {"agree": None, "because": "without a cache every read is an origin call"}
    if measured_["breaker_open_reads"] or measured_["cache_errors"]:
        return out | {"agree": False, "because": "the cache failed or the breaker was open in the peak's window"}
    if measured_["origin_timeouts"]:
        return out | {"agree": False, "because": f"the origin fell behind: {measured_['origin_timeouts']:,} calls "
                                                 "timed out in the peak's window, and their misses never filled"}
    return out | {"agree": bool(abs(difference) <= tolerance), "because": "within the tolerance" if abs(
        difference) <= tolerance else "beyond the tolerance"}


def lost_changes(db_path: str) -> dict[str, int]:
    """Per path, the committed changes whose delete never reached the cache."""
    with closing(sqlite3.connect(db_path, timeout=10)) as db:
        rows = db.execute("SELECT c.path, COUNT(*) FROM changes c WHERE NOT EXISTS "
                          "(SELECT 1 FROM published p WHERE p.seq = c.seq) GROUP BY c.path").fetchall()
    lost = {"outbox": 0, "dual write": 0} | {path: int(n) for path, n in rows}
    return {"outbox": lost["outbox"], "dual_write": lost["dual write"]}


def deletes_per_s(db_path: str | None, start: float, end: float) -> float:
    """Distinct changes deleted from the cache per second between the wall-clock times ``start`` and ``end``."""
    if db_path is None:
        return 0.0
    with closing(sqlite3.connect(db_path, timeout=10)) as db:
        count = db.execute("SELECT COUNT(DISTINCT seq) FROM published WHERE deleted_at >= ? AND deleted_at < ?",
                           (start, end)).fetchone()[0]
    return count / (end - start)
