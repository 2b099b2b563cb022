"""A chapter's findings: statements that must hold, timing findings with their measured margin, and the check
that ends every chapter.

A chapter's ``findings(results)`` returns ``{statement: value}``. A value is a plain ``bool`` for a fact that
does not move with the machine (a count, a verdict, a model's output), or a `Timing` for a comparison of a
timing or throughput with a threshold. A `Timing` declares the measured value, the threshold and the spread
the chapter measured between its own rounds, and holds only when the measurement is beyond the threshold by
at least `MARGIN` times that spread: a finding the noise between rounds could flip is not a finding (the
chapter reports such a number instead of asserting it).

`check` ends every chapter: it prints each statement with whether it holds (nbval compares those lines) and
raises if one does not — except when the book runner renders the book (`RENDER_ENV`): then a failed finding
becomes a visible box on the chapter's page (the statement, the number measured, the threshold, "did not hold
on this machine"), the chapter runs on, and the failure is written to the runner's folder so that the
command exits non-zero at the end with one line per failed finding.
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

MARGIN = 3.0
"""A timing finding holds only this many times the between-round spread beyond its threshold."""

EVENT_P99_BOUND_MS = 50.0
"""Ours: the p99 within which an event-driven invalidation must reach its key (the Redis, Memcached and Valkey
chapters hold every engine and transport to the same bound). Loopback measures under 1 ms; a scheduler's time
slice on a busy machine adds a few ms to a share of the events near 1 %, which moves a p99 between rounds by as
much, so a bound of a few ms would decide nothing; 50 ms is still three orders of magnitude under the shortest
TTL the key design invalidates by event."""

RENDER_ENV = "CACHEBOOK_FAILED_FINDINGS"
"""Set by the book runner to a folder: failed findings are rendered and recorded there instead of raised."""


@dataclass(frozen=True)
class Timing:
    """A timing or throughput compared with a threshold, with the spread measured between rounds."""

    measured: float
    threshold: float
    spread: float
    """The spread of the measured quantity between the chapter's own rounds
    (`experiments.measure.spread_between_rounds`)."""
    below: bool = True
    """True when the finding says the measured value is below the threshold, False when above."""
    unit: str = ""

    @property
    def margin(self) -> float:
        """How far the measurement is on the finding's side of the threshold (negative: the wrong side)."""
        return self.threshold - self.measured if self.below else self.measured - self.threshold

    @property
    def spreads(self) -> float:
        """The margin in units of the spread (infinite when the rounds agreed exactly)."""
        if self.spread <= 0:
            return math.inf if self.margin > 0 else -math.inf
        return self.margin / self.spread

    def __bool__(self) -> bool:
        finite = all(math.isfinite(v) for v in (self.measured, self.threshold, self.spread)) and self.spread >= 0
        return bool(finite and self.margin > 0 and self.margin >= MARGIN * self.spread)

    def describe(self) -> str:
        """The numbers of the finding in one line: measured, threshold, spread and the margin in spreads."""
        side = "<" if self.below else ">"
        unit = f" {self.unit}" if self.unit else ""
        ratio = "∞" if math.isinf(self.spreads) else f"{self.spreads:.1f}"
        return (f"measured {self.measured:.4g}{unit}, threshold {side} {self.threshold:.4g}{unit}, spread between "
                f"rounds {self.spread:.3g}{unit}: margin {ratio} spreads (at least {MARGIN:.0f} needed)")


@dataclass(frozen=True)
class AllOf:
    """A finding that states several things at once: it holds when every part does (a part is a bool or a
    `Timing`)."""

    parts: tuple

    def __bool__(self) -> bool:
        return all(bool(part) for part in self.parts)

    def describe(self) -> str:
        """The numbers of the timing parts that do not hold (or of every timing part)."""
        timed = [p for p in self.parts if isinstance(p, Timing)]
        failing = [p for p in timed if not p] or timed
        return "; ".join(p.describe() for p in failing) or "a part of it that is not a timing"


def timings_of(value) -> list[Timing]:
    """The `Timing` parts of a finding's value (none for a plain bool)."""
    if isinstance(value, Timing):
        return [value]
    if isinstance(value, AllOf):
        return [p for p in value.parts if isinstance(p, Timing)]
    return []


def timing(measured: float, *, spread: float, below: float | None = None, above: float | None = None,
           unit: str = "") -> Timing:
    """A timing finding: ``measured`` must be below ``below`` (or above ``above``) by ``MARGIN`` × ``spread``."""
    if (below is None) == (above is None):
        raise ValueError("give exactly one of below= and above=")
    threshold = below if below is not None else above
    return Timing(float(measured), float(threshold), float(spread), below=below is not None, unit=unit)


def percentile_timing(samples, q: float, *, below: float, unit: str = "ms", rounds: int = 5) -> Timing:
    """The ``q``-th percentile of ``samples`` (taken in time order) against ``below``, its spread measured
    between ``rounds`` consecutive rounds of the series (`experiments.measure.chunk_stats`)."""
    import numpy as np

    from experiments.measure import chunk_stats, spread_between_rounds

    per_round = chunk_stats(samples, lambda x: np.percentile(x, q), rounds)
    return timing(float(np.percentile(samples, q)), below=below, spread=spread_between_rounds(per_round), unit=unit)


def failed(findings: dict) -> dict[str, str]:
    """The findings that do not hold, each with its numbers where it has them."""
    return {statement: (value.describe() if isinstance(value, (Timing, AllOf)) else "")
            for statement, value in findings.items() if not bool(value)}


def _box(chapter: str, failures: dict[str, str]) -> str:
    items = "".join(
        f"<li><b>{html.escape(statement)}</b>{' — ' + html.escape(numbers) if numbers else ''}: "
        f"did not hold on this machine.</li>" for statement, numbers in failures.items())
    return (f'<div class="admonition error"><p class="admonition-title">A finding of the {html.escape(chapter)} '
            f"chapter did not hold on this machine</p><ul>{items}</ul><p>The chapter ran on; the book was built "
            f"with this box in place of the finding, and the command that built it exited with an error.</p></div>")


def check(chapter: str, findings: dict) -> None:
    """End a chapter: print every finding with whether it holds; a failed one raises, or is rendered (book runs)."""
    for statement, value in findings.items():
        print(f"{statement}: {bool(value)}")
    failures = failed(findings)
    if not failures:
        return
    folder = os.environ.get(RENDER_ENV)
    if not folder:
        raise AssertionError(f"{chapter}: finding(s) did not hold: {failures}")
    from IPython.display import HTML, display

    display(HTML(_box(chapter, failures)))
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"{chapter}.json").write_text(json.dumps(failures, indent=1, ensure_ascii=False))


def margins(findings: dict) -> "pd.DataFrame":
    """Every timing part of ``findings`` with its margin in spreads (for the chapter's page: how far each timing
    finding is from failing on this run)."""
    import pandas as pd

    rows = [{"finding": statement, "measured": t.measured, "threshold": t.threshold, "side": "<" if t.below else ">",
             "spread": t.spread, "unit": t.unit, "margin_spreads": t.spreads, "holds": bool(t)}
            for statement, value in findings.items() for t in timings_of(value)]
    return pd.DataFrame(rows, columns=["finding", "measured", "threshold", "side", "spread", "unit", "margin_spreads",
                                       "holds"])
