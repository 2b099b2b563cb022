"""What would change the answer: the input values at which the first place of the ranking changes.

One input at a time is scaled up and down from the workload's value — the peak multiple, every family's value
size, every family's staleness limit, the origin's capacity — over a geometric grid (`FACTORS`), and the first
grid point where the first place differs (another option recommended, or none viable where one was, or one
where none was) is narrowed by bisection (`STEPS` halvings of the factor's logarithm, so within 2^(1/32) ≈ 2 %
of a grid step). What is reported is the workload's own
unit (the peak multiple itself, a capacity in reads per second) or, for the per-family inputs, the factor.
"""

from __future__ import annotations

import dataclasses
import math

from experiments.decide import engine
from experiments.decide.workload import Workload

FACTORS = (1.25, 1.5, 2.0, 3.0, 4.0, 8.0, 16.0, 64.0)
"""How far each input is scaled, up and down, before it is called stable."""

STEPS = 5
"""Bisection halvings between the last grid point that keeps the first place and the first that changes it."""

INPUTS = ("peak_multiple", "value_kb", "max_stale_s", "origin_capacity_per_s")


def scaled(w: Workload, name: str, factor: float) -> Workload:
    """The workload with one input scaled by ``factor`` (the peak multiple never below 1)."""
    if name == "peak_multiple":
        return dataclasses.replace(w, peak_multiple=max(1.0, w.peak_multiple * factor))
    if name == "origin_capacity_per_s":
        return dataclasses.replace(w, origin_capacity_per_s=w.origin_capacity_per_s * factor)
    if name in ("value_kb", "max_stale_s"):
        return dataclasses.replace(w, families=tuple(dataclasses.replace(f, **{name: getattr(f, name) * factor})
                                                     for f in w.families))
    raise ValueError(f"input {name!r} is not one of {INPUTS}")


NONE = "none"
"""The first place when no option is viable: which rejected option leads then is no answer to flip."""


def first_place(w: Workload, item_overhead: float) -> tuple[str, str]:
    """The option recommended and ``"viable"``, or (`NONE`, ``"rejected"``) when no option is viable."""
    ordered, _ = engine.rank(w, item_overhead=item_overhead, edge=False)
    return (NONE, "rejected") if ordered[0].rejected_because else (ordered[0].option, "viable")


def _value(w: Workload, name: str, factor: float) -> float:
    if name == "peak_multiple":
        return max(1.0, w.peak_multiple * factor)
    if name == "origin_capacity_per_s":
        return w.origin_capacity_per_s * factor
    return factor


def flips(w: Workload, *, item_overhead: float = engine.ITEM_OVERHEAD) -> list[dict]:
    """For each input and direction, where the first place changes (or that it does not within `FACTORS`):
    ``{"input", "direction", "factor", "value", "first", "verdict"}`` with the new first place, or ``factor``
    None when the first place holds over the whole range."""
    base = first_place(w, item_overhead)
    out = []
    for name in INPUTS:
        for direction in ("up", "down"):
            if name == "peak_multiple" and direction == "down" and w.peak_multiple <= 1:  # no lower peak
                continue
            last, changed = 1.0, None
            for factor in FACTORS:
                f = factor if direction == "up" else 1 / factor
                if name == "peak_multiple" and w.peak_multiple * f < 1:
                    f = 1 / w.peak_multiple
                place = first_place(scaled(w, name, f), item_overhead)
                if place != base:
                    changed = (f, place)
                    break
                last = f
                if f == 1 / w.peak_multiple and name == "peak_multiple" and direction == "down":
                    break
            if changed is None:
                out.append({"input": name, "direction": direction, "factor": None, "value": None,
                            "first": base[0], "verdict": base[1], "searched_to": last})
                continue
            low, (high, place) = last, changed
            for _ in range(STEPS):
                mid = math.sqrt(low * high)
                mid_place = first_place(scaled(w, name, mid), item_overhead)
                if mid_place == base:
                    low = mid
                else:
                    high, place = mid, mid_place
            out.append({"input": name, "direction": direction, "factor": high, "value": _value(w, name, high),
                        "first": place[0], "verdict": place[1], "searched_to": high})
    return out


def describe(flip: dict, w: Workload) -> str:
    """One line for a flip, in the workload's units."""
    what = {"peak_multiple": "the peak multiple", "value_kb": "every value size", "max_stale_s": "every staleness limit",
            "origin_capacity_per_s": "the origin's capacity"}[flip["input"]]
    if flip["factor"] is None:
        held = "no option is viable" if flip["first"] == NONE else f"{flip['first']} stays first"
        if flip["input"] == "peak_multiple" and flip["direction"] == "down":
            return f"{what} down to 1× (no peak): {held}"
        bound = flip["searched_to"] if flip["direction"] == "up" else 1 / flip["searched_to"]
        return f"{what} {flip['direction']} to {bound:g}×: {held}"
    if flip["input"] == "peak_multiple":
        at = f"a peak of {flip['value']:.2f}× normal traffic"
    elif flip["input"] == "origin_capacity_per_s":
        at = f"{flip['value']:,.0f} reads/s ({flip['factor']:.2f}× today's)"
    else:
        at = f"{flip['factor']:.3g}× today's"
    then = "no option is viable" if flip["first"] == NONE else f"{flip['first']} comes first"
    return f"{what} at {at}: {then}"
