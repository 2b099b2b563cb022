"""What-if charts: the book's models precomputed over a grid, explored with a slider in the static HTML.

Each chart is one Vega-Lite specification holding every precomputed point; a slider (a Vega-Lite
parameter bound to a range input) filters the points shown, so moving it needs no kernel and no
network — the vendored Vega bundle does the work in the browser. The grids are small enough to
compute in a few seconds:

* `per_task_hit_rates` — cluster-wide hit rate of per-task caches against the task count, one TTL
  per slider position (`experiments.models.taskcache`, the in-process chapter's model);
* `stampede_calls` — origin calls per expiry against the callers, one task count per slider position
  (`experiments.models.herd.expected_origin_calls`, checked on real Redis in the read-through chapter);
* `launch_answers` — share of a launch answered in time against the cache hit rate, with every read
  cacheable and with the launch's price and stock reads live, one traffic multiple per slider position
  (`experiments.models.flashsale.fluid`, checked by simulation in the no-cache
  chapter);
* `dax_hit_rates` — DAX hit rate against the number of projections, one item size per slider
  position (`experiments.models.daxmodel`, checked by simulation in the DAX chapter).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from experiments import charts
from experiments.errors import ParameterError
from experiments.models import daxmodel, flashsale, herd, taskcache
from experiments.seed import figure, product_reads_per_s, service_default


def _slider_chart(frame: pd.DataFrame, *, slider: str, label: str, values: list, x: alt.X, y: alt.Y,
                  color: str | None, title: str, color_order: list | None = None) -> alt.Chart:
    """Lines of the rows whose ``slider`` column equals the slider's value (which starts at ``values[0]``)."""
    steps = np.diff(values)
    if not np.allclose(steps, steps[0]):
        raise ValueError(f"slider values for {slider} must be evenly spaced: {values}")
    param = alt.param(name=slider, value=values[0],
                      bind=alt.binding_range(min=values[0], max=values[-1], step=float(steps[0]), name=label))
    encoding = {"x": x, "y": y, "tooltip": list(frame.columns)}  # the book's theme and renderer: `charts`
    if color:
        encoding["color"] = alt.Color(f"{color}:N", title=color.replace("_", " "), sort=color_order)
    return (alt.Chart(frame, title=title, width=charts.WIDTH, height=charts.HEIGHT).mark_line(point=True)
            .encode(**encoding)
            .add_params(param).transform_filter(f"datum.{slider} == {slider}"))


def per_task_hit_rates(*, tasks: list[int], ttls_s: list[int], alpha: float, maxsize: int = 5000) -> pd.DataFrame:
    """The cluster-wide hit rate of ``tasks`` caches of ``maxsize`` entries, for each TTL, over product
    reads with Zipf exponent ``alpha`` (the summary passes the in-process chapter's calibrated one)."""
    traffic = taskcache.TaskTraffic(alpha=alpha, reads_per_s=product_reads_per_s())
    rows = [{"ttl_s": ttl, "tasks": n,
             "hit_pct": 100 * taskcache.predict(traffic, tasks=n, maxsize=maxsize, ttl_s=ttl)["hit_rate"]}
            for ttl in ttls_s for n in tasks]
    return pd.DataFrame(rows)


def per_task_chart(frame: pd.DataFrame) -> alt.Chart:
    """`per_task_hit_rates` against the task count (log scale), one TTL per slider position."""
    ttls = sorted(frame.ttl_s.unique().tolist())
    return _slider_chart(frame, slider="ttl_s", label="TTL (s) ", values=ttls,
                         x=alt.X("tasks:Q", title="orchestrator tasks, each with its own cache (log scale)",
                                 scale=alt.Scale(type="log")),
                         y=alt.Y("hit_pct:Q", title="cluster-wide hit rate (%)", scale=alt.Scale(domain=[0, 100])),
                         color=None, title="Per-task caches: hit rate against task count")


def stampede_calls(*, callers: list[int], tasks: list[int]) -> pd.DataFrame:
    """Origin calls per expiry of one hot key for every protection, callers and task count."""
    rows = [{"tasks": t, "callers": c, "protection": p,
             "origin_calls": herd.expected_origin_calls(p, callers=c, tasks=min(t, c))}
            for t in tasks for c in callers for p in list(herd.PROTECTIONS)]
    return pd.DataFrame(rows)


def stampede_chart(frame: pd.DataFrame) -> alt.Chart:
    """`stampede_calls`, one line per protection against the callers (log–log), one task count per
    slider position."""
    tasks = sorted(frame.tasks.unique().tolist())
    return _slider_chart(frame, slider="tasks", label="orchestrator tasks ", values=tasks,
                         x=alt.X("callers:Q", title="callers reading the key as it expires (log scale)",
                                 scale=alt.Scale(type="log")),
                         y=alt.Y("origin_calls:Q", title="origin calls per expiry (log scale)", scale=alt.Scale(type="log")),
                         color="protection", color_order=list(herd.PROTECTIONS),
                         title="Stampede: origin calls against callers")


