"""The decision as a page: ``index.html`` beside ``decision.json``, with the chosen deployment, the ranking,
each option's reasons, and four charts — origin load, hit rate per family, the monthly total in its parts,
and where the answer changes — drawn by Vega from a copy of the bundle next to the page, so it opens offline
like the book."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pandas as pd

from experiments import charts
from experiments.paths import BUILD

BUNDLE = "vega-bundle.js"


FLIP_CAP = 64.0
"""The farthest an input is scaled (`experiments.decide.edge.FACTORS`): a bar this long holds the answer."""


def chart_specs(result: dict) -> list[tuple[str, dict]]:
    """(caption, Vega-Lite spec) for each chart of the page."""
    ranking = result["ranking"]
    limit = result["max_origin_utilization"]
    load = pd.DataFrame([{"option": r["option"], "share": min(r["numbers"]["origin_load"], 1.5), "load": "at peak"}
                         for r in ranking])
    families = pd.DataFrame([{"option": r["option"], "family": name, "hit_rate": f["hit_rate"]}
                             for r in ranking for name, f in r["numbers"]["families"].items()])
    parts = pd.DataFrame([{"option": r["option"], "usd_per_month": r["numbers"][f"{part}_usd_per_month"] or 0.0,
                           "part": part} for r in ranking if r["numbers"]["usd_per_month"] is not None
                          for part in ("service", "transfer", "team")])
    flips = pd.DataFrame([{"input": f["input"].replace("_", " "), "direction": f["direction"],
                           "factor": FLIP_CAP if f["factor"] is None else (f["factor"] if f["direction"] == "up"
                                                                         else 1 / f["factor"]),
                           "then": f["text"]} for f in result["flips"]]
                         or [{"input": "none", "direction": "up", "factor": 0.0, "then": ""}])
    return [
        (f"Origin load at peak, as a share of the origin's capacity (capped at 150 %), best option first; a plan "
         f"may use {100 * limit:.0f} %.",
         charts.grouped_bars(load, x="share", y="option", color="load", title="Origin load at peak",
                             x_title="share of the origin's capacity", x_format="%").to_dict()),
        ("Hit rate per key family under each option (0 where the option reads the family live).",
         charts.grouped_bars(families, x="hit_rate", y="family", color="option", title="Hit rate per family",
                             x_title="hit rate", x_format="%").to_dict()),
        ("The monthly total in its parts: the service (nodes or Serverless, on demand), zone-crossing transfer, and "
         "the team's work (components written off over the horizon, services run), for options with a price.",
         charts.grouped_bars(parts, x="usd_per_month", y="option", color="part", title="Monthly total",
                             x_title="USD per month").to_dict()),
        (f"What would change the answer: how far each input must move, up or down (as a factor of today's value), "
         f"before the first place changes; a bar at {FLIP_CAP:g} means it holds over the whole range.",
         charts.grouped_bars(flips, x="factor", y="input", color="direction", title="Where the answer changes",
                             x_title="factor of today's value").to_dict()),
    ]


def _deployment(result: dict) -> str:
    d = result.get("deployment")
    if not d:
        return "<p>No option is viable for this workload, or the first one deploys with the application.</p>"
    fields = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in d.items()
                     if k != "cli")
    return f"<table>{fields}</table><pre>{html.escape(d['cli'])}</pre>"


def _row(position: int, r: dict) -> str:
    n = r["numbers"]
    cost = "—" if n["usd_per_month"] is None else f"${n['usd_per_month']:,.0f}"
    breaks = n.get("breaks_at_peak_multiple")
    edge = "never" if breaks is None else f"{breaks:,.2f}×"
    return (f"<tr class='{html.escape(r['verdict'])}'><td>{position}</td><td>{html.escape(r['option'])}</td>"
            f"<td>{html.escape(r['verdict'])}</td><td>{100 * n['hit_rate']:.1f} %</td>"
            f"<td>{100 * n['origin_load']:.0f} %</td><td>{edge}</td><td>{cost}</td>"
            f"<td>{html.escape('; '.join(r['reasons']))}</td></tr>")


def write(result: dict, folder: Path) -> Path:
    """Write ``index.html`` and the Vega bundle into ``folder``; returns the page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(charts.vega_bundle(BUILD / "vendor"), folder / BUNDLE)
    rows = "".join(_row(i, r) for i, r in enumerate(result["ranking"], start=1))
    figures = []
    for i, (caption, spec) in enumerate(chart_specs(result)):
        payload = json.dumps(spec, sort_keys=True).replace("</", "<\\/")
        figures.append(
            f"<figure><div id='chart-{i}' class='cachebook-chart'></div>"
            f"<script type='application/json' id='chart-{i}-spec'>{payload}</script>"
            f"<script>vegaEmbed('#chart-{i}', JSON.parse(document.getElementById('chart-{i}-spec').textContent),"
            f" {{actions: false}});</script><figcaption>{html.escape(caption)}</figcaption></figure>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Decision: {html.escape(result['workload'])}</title>
<script src="{BUNDLE}"></script>
<style>body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }}
tr.viable {{ background: #e3f1e6; }} tr.rejected {{ background: #f8dcdc; }}
figure {{ margin: 2em 0; }}</style></head>
<body><h1>Which cache for {html.escape(result['workload'])}?</h1>
<p>Options ranked by the Response Cache Decision Book's models (<code>python -m experiments.decide</code>):
viable options first, by their monthly total (service, zone-crossing transfer, the team's work); rejected
options after them, each with its reasons. "Breaks at" is the multiple of normal traffic at which the origin
passes the {100 * result['max_origin_utilization']:.0f} % a plan may use. The numbers are in
<a href="decision.json">decision.json</a>.</p>
<h2>The first option's deployment</h2>{_deployment(result)}
<h2>The ranking</h2>
<table><tr><th>#</th><th>option</th><th>verdict</th><th>hit rate</th><th>origin load at peak</th>
<th>breaks at</th><th>total per month</th><th>reasons</th></tr>{rows}</table>
{''.join(figures)}
</body></html>
"""
    path = folder / "index.html"
    path.write_text(page)
    return path
