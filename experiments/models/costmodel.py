"""Cost per revenue: what the cache costs against the revenue it protects, and how that depends on each input.

The seed divides a month of cache ($400) by one sale's revenue ($2M) and calls the result, 0.02 %,
the cost of protecting all of it. That is the cost of insurance against losing the *whole* sale; the
cache pays for itself as soon as it prevents the loss of 0.02 % of one sale a month. With an outage
probability p per sale (without a cache), an outage that loses a share ``lost_share`` of the sale's
revenue, and ``sales_per_month`` sales, the revenue protected per month is p · lost_share · revenue ·
sales, and the cache's cost per protected dollar is cost / protected. The inputs other than the
seed's two are assumptions; `sensitivity` shows how the answer moves with each.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import pandas as pd

from experiments.seed import figure


@dataclass(frozen=True)
class CostInputs:
    """The seed's two figures (cache cost per month, one sale's revenue, USD) and our assumptions;
    the assumptions default to 1, which gives the seed's own 0.02 %."""

    cache_cost_per_month: float = figure("cache_cost_per_month")
    sale_revenue: float = figure("sale_revenue")
    sales_per_month: float = 1.0
    outage_probability: float = 1.0
    lost_share: float = 1.0


def protected_per_month(inputs: CostInputs) -> float:
    """Expected revenue per month that a cache keeps from being lost (USD)."""
    return inputs.outage_probability * inputs.lost_share * inputs.sale_revenue * inputs.sales_per_month


def cost_ratio(inputs: CostInputs) -> float:
    """Cache cost per dollar of revenue protected (the seed's 0.02 % with its own inputs)."""
    return inputs.cache_cost_per_month / protected_per_month(inputs)


def break_even_lost_share(inputs: CostInputs) -> float:
    """The smallest share of one sale's revenue whose loss a month of cache is worth preventing."""
    return inputs.cache_cost_per_month / (inputs.outage_probability * inputs.sale_revenue * inputs.sales_per_month)


def sensitivity(base: CostInputs, *, factors: list[float]) -> pd.DataFrame:
    """The cost ratio when one input at a time is multiplied by each factor (shares capped at 1)."""
    rows = []
    for name, value in asdict(base).items():
        for factor in factors:
            changed = value * factor
            if name in ("outage_probability", "lost_share"):
                changed = min(changed, 1.0)
            rows.append({"input": name.replace("_", " "), "factor": factor,
                         "cost_per_protected_pct": 100 * cost_ratio(replace(base, **{name: changed}))})
    return pd.DataFrame(rows)


def break_even_outage_s(inputs: CostInputs, *, sale_hours: float) -> float:
    """Seconds of a sale's revenue, earned evenly over ``sale_hours``, that a month of cache costs."""
    return break_even_lost_share(inputs) * sale_hours * 3600
