"""The committed notebooks are one run's: nbval's references and what a reader of the repository sees agree with
each other — the summary quotes each chapter's own glued numbers, and every notebook was executed by one refresh
(`make refresh`: papermill start times within a few hours, the summary last)."""

from __future__ import annotations

import ast
import json
import math
from datetime import datetime

import nbformat

from experiments.bookkit.runner import chapters
from experiments.paths import ROOT

ONE_RUN_H = 3.0
"""How far apart the committed notebooks' executions may start: one refresh takes minutes, not hours."""


def glued(notebook) -> dict:
    """The values a notebook glued (``myst_nb.glue``), by name, as Python values."""
    values = {}
    for cell in nbformat.read(ROOT / notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            text = output.get("data", {}).get("application/papermill.record/text/plain")
            if name and text is not None:
                try:
                    values[name] = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    values[name] = text
    return values


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
        except (TypeError, ValueError):
            return False
    return a == b


def test_the_summary_quotes_each_committed_chapter_s_own_numbers():
    quoted = json.loads(glued("book/summary.ipynb")["chapter_numbers"])
    by_chapter = {nb.stem: nb for nb in chapters()}
    differ = []
    for chapter, numbers in quoted.items():
        own = glued(by_chapter[chapter])
        differ += [f"{chapter}.{key}: summary {value!r}, chapter {own.get(key)!r}"
                   for key, value in numbers.items() if key in own and not same(value, own[key])]
        assert set(numbers) <= set(own), f"{chapter}: the summary quotes numbers its page never glued"
    assert not differ, f"the committed summary and chapters come from different runs: {differ[:5]}"


def test_every_committed_notebook_comes_from_one_refresh_with_the_summary_last():
    started = {}
    for notebook in chapters():
        meta = nbformat.read(ROOT / notebook, as_version=4).metadata.get("papermill", {})
        assert meta.get("start_time"), f"{notebook} was not executed by papermill"
        started[notebook.stem] = datetime.fromisoformat(meta["start_time"])
    span_h = (max(started.values()) - min(started.values())).total_seconds() / 3600
    assert span_h <= ONE_RUN_H, f"the committed notebooks were executed {span_h:.0f} h apart: run `make refresh`"
    others = [t for name, t in started.items() if name != "summary"]
    assert started["summary"] >= max(others), "the summary was executed before a chapter it quotes"
