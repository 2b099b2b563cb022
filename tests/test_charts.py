"""Charts render in JupyterLab (Vega-Lite 5 mime type) and in the HTML book (plugin, no network)."""

from __future__ import annotations

import json

import pandas as pd
import vl_convert

from experiments import charts
from experiments.bookkit.mystnb_plugin import VegaLitePlugin
from experiments.models.hitcost import expected_curve


def sample_chart():
    aside = pd.DataFrame([{"family": "product", "hit_p50_ms": 0.2, "seed_origin_ms": 120,
                           "miss_overhead_p50_ms": 0.3}])
    return charts.lines(expected_curve(aside), x="hit_rate", y="mean_latency_ms", color="family",
                        title="t", x_title="hit rate", y_title="ms")


def bars_chart():
    frame = pd.DataFrame({"latency_us": [1.0, 100.0], "value": ["a", "a"], "series": ["x", "y"]})
    return charts.log_dots(frame, x="latency_us", y="value", color="series", shape="series", title="t",
                               x_title="µs", y_title="")


def layered_chart():
    frame = pd.DataFrame({"gb": [0.01, 1.0], "model": [0.5, 0.8], "sim": [0.51, 0.79], "p": ["1", "1"]})
    return charts.model_and_simulation(frame, x="gb", model="model", simulated="sim", color="p", title="t",
                                       x_title="GB", y_title="hit", log_x=True)


def grouped_chart():
    frame = pd.DataFrame({"ratio": [1.1, 1.2], "layout": ["a", "a"], "engine": ["redis", "valkey"]})
    return charts.grouped_bars(frame, x="ratio", y="layout", color="engine", title="t", x_title="x")


def test_renderer_emits_the_mime_type_jupyterlab_renders():
    bundle = sample_chart()._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    assert set(bundle) == {charts.MIME, "text/plain"}
    assert bundle["text/plain"] == "<chart: t>"


def test_book_charts_compile_with_the_vega_lite_jupyterlab_bundles():
    for chart in (sample_chart(), bars_chart(), layered_chart(), grouped_chart()):
        vega = vl_convert.vegalite_to_vega(chart.to_dict(), vl_version="5.20")
        assert vega["marks"], "Vega-Lite 5 compiled the chart to nothing"


def test_plugin_embeds_the_spec_with_a_deterministic_id():
    class Data:
        mime_type = charts.MIME
        content = sample_chart().to_dict()
        cell_index, output_index = 3, 0

    nodes = VegaLitePlugin.handle_mime(None, Data(), inline=False)
    html = nodes[0].astext()
    assert 'id="cachebook-chart-3-0"' in html and "vegaEmbed('#cachebook-chart-3-0'" in html
    spec = json.loads(html.split('-spec">', 1)[1].split("</script>", 1)[0])
    assert spec["$schema"].endswith("vega-lite/v6.json")
    assert "cdn" not in html.lower()


def test_plugin_ignores_other_mime_types():
    class Data:
        mime_type = "text/html"
        content = "<p>x</p>"
        cell_index = output_index = 0

    assert VegaLitePlugin.handle_mime(None, Data(), inline=False) is None


def test_every_chart_in_the_book_is_a_named_figure_with_a_caption():
    import nbformat

    from experiments.paths import ROOT

    bare = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, 4).cells):
            has_chart = any(charts.MIME in o.get("data", {}) for o in cell.get("outputs", []))
            figure = cell.metadata.get("mystnb", {}).get("figure", {})
            if has_chart and not (figure.get("caption") and figure.get("name")):
                bare.append(f"{path.name} cell {index}")
    assert not bare, f"charts without a figure name and caption: {bare}"
