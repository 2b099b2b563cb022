"""The HTML book, built strictly from the committed notebooks, opened page by page in Chromium.

Fails on any JavaScript error (other than the theme noise listed in ``browser.KNOWN_NOISE``), on a
chart that did not render, and on any request leaving the machine (a CDN). Screenshots of every
page are kept under ``_build/screenshots/`` for a human to look at.
"""

from __future__ import annotations

import browser
import pytest

from experiments.bookkit import runner as book
from experiments.paths import BUILD


@pytest.fixture(scope="module")
def reports():
    html = book.build(book.stage(book.ROOT, book.COMMITTED), BUILD / "committed-html")
    return browser.visit_all(html, BUILD / "screenshots")


def test_every_toc_page_was_visited(reports):
    visited = {r.path for r in reports}
    for chapter in book.chapters():
        assert chapter.with_suffix(".html").as_posix() in visited
    assert "book/index.html" in visited and "book/appendix/references.html" in visited


def test_no_javascript_errors(reports):
    assert {r.path: r.errors for r in reports if r.errors} == {}


def test_no_request_leaves_the_machine(reports):
    assert {r.path: r.external_requests for r in reports if r.external_requests} == {}


def test_every_chart_rendered(reports):
    economics = next(r for r in reports if r.path == "book/economics.html")
    assert economics.charts >= 2
    assert {r.path: (r.rendered, r.charts) for r in reports if r.rendered != r.charts} == {}


def test_every_what_if_chart_responds_to_its_slider(reports):
    changed = browser.slider_responses(BUILD / "committed-html", "book/summary.html")
    assert len(changed) == 4 and all(changed), changed
