"""Charts of the book: one Altair theme, and an output that works both in JupyterLab and offline HTML.

Altair 6 writes Vega-Lite 6 specifications, and its default output is HTML that loads Vega from a
CDN, which renders nothing offline. JupyterLab 4 renders ``application/vnd.vegalite.v5+json`` with
the Vega-Lite it bundles, so the ``cachebook`` renderer emits the spec under that mime type (the
book's charts use only marks and encodings that Vega-Lite 5 compiles, which a test checks). In the
HTML book, `experiments.bookkit.mystnb_plugin` turns that output into a ``vegaEmbed`` call served from the
book's own static files. Importing this module enables both the theme and the renderer.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd

MIME = "application/vnd.vegalite.v5+json"
WIDTH, HEIGHT = 400, 280
PALETTE = ["#1f5f8b", "#e07a1f", "#3a9a5b", "#b8413f", "#7a5ba6", "#8c8c8c"]


@alt.theme.register("cachebook", enable=True)
def _theme() -> alt.theme.ThemeConfig:
    return {
        "config": {
            "view": {"continuousWidth": WIDTH, "continuousHeight": HEIGHT, "stroke": None},
            "font": "sans-serif",
            "axis": {"labelFontSize": 12, "titleFontSize": 13, "grid": True, "gridOpacity": 0.4},
            "legend": {"labelFontSize": 12, "titleFontSize": 13, "orient": "right", "labelLimit": 320},
            "title": {"fontSize": 15, "anchor": "start"},
            "range": {"category": PALETTE},
        }
    }


def _renderer(spec: dict, **_metadata) -> dict:
    title = spec.get("title")
    title = title.get("text") if isinstance(title, dict) else title
    return {MIME: spec, "text/plain": f"<chart: {title or 'untitled'}>"}


alt.renderers.register("cachebook", _renderer)
alt.renderers.enable("cachebook")


def log_dots(frame: pd.DataFrame, *, x: str, y: str, color: str, shape: str, title: str,
             x_title: str, y_title: str, dodge: bool = False) -> alt.Chart:
    """A dot plot on a log axis: one row per ``y``, colour per ``color``, marker per ``shape``.

    Dots rather than bars, because a bar on a log scale has no zero to start from, and the book's
    latencies and counts span decades (µs in process to seconds; one origin call to hundreds).
    ``dodge`` sets each ``color`` value on its own line within a row, so equal values stay visible.
    """
    return (
        alt.Chart(frame, title=title)
        .mark_point(filled=True, size=90, opacity=0.85)
        .encode(
            x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(type="log")),
            y=alt.Y(f"{y}:N", title=y_title),
            color=alt.Color(f"{color}:N", title=color.replace("_", " ")),
            shape=alt.Shape(f"{shape}:N", title=shape.replace("_", " ")),
            tooltip=list(frame.columns),
            **({"yOffset": alt.YOffset(f"{color}:N")} if dodge else {}),
        )
        .properties(height=alt.Step(14, **{"for": "offset"}) if dodge else alt.Step(40), width=WIDTH - 60)
    )


def _x(x: str, title: str, *, log: bool = False, fmt: str | None = None, values: list | None = None) -> alt.X:
    axis = {"format": fmt} if fmt else {}
    if values is not None:
        axis["values"] = values
    return alt.X(f"{x}:Q", title=title, axis=alt.Axis(**axis),
                 scale=alt.Scale(type="log", nice=False) if log else alt.Scale())


def lines(frame: pd.DataFrame, *, x: str, y: str, color: str, title: str, x_title: str,
          y_title: str, y_scale: str = "linear", log_x: bool = False, x_format: str | None = None,
          points: bool = True, x_values: list | None = None, color_order: list | None = None) -> alt.Chart:
    """Lines of ``y`` against ``x``, one per ``color`` value (legend in ``color_order``), with a hover tooltip.

    ``y_scale="symlog"`` shows counts that span decades and include zeros (a log scale cannot).
    """
    return (
        alt.Chart(frame, title=title)
        .mark_line(point=points)
        .encode(
            x=_x(x, x_title, log=log_x, fmt=x_format, values=x_values),
            y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(type=y_scale)),
            color=alt.Color(f"{color}:N", title=color.replace("_", " "), sort=color_order),
            tooltip=list(frame.columns),
        )
    )


def model_and_simulation(frame: pd.DataFrame, *, x: str, model: str, simulated: str, color: str, title: str,
                         x_title: str, y_title: str, log_x: bool = False, x_values: list | None = None,
                         color_order: list | None = None, y_scale: str = "linear") -> alt.LayerChart:
    """A model as lines and its simulation as open circles on top, one colour per ``color`` value.

    Where the two agree the circles sit on the line, which a pair of overlapping lines would hide;
    say "lines: model, circles: simulation" in the title or caption.
    """
    base = alt.Chart(frame).encode(
        x=_x(x, x_title, log=log_x, values=x_values),
        color=alt.Color(f"{color}:N", title=color.replace("_", " "), sort=color_order),
        tooltip=list(frame.columns))
    return alt.layer(base.mark_line().encode(y=alt.Y(f"{model}:Q", title=y_title, scale=alt.Scale(type=y_scale))),
                     base.mark_point(size=90, filled=False, strokeWidth=2).encode(y=alt.Y(f"{simulated}:Q")),
                     title=title)


def share_bars(frame: pd.DataFrame, *, x: str, y: str, title: str, x_title: str) -> alt.Chart:
    """Horizontal bars of a share (0–1) per category, labelled as percentages."""
    return (
        alt.Chart(frame, title=title)
        .mark_bar()
        .encode(x=alt.X(f"{x}:Q", title=x_title, axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
                y=alt.Y(f"{y}:N", title="", sort=None, axis=alt.Axis(labelLimit=320)),
                tooltip=list(frame.columns))
        .properties(height=alt.Step(36))
    )


def grouped_bars(frame: pd.DataFrame, *, x: str, y: str, color: str, title: str, x_title: str,
                 x_format: str | None = None, color_order: list | None = None) -> alt.Chart:
    """Horizontal bars of ``x`` per ``y`` category, one bar per ``color`` value side by side."""
    return (
        alt.Chart(frame, title=title)
        .mark_bar()
        .encode(x=alt.X(f"{x}:Q", title=x_title, axis=alt.Axis(format=x_format) if x_format else alt.Axis()),
                y=alt.Y(f"{y}:N", title="", sort=None, axis=alt.Axis(labelLimit=320)),
                yOffset=alt.YOffset(f"{color}:N", sort=color_order),
                color=alt.Color(f"{color}:N", title=color.replace("_", " "), sort=color_order),
                tooltip=list(frame.columns))
        .properties(height=alt.Step(14))
    )


def vega_bundle(folder: Path) -> Path:
    """Vega + Vega-Lite + vega-embed as one file in ``folder``, from vl-convert (no CDN, no network); cached.

    The bundle is a classic script whose top-level names (``_`` among them) would collide with a page's
    globals, so it is wrapped in a function; it publishes ``window.vegaEmbed`` itself.
    """
    import vl_convert

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"vega-bundle-{vl_convert.__version__}.js"
    if not path.exists():
        path.write_text("(function () {\n" + vl_convert.javascript_bundle() + "\n})();\n")
    return path


def dots_over_time(frame: pd.DataFrame, *, x: str, y: str, color: str, title: str, x_title: str, y_title: str,
                   facet: str | None = None, log_y: bool = True) -> alt.Chart:
    """Each event as a dot at its time, one colour per ``color`` value, optionally one panel per ``facet``
    value (stacked): for latencies of single calls, where a line would join calls that have nothing to do
    with each other."""
    chart = (
        alt.Chart(frame, title="" if facet else title)
        .mark_point(filled=True, size=30, opacity=0.7)
        .encode(x=alt.X(f"{x}:Q", title=x_title),
                y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(type="log") if log_y else alt.Scale()),
                color=alt.Color(f"{color}:N", title=color.replace("_", " ")),
                tooltip=list(frame.columns))
        .properties(width=WIDTH - 60, height=140)
    )
    return chart.facet(row=alt.Row(f"{facet}:N", title=""), title=title) if facet else chart
