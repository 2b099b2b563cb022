"""The decision function's ranking rules: options judged against a workload, ordered best first.

`experiments.decide.engine` judges each option for a workload file — hit rates from the book's models, the
origin load at peak (every live read plus every miss), the staleness its invalidation path allows, the
components it needs built, the cost from the dated price table — as an `Assessment`; `order` applies the
book's findings to rank them:

* an option that cannot meet a staleness limit, or cannot run, is rejected (the engine says why);
* so is one that leaves the origins over capacity at peak (the no-cache chapter's collapse) — and if every
  option does, all stay in the list with what would help;
* options that leave the origins comfortable rank by what they ask of the team (a component to build —
  a queue-fed invalidator, a near cache —, a service to run, data lost with a node) and then by cost; the
  others by the origin load they leave. Ties say why one ranks first.

`table` turns the ordered list into the rows the summary and the command line show.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Assessment:
    """One option judged against a workload: hit rate, origin load at peak (a fraction of capacity),
    staleness bound, the components it needs built, whether cached data survives losing a node, monthly cost
    (NaN when the price table cannot price it), and the reasons it ranks where it does or is rejected."""

    option: str
    hit_rate: float
    origin_load: float
    stale_bound_s: float
    builds: list[str] = field(default_factory=list)
    survives_node_loss: bool = True
    rejected_because: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    usd_per_month: float = 0.0


SHARED_CACHE_ENTRIES = 5_000_000
"""A shared cluster's capacity in entries (a few GB of 2 KB items): large against the hot set."""


SERVICES_TO_RUN = {"no-cache": 0, "in-process": 0}
"""Options that add no cache service to operate (by `experiments.decide.engine`'s ids); every other adds one."""

HEADROOM = 0.7
"""Origin load at peak below which the origins are comfortable and lower load stops mattering."""

CAPACITY_TOLERANCE = 0.01
"""A load within 1 % of capacity is the sizing point itself (the note sizes its catalog for exactly its
planned misses), not an overload."""


def _order(a: Assessment) -> tuple:
    """Comfortable options by what they ask of the team; the others by the origin load they leave."""
    simplicity = (len(a.builds), SERVICES_TO_RUN.get(a.option, 1), not a.survives_node_loss, _usd(a))
    if a.origin_load <= HEADROOM:
        return (0, *simplicity, a.origin_load)
    return (1, round(a.origin_load, 2), *simplicity)


def _usd(a: Assessment) -> float:
    """The option's monthly cost to the dollar; an option the price table cannot price sorts last."""
    return math.inf if math.isnan(a.usd_per_month) else round(a.usd_per_month)


def _same_numbers(a: Assessment, b: Assessment) -> bool:
    return (round(a.hit_rate, 4), round(a.origin_load, 3), a.stale_bound_s) == (
        round(b.hit_rate, 4), round(b.origin_load, 3), b.stale_bound_s)


def _tie_break(a: Assessment, b: Assessment) -> str:
    """Why ``a`` ranks above ``b`` when their numbers are the same (the first difference `_order` sees)."""
    if len(a.builds) != len(b.builds):
        return f"it needs {len(a.builds)} component(s) built against {len(b.builds)}"
    if SERVICES_TO_RUN.get(a.option, 1) != SERVICES_TO_RUN.get(b.option, 1):
        return "it adds no cache service to run"
    if a.survives_node_loss != b.survives_node_loss:
        return "a failed node keeps its keys (a promoted replica), where the other's replacement starts empty"
    if _usd(a) != _usd(b):
        return (f"it costs ${b.usd_per_month - a.usd_per_month:,.0f}/month less on demand" if math.isfinite(_usd(b))
                else "the other cannot be priced from the dated price table")
    return "of the order the options are listed in"


def order(options: list[Assessment], *, live: bool = False) -> list[Assessment]:
    """The options best first. Options that cannot meet the staleness limit, or cannot run at all, are
    rejected; so are those that overload the origins at peak — and if every candidate does, each says what
    would help (``live``: some reads are never cached, so the live path is named first). Options
    that leave the origins under 70 % of capacity rank by what they ask of the team — components to build,
    then a service to run, then whether the cached data survives losing a node (Redis's promoted replica kept
    every key; a replaced Memcached node starts empty), then cost — and the rest by the origin load they leave."""
    candidates = [a for a in options if not a.rejected_because]
    for a in candidates:
        if a.origin_load > 1 + CAPACITY_TOLERANCE:
            a.rejected_because.append(f"leaves the origins {a.origin_load:.1f}x their capacity at peak")
    if candidates and all(a.rejected_because for a in candidates):
        help_ = ("serve the live reads from a path that scales, " if live else "") + (
            "shed what cannot be answered in time, or add origin capacity")
        for a in candidates:
            a.reasons.append(f"no option keeps the origins under capacity at this peak: {help_}")
    viable = sorted((a for a in options if not a.rejected_because), key=_order)
    for first, second in itertools.pairwise(viable):
        if _same_numbers(first, second):
            first.reasons.append(f"ties with {second.option} on hit rate, origin load and staleness; ranked first "
                                 f"because {_tie_break(first, second)}")
    rejected = sorted((a for a in options if a.rejected_because),
                      key=lambda a: (len(a.rejected_because), math.inf if math.isnan(a.origin_load) else a.origin_load,
                                     _usd(a)))
    return viable + rejected


def table(ordered: list[Assessment]) -> pd.DataFrame:
    """The ordered options as rows: rank, verdict (the first viable one "recommended"), numbers, reasons."""
    rows = []
    for position, a in enumerate(ordered, start=1):
        reasons = a.reasons + [f"needs {b}" for b in a.builds] + a.rejected_because
        rows.append({"rank": position, "option": a.option, "verdict": "rejected" if a.rejected_because else "viable",
                     "hit_pct": 100 * a.hit_rate, "origin_load_pct": 100 * a.origin_load,
                     "stale_bound_s": a.stale_bound_s, "usd_per_month": a.usd_per_month,
                     "reasons": "; ".join(reasons)})
    frame = pd.DataFrame(rows)
    if len(frame) and frame.verdict.iloc[0] == "viable":
        frame.loc[0, "verdict"] = "recommended"
    return frame
