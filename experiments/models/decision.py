"""The decision function's ranking rules: options judged against a workload, ordered best first.

`experiments.decide.engine` judges each option for a workload file — hit rates from the book's models, the
origin load at peak (every live read plus every miss), the staleness its invalidation path allows when all is
well and in the worst failure the book measured, the components it needs built, the cluster sized by every
node limit and its transfer, the team's work at the workload's rates — as an `Assessment`; `order` ranks them:

* an option that cannot meet a staleness limit, or cannot run, is rejected (the engine says why);
* so is one that leaves the origin above the workload's utilization limit at peak (default 80 %: the
  no-cache chapter's collapse starts at 100 %, and a plan at 100 % is not a plan) — and if every option does,
  all stay in the list with what would help;
* viable options rank by their monthly total — the service, its zone-crossing transfer, and the team's
  work (components written off over the horizon, a service to run) —, and a tie says why one ranks first;
  rejected options follow by the load they leave.

`table` turns the ordered list into the rows the summary and the command line show.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import pandas as pd

from experiments.params import PLAN_CEILING


@dataclass
class Assessment:
    """One option judged against a workload: hit rate, origin load at peak (a fraction of capacity), stale
    bound when all is well and in the worst failure measured, the components it needs built, the cache services
    it adds, whether cached data survives losing a node, the monthly cost of the service with its transfer (NaN
    when the price table cannot price it) and of the team's work, and the reasons it ranks where it does."""

    option: str
    hit_rate: float
    origin_load: float
    stale_bound_s: float
    builds: list[str] = field(default_factory=list)
    survives_node_loss: bool = True
    rejected_because: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    usd_per_month: float = 0.0
    stale_worst_s: float = 0.0
    services: int = 0
    team_usd_per_month: float = 0.0

    @property
    def total_usd_per_month(self) -> float:
        """The service, its transfer and the team's work for a month (NaN if the service has no price)."""
        return self.usd_per_month + self.team_usd_per_month


SHARED_CACHE_ENTRIES = 5_000_000
"""A shared cluster's capacity in entries for the hit-rate model (sized to hold what it is asked to)."""


def _total(a: Assessment) -> float:
    """The monthly total to the dollar; an option the price table cannot price sorts last."""
    total = a.total_usd_per_month
    return math.inf if math.isnan(total) else round(total)


def _tie_break(a: Assessment, b: Assessment) -> str:
    """Why ``a`` ranks above ``b`` when their monthly totals are the same to the dollar."""
    if len(a.builds) != len(b.builds):
        return f"it needs {len(a.builds)} component(s) built against {len(b.builds)}"
    if a.survives_node_loss != b.survives_node_loss:
        return "a failed node keeps its keys (a promoted replica), where the other's replacement starts empty"
    if round(a.origin_load, 3) != round(b.origin_load, 3):
        return "it leaves the origin less load at peak"
    return "of the order the options are listed in"


def order(options: list[Assessment], *, live: bool = False,
          max_utilization: float = PLAN_CEILING) -> list[Assessment]:
    """The options best first. Options that cannot meet the staleness limit, or cannot run at all, are
    rejected; so are those that leave the origin above ``max_utilization`` of its capacity at peak — and if
    every candidate does, each says what would help (``live``: some reads are never cached, so the live path is
    named first). Viable options rank by their monthly total (`Assessment.total_usd_per_month`); ties say why."""
    candidates = [a for a in options if not a.rejected_because]
    for a in candidates:
        if a.origin_load > max_utilization:
            a.rejected_because.append(f"leaves the origin at {100 * a.origin_load:.0f} % of its capacity at peak, "
                                      f"above the {100 * max_utilization:.0f} % a plan may use")
    if candidates and all(a.rejected_because for a in candidates):
        help_ = ("serve the live reads from a path that scales, " if live else "") + (
            "shed what cannot be answered in time, or add origin capacity")
        for a in candidates:
            a.reasons.append(f"no option keeps the origin within its limit at this peak: {help_}")
    viable = sorted((a for a in options if not a.rejected_because),
                    key=lambda a: (_total(a), len(a.builds), not a.survives_node_loss, a.origin_load))
    for first, second in itertools.pairwise(viable):
        if _total(first) == _total(second):
            first.reasons.append(f"costs the same as {second.option} to the dollar a month; ranked first because "
                                 f"{_tie_break(first, second)}")
    rejected = sorted((a for a in options if a.rejected_because),
                      key=lambda a: (len(a.rejected_because), math.inf if math.isnan(a.origin_load) else a.origin_load,
                                     _total(a)))
    return viable + rejected


def table(ordered: list[Assessment]) -> pd.DataFrame:
    """The ordered options as rows: rank, verdict (the first viable one "recommended"), numbers (the components
    to build as a count), whether a node's loss keeps its keys, reasons."""
    rows = []
    for position, a in enumerate(ordered, start=1):
        reasons = a.reasons + [f"needs {b}" for b in a.builds] + a.rejected_because
        rows.append({"rank": position, "option": a.option, "verdict": "rejected" if a.rejected_because else "viable",
                     "hit_pct": 100 * a.hit_rate, "origin_load_pct": 100 * a.origin_load,
                     "stale_bound_s": a.stale_bound_s, "stale_worst_s": a.stale_worst_s,
                     "usd_per_month": a.usd_per_month, "team_usd_per_month": a.team_usd_per_month,
                     "total_usd_per_month": a.total_usd_per_month, "builds": len(a.builds),
                     "survives_node_loss": a.survives_node_loss, "reasons": "; ".join(reasons)})
    frame = pd.DataFrame(rows)
    if len(frame) and frame.verdict.iloc[0] == "viable":
        frame.loc[0, "verdict"] = "recommended"
    return frame