CACHEABLE, LIVE = "every read cacheable", "price and stock read live"
"""The two launches the what-if draws: as if every read could be cached, and with the launch's own
questions (price, stock) read live, as the key design has them."""


def launch_answers(*, overloads: list[float], hit_rates: list[float], live_share: float) -> pd.DataFrame:
    """Share of a launch's requests answered within the timeout (fluid model) by traffic multiple and hit
    rate, with every read cacheable and with ``live_share`` of them read live."""
    rows = []
    for reads, live in ((CACHEABLE, 0.0), (LIVE, live_share)):
        for overload in overloads:
            for hit in hit_rates:
                launch = flashsale.Launch(overload=overload, hit_rate=hit, live_share=live)
                model = flashsale.fluid(launch)
                rate = launch.rate_at(model.t_s.to_numpy())
                offered = rate.sum()  # nothing reaches the catalog: every request is answered by the cache
                share = float((rate * model.answered_share).sum() / offered) if offered > 0 else 1.0
                rows.append({"reads": reads, "overload": overload, "hit_pct": 100 * hit, "answered_pct": 100 * share})
    return pd.DataFrame(rows)


def hit_rate_to_answer(frame: pd.DataFrame, *, overload: float, reads: str, answered_pct: float = 99.0) -> float | None:
    """The lowest hit rate of the grid at which the launch is answered in full (``answered_pct``), or None."""
    rows = frame[(frame.overload == overload) & (frame.reads == reads) & (frame.answered_pct >= answered_pct)]
    return float(rows.hit_pct.min()) if len(rows) else None


def launch_chart(frame: pd.DataFrame) -> alt.Chart:
    """`launch_answers`, one line per kind of launch against the hit rate, one traffic multiple per
    slider position."""
    overloads = sorted(frame.overload.unique().tolist())
    return _slider_chart(frame, slider="overload", label="launch traffic (x catalog capacity) ", values=overloads,
                         x=alt.X("hit_pct:Q", title="cache hit rate (%)"),
                         y=alt.Y("answered_pct:Q", title="launch requests answered in 2 s (%)",
                                 scale=alt.Scale(domain=[0, 100])),
                         color="reads", color_order=[CACHEABLE, LIVE],
                         title="A launch: requests answered against hit rate")


DYNAMODB_MAX_ITEM_KB = service_default("dynamodb_max_item_kb")
"""No DynamoDB item, so no DAX entry, is larger (``data/service_defaults.csv``)."""


def dax_hit_rates(*, item_kb: list[int], projections: list[int], alpha: float) -> pd.DataFrame:
    """DAX hit rate on a 13 GB node by item size (up to DynamoDB's item limit) and number of projections, for both
    keying readings, with Zipf exponent ``alpha`` (the summary passes the DAX chapter's calibrated one)."""
    if max(item_kb) > DYNAMODB_MAX_ITEM_KB:
        raise ParameterError(f"item_kb={max(item_kb)} is past DynamoDB's {DYNAMODB_MAX_ITEM_KB:.0f} KB item limit: "
                             "no DAX entry can be that large")
    node_bytes = figure("dax_node_gb") * daxmodel.GB
    rows = [{"item_kb": kb, "projections": p, "keyed_by": keyed,
             "hit_pct": 100 * daxmodel.predict(daxmodel.ProjectionWorkload(alpha=alpha, item_bytes=int(kb * daxmodel.KB),
                                                                            projections=p, keyed_by=keyed),
                                               capacity_bytes=node_bytes)["hit_rate"]}
            for kb in item_kb for p in projections for keyed in ("projection", "item")]
    return pd.DataFrame(rows)


def dax_projection_cost(frame: pd.DataFrame) -> dict[str, float]:
    """What projections cost DAX in `dax_hit_rates`: the hit rate with one and with the most projections (keyed
    by projection) at the smallest item size, and the most either moves across every item size DynamoDB allows
    (zero when the TTL, not the node's memory, sets the hit rate)."""
    keyed = frame[frame.keyed_by == "projection"]
    table = keyed.pivot_table(index="item_kb", columns="projections", values="hit_pct")
    return {"dax_one_projection_pct": float(table.iloc[0, 0]), "dax_most_projections_pct": float(table.iloc[0, -1]),
            "dax_most_projections": int(table.columns[-1]),
            "dax_size_effect_pp": float((table.max() - table.min()).max()),
            "dax_max_item_kb": float(table.index.max())}


def dax_chart(frame: pd.DataFrame) -> alt.Chart:
    """`dax_hit_rates`, one line per keying reading against the projections, one item size per slider
    position."""
    sizes = sorted(frame.item_kb.unique().tolist())
    return _slider_chart(frame, slider="item_kb", label="item size (KB) ", values=sizes,
                         x=alt.X("projections:Q", title="projections read per item"),
                         y=alt.Y("hit_pct:Q", title="hit rate (%)", scale=alt.Scale(domain=[0, 100])),
                         color="keyed_by", title="DAX on one 13 GB node: hit rate against projections")
