"""Timing done one way everywhere: ``perf_counter_ns``, a warm-up, repetitions, percentiles.

Single operations are timed one by one, so the result includes the timer's own cost (≈ 0.05 µs
here) — negligible for network calls, and a conservative upper bound for in-process lookups.
Results are medians and tail percentiles, never means: this machine is noisy and bimodal.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from experiments.params import positive

if TYPE_CHECKING:  # pandas is imported lazily: these modules load in worker processes too
    import pandas as pd


def time_calls_ms(call: Callable[[], object], repetitions: int, warmup: int = 200) -> np.ndarray:
    """Latency of each of ``repetitions`` calls of ``call`` in milliseconds, after ``warmup`` calls."""
    positive("repetitions", repetitions)
    for _ in range(warmup):
        call()
    samples = np.empty(repetitions, dtype=np.int64)
    clock = time.perf_counter_ns
    for i in range(repetitions):
        start = clock()
        call()
        samples[i] = clock() - start
    return samples / 1e6


def summarize_ms(samples_ms: np.ndarray) -> dict[str, float]:
    """p50, p99, max and count of a latency sample (ms)."""
    return {
        "p50_ms": float(np.percentile(samples_ms, 50)),
        "p99_ms": float(np.percentile(samples_ms, 99)),
        "max_ms": float(np.max(samples_ms)),
        "n": len(samples_ms),
    }


def spread_between_rounds(values) -> float:
    """How much a quantity moved between rounds: max − min for up to four rounds; from five on, the
    interquartile range, the spread that matches a median over rounds (a stall that spoils one round moves
    neither the median nor this)."""
    values = np.asarray([float(v) for v in values])
    if len(values) == 0:
        return float("nan")
    if len(values) < 5:
        return float(values.max() - values.min())
    low, high = np.percentile(values, [25, 75])
    return float(high - low)


def chunk_stats(samples, stat=np.max, rounds: int = 5) -> list[float]:
    """``stat`` of each of ``rounds`` consecutive chunks of ``samples`` (taken in time order): rounds after the
    fact, for a probe that takes one long series, so its spread between rounds can be measured."""
    return [float(stat(chunk)) for chunk in np.array_split(np.asarray(samples, dtype=float), rounds) if len(chunk)]


def summarize_rounds_ms(rounds: list[np.ndarray]) -> dict[str, float]:
    """p50 and p99 as the median over rounds of each round's percentile, with their spread between rounds
    (`spread_between_rounds`), the max over all, the total count: a stall of the machine that falls in one
    round does not move the result (this machine shows them)."""
    per_round = [summarize_ms(r) for r in rounds]
    p50s, p99s = [r["p50_ms"] for r in per_round], [r["p99_ms"] for r in per_round]
    return {"p50_ms": float(np.median(p50s)), "p99_ms": float(np.median(p99s)),
            "p50_spread_ms": spread_between_rounds(p50s), "p99_spread_ms": spread_between_rounds(p99s),
            "max_ms": max(r["max_ms"] for r in per_round), "n": sum(r["n"] for r in per_round)}


def ecdf(samples: dict[str, np.ndarray], points: int = 200) -> "pd.DataFrame":
    """Empirical CDFs of several latency samples, thinned to ``points`` quantiles each (for charts)."""
    import pandas as pd

    q = np.linspace(0, 1, points)
    return pd.concat([pd.DataFrame({"series": name, "latency_ms": np.quantile(values, q), "fraction": q})
                      for name, values in samples.items()], ignore_index=True)


def machine() -> str:
    """One line describing where timings were taken (CPU model, cores, Python)."""
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"
