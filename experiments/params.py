"""Validation of chapter parameters, so a bad papermill ``-p`` fails with one clear line.

Every chapter's parameters cell is followed by a call to `check`, which rejects an unknown profile,
a non-positive size or count, and a seed that is not an integer. Workload sizes scale with the
profile: ``quick`` keeps each chapter under a minute for CI, ``full`` gives tighter percentiles.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.errors import ParameterError


@dataclass(frozen=True)
class Profile:
    """How much work an experiment does, every chapter's setting for it in one place: repetitions of each timed
    operation, slow origin calls, a scale factor for workload sizes (events, keys, requests) that chapters
    multiply by, and the settings a chapter scales otherwise:

    * ``latency_reads`` — the economics and Valkey chapters' GETs per store (engine) and value size, from which
      they assert p99s or judge the note's "< 2 ms": in nine rounds, so each round's p99 rests on the slowest few
      of its reads (2,000 reads left that on two, and a CI run's brief stalls moved three rounds' p99 by 0.65 ms;
      the Valkey chapter's 2,000 in five rounds once judged Valkey's 2 KB p99 at 2.4 ms, splitting the note's
      claim from the economics chapter's verdict);
    * ``stream_scale`` — the traffic chapter's generated streams (their length, and the Redis replay);
    * ``large_items_scale`` — the Valkey chapter's 100 KB layout (its item count);
    * ``sweep_repeats`` — how often the read-through chapter repeats its stampede sweep;
    * ``grid_refine`` — how much finer the summary's what-if grids are (their step divided by it);
    * ``documented_defaults`` — whether the network chapter also runs Sentinel's and Cluster's documented
      detection times (30 s, 15 s), which the quick profile reaches by extrapolation."""

    name: str
    repetitions: int
    latency_reads: int
    origin_calls: int
    scale: int
    stream_scale: int
    large_items_scale: int
    sweep_repeats: int
    grid_refine: int
    documented_defaults: bool


PLAN_CEILING = 0.8
"""The highest share of any capacity a plan may use — an origin at peak, a node's limit, a turn's budget, a
catalog behind a gutter: queueing delay grows as 1/(1 − utilization) (M/M/1: at 80 % a request waits four
service times on average, at 90 % nine), and the no-cache chapter shows an origin past capacity does not recover.
A plan at 100 % of a capacity is not a plan."""

PROFILES = {
    "quick": Profile("quick", repetitions=2_000, latency_reads=6_000, origin_calls=8, scale=1, stream_scale=1,
                     large_items_scale=1, sweep_repeats=1, grid_refine=1, documented_defaults=False),
    "full": Profile("full", repetitions=20_000, latency_reads=60_000, origin_calls=40, scale=10, stream_scale=6,
                    large_items_scale=100, sweep_repeats=3, grid_refine=2, documented_defaults=True),
}


def profile(name: str) -> Profile:
    """The named profile, or a one-line error listing the valid names."""
    if name not in PROFILES:
        raise ParameterError(f"profile={name!r} is not one of {', '.join(map(repr, PROFILES))}")
    return PROFILES[name]


def positive(name: str, value, *, integer: bool = True):
    """``value`` if it is a positive number (an integer when ``integer``), else a one-line error."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise ParameterError(f"{name}={value!r} must be {what}")
    return value


def seed(value) -> int:
    """A random seed: any non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParameterError(f"seed={value!r} must be a non-negative integer")
    return value


def check(*, profile_name: str, seed_value, sizes: dict[str, int] | None = None,
          lists: dict[str, list] | None = None) -> Profile:
    """Validate a chapter's common parameters at once; returns the chosen `Profile`.

    ``sizes`` are single positive integers; ``lists`` are non-empty lists of positive integers.
    """
    chosen = profile(profile_name)
    seed(seed_value)
    for name, value in (sizes or {}).items():
        positive(name, value)
    for name, values in (lists or {}).items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ParameterError(f"{name}={values!r} must be a non-empty list of positive integers")
        for value in values:
            positive(f"{name} element", value)
    return chosen
