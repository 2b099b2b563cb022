"""Timing findings hold only three spreads beyond their thresholds; a chapter's end prints, raises, or — when
the runner renders the book — shows a failed finding as a box and records it for the runner's last lines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import findings
from experiments.bookkit.aftermath import Outcome
from experiments.measure import chunk_stats, spread_between_rounds


def test_a_timing_holds_only_three_spreads_clear_of_its_threshold():
    assert findings.timing(0.2, below=2.0, spread=0.5)  # 1.8 ≥ 1.5
    assert not findings.timing(0.2, below=2.0, spread=0.7)  # 1.8 < 2.1: the noise could flip it
    assert not findings.timing(2.5, below=2.0, spread=0.0)  # the wrong side
    assert findings.timing(45.0, above=30, spread=4.0) and not findings.timing(45.0, above=30, spread=6.0)
    assert not findings.timing(float("nan"), below=1, spread=0.1)
    assert findings.timing(0.5, below=1, spread=0.0).spreads == float("inf")
    with pytest.raises(ValueError):
        findings.timing(1.0, below=2, above=0, spread=0.1)


def test_the_numbers_of_a_failed_timing_are_named():
    text = findings.timing(0.2, below=2.0, spread=0.7, unit="ms").describe()
    assert "measured 0.2 ms" in text and "threshold < 2 ms" in text and "margin 2.6 spreads" in text


def test_all_of_holds_when_every_part_does_and_names_the_failing_timing():
    both = findings.AllOf((True, findings.timing(1.0, below=10, spread=1.0)))
    assert both and findings.timings_of(both)
    broken = findings.AllOf((True, findings.timing(9.5, below=10, spread=1.0)))
    assert not broken and "measured 9.5" in broken.describe()
    assert not findings.AllOf((False, findings.timing(1.0, below=10, spread=1.0)))


def test_spread_between_rounds_is_the_range_for_few_rounds_and_the_iqr_from_five():
    assert spread_between_rounds([1.0, 3.0, 2.0]) == 2.0
    assert spread_between_rounds([1, 2, 3, 4, 100]) == pytest.approx(2.0)  # one stalled round moves nothing
    assert chunk_stats(np.arange(10), np.max, rounds=5) == [1, 3, 5, 7, 9]


def test_check_prints_every_finding_and_raises_on_a_failed_one(capsys, monkeypatch):
    monkeypatch.delenv(findings.RENDER_ENV, raising=False)
    findings.check("economics", {"a": True, "b": findings.timing(1, below=2, spread=0.1)})
    assert capsys.readouterr().out.splitlines() == ["a: True", "b: True"]
    with pytest.raises(AssertionError, match="did not hold"):
        findings.check("economics", {"a": False})


def test_when_the_book_renders_a_failed_finding_is_a_box_and_a_record(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(findings.RENDER_ENV, str(tmp_path))
    findings.check("economics", {"fast": findings.timing(3.0, below=2.0, spread=0.1, unit="ms"), "ok": True})
    out = capsys.readouterr().out
    assert "fast: False" in out and "ok: True" in out
    recorded = json.loads((tmp_path / "economics.json").read_text())
    assert list(recorded) == ["fast"] and "measured 3 ms" in recorded["fast"]
    box = findings._box("economics", recorded)
    assert 'class="admonition error"' in box and "did not hold on this machine" in box


def test_the_runner_ends_with_one_line_per_failure():
    from pathlib import Path

    outcome = Outcome(crashed={Path("book/dax.ipynb"): "book/dax.ipynb failed in cell 3: KeyError: 'x'"},
                      failed_findings={"economics": {"fast": "measured 3 ms", "audit": ""}})
    assert outcome.lines() == ["book/dax.ipynb failed in cell 3: KeyError: 'x'",
                               "economics: a finding did not hold on this machine: fast (measured 3 ms)",
                               "economics: a finding did not hold on this machine: audit"]
