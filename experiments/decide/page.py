"""The decision as a page: ``index.html`` beside ``decision.json``, with the ranking, each option's reasons
and three charts — origin load, hit rate per family, cost — drawn by Vega from a copy of the bundle next to
the page, so it opens offline like the book."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pandas as pd

from experiments import charts
from experiments.paths import BUILD

BUNDLE = "vega-bundle.js"


def chart_specs(result: dict) -> list[tuple[str, dict]]:
    """(caption, Vega-Lite spec) for each chart of the page."""
    ranking = result["ranking"]
    load = pd.DataFrame([{"option": r["option"], "share": min(r["numbers"]["origin_load"], 1.5), "load": "at peak"}
                         for r in ranking])
    families = pd.DataFrame([{"option": r["option"], "family": name, "hit_rate": f["hit_rate"]}
                             for r in ranking for name, f in r["numbers"]["families"].items()])
    cost = pd.DataFrame([{"option": r["option"], "usd_per_month": r["numbers"]["usd_per_month"]}
                         for r in ranking if r["numbers"]["usd_per_month"] is not None])
    return [
        ("Origin load at peak, as a share of the origin's capacity (capped at 150 %), best option first.",
         charts.grouped_bars(load, x="share", y="option", color="load", title="Origin load at peak",
                             x_title="share of the origin's capacity", x_format="%").to_dict()),
        ("Hit rate per key family under each option (0 where the option reads the family live).",
         charts.grouped_bars(families, x="hit_rate", y="family", color="option", title="Hit rate per family",
                             x_title="hit rate", x_format="%").to_dict()),
        ("Cost per month on demand, from the dated price table (options without a price are left out).",
         charts.grouped_bars(cost.assign(cost="on demand"), x="usd_per_month", y="option", color="cost",
                             title="Cost per month", x_title="USD per month").to_dict()),
    ]


def _row(position: int, r: dict) -> str:
    n = r["numbers"]
    cost = "—" if n["usd_per_month"] is None else f"${n['usd_per_month']:,.0f}"
    return (f"<tr class='{html.escape(r['verdict'])}'><td>{position}</td><td>{html.escape(r['option'])}</td>"
            f"<td>{html.escape(r['verdict'])}</td><td>{100 * n['hit_rate']:.1f} %</td>"
            f"<td>{100 * n['origin_load']:.0f} %</td><td>{cost}</td><td>{html.escape('; '.join(r['reasons']))}</td></tr>")


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
viable options first, by what they ask of the team and then by cost; rejected options after them, each with
its reasons. The numbers are in <a href="decision.json">decision.json</a>.</p>
<table><tr><th>#</th><th>option</th><th>verdict</th><th>hit rate</th><th>origin load at peak</th>
<th>cost per month</th><th>reasons</th></tr>{rows}</table>
{''.join(figures)}
</body></html>
"""
    path = folder / "index.html"
    path.write_text(page)
    return path
