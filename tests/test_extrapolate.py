"""Carrying a recovery time from short detection settings to the documented default."""

from __future__ import annotations

import pytest

from experiments.errors import ParameterError
from experiments.models.extrapolate import after_detection, line_at


def test_a_line_through_the_runs():
    line = line_at([1, 2, 3], [2.5, 4.5, 6.5], 15)
    assert line["slope"] == pytest.approx(2) and line["overhead_s"] == pytest.approx(0.5)
    assert line["value_s"] == pytest.approx(30.5)
    assert line_at([1, 1], [3, 3.5], 30) == {"slope": 1.0, "overhead_s": 2.25, "value_s": 32.25}


def test_detection_plus_the_median_overhead_ignores_a_noisy_slope():
    fit = after_detection([1, 2, 1], [3.3, 4.0, 3.1], 30)
    assert fit["overhead_s"] == pytest.approx(2.1) and fit["value_s"] == pytest.approx(32.1)
    assert fit["slope"] < 1  # the free line through the same runs would put 30 s at about 27 s


def test_bad_pairs_are_one_line():
    with pytest.raises(ParameterError, match="one measurement per setting"):
        line_at([1, 2], [3], 10)
    with pytest.raises(ParameterError, match="one measurement per setting"):
        after_detection([], [], 10)
