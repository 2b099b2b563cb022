"""Q3 of the no-cache section: a rule, as code, for what is safe to cache and for how long.

"Safe" is a budget on the expected cost of stale reads. A family of keys that changes ``m`` times a
day and is read ``r`` times a second serves, after each change, about r·τ/2 stale reads on average
when entries live τ seconds (a change lands at a uniform point of an entry's life), or r·ε when an
event removes the entry ε seconds after the change. Each stale read costs ``c``. So the expected
loss is m·r·c·τ/2 per day with TTL only, and a budget B per day allows τ ≤ 2B/(m·r·c). The rule:

* a family whose staleness is a legal or financial harm (prices, order status) is never cached;
* otherwise cache with the largest TTL the budget allows (capped at a day) if that TTL is useful
  (≥ ``min_useful_ttl_s``);
* otherwise cache only with event-driven invalidation, if the event path's latency fits the budget;
* otherwise do not cache.

Inputs are per family in ``data/staleness.csv`` — the seed's facts where it has them, labelled
assumptions elsewhere — so the table is a worked example of the rule, not a measurement.
"""

from __future__ import annotations

import pandas as pd

from experiments.errors import ParameterError
from experiments.paths import DATA

DAY_S = 86_400.0


def decide(*, changes_per_day: float, reads_per_s: float, stale_cost_usd: float, legal_or_financial: bool,
           budget_usd_per_day: float, event_latency_s: float = 0.001, min_useful_ttl_s: float = 1.0) -> dict:
    """Whether a key family may be cached, with which TTL, and the expected stale-read cost per day."""
    for name, value in (("changes_per_day", changes_per_day), ("reads_per_s", reads_per_s),
                        ("stale_cost_usd", stale_cost_usd), ("budget_usd_per_day", budget_usd_per_day)):
        if value < 0:
            raise ParameterError(f"{name}={value} must not be negative")
    if legal_or_financial:
        return {"decision": "never cache", "ttl_s": 0.0, "loss_usd_per_day": 0.0,
                "reason": "stale values are a legal or financial harm"}
    per_second_of_ttl = changes_per_day * reads_per_s * stale_cost_usd / 2  # loss/day per second of TTL
    max_ttl = DAY_S if per_second_of_ttl == 0 else min(DAY_S, budget_usd_per_day / per_second_of_ttl)
    if max_ttl >= min_useful_ttl_s:
        return {"decision": "cache with TTL", "ttl_s": max_ttl, "loss_usd_per_day": per_second_of_ttl * max_ttl,
                "reason": "expected stale-read cost within budget"}
    event_loss = changes_per_day * reads_per_s * stale_cost_usd * event_latency_s
    if event_loss <= budget_usd_per_day:
        return {"decision": "cache with event invalidation", "ttl_s": min_useful_ttl_s, "loss_usd_per_day": event_loss,
                "reason": "only an event path is fast enough"}
    return {"decision": "do not cache", "ttl_s": 0.0, "loss_usd_per_day": event_loss,
            "reason": "even event-driven invalidation costs more than the budget"}


def apply(budget_usd_per_day: float, *, families: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rule applied to every key family of ``data/staleness.csv`` (or the given table)."""
    table = pd.read_csv(DATA / "staleness.csv") if families is None else families
    rows = [{"family": row.family, "what": row.what,
             **decide(changes_per_day=row.changes_per_day, reads_per_s=row.reads_per_s,
                      stale_cost_usd=row.stale_cost_usd, legal_or_financial=bool(row.legal_or_financial),
                      budget_usd_per_day=budget_usd_per_day)}
            for row in table.itertuples()]
    return pd.DataFrame(rows)
