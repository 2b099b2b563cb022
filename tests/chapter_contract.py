"""The contract every chapter module (`experiments.chapters.X`) keeps, written once.

A chapter's test file subclasses `ChapterContract`, names its module and provides a ``results``
fixture (real results, or a consistent synthetic set); it lists in `breakages` one change of the facts
per finding it can break. The contract then checks the three things every chapter promises:

* every finding holds on the results;
* every timing finding (`experiments.findings.Timing`) declares its measured value, threshold and spread
  between rounds, and keeps a margin of at least three spreads;
* each listed finding turns false when its fact changes (a finding that cannot fail is a defect);
* every verdict is its rule applied to the numbers, and moving the measurement across the rule's
  thresholds changes it (a verdict that cannot change is typed, whatever it looks like);
* the ledger rows are well formed: ids ``<chapter>.<name>``, unique; a verdict from the list; the
  note's value and ours stated; a reason for every unverifiable row; a proof that names a notebook
  of the book and, where it has one, an anchor that is a section of that notebook.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict
from types import ModuleType

import pandas as pd
from docutils.nodes import make_id

from experiments import rules
from experiments.findings import MARGIN, timings_of
from experiments.ledger import VERDICTS, Ledger
from experiments.paths import ROOT

Breakage = tuple[Callable[[object], None], str]
"""A change to a deep copy of the results, and the finding it must turn false."""


def rows(frame: pd.DataFrame, where: dict) -> pd.Series:
    """The rows of ``frame`` whose columns equal ``where``'s values: what a breakage changes."""
    mask = pd.Series(True, index=frame.index)
    for key, wanted in where.items():
        mask &= frame[key] == wanted
    return mask


def notebook_anchors(notebook: str) -> set[str]:
    """The section anchors of a notebook: explicit ``(label)=`` targets and heading ids as docutils makes them."""
    nb = json.loads((ROOT / "book" / notebook).read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    labels = set(re.findall(r"^\(([\w-]+)\)=", text, re.M))
    return labels | {make_id(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


class LedgerContract:
    """The ledger half of the contract, for a chapter whose findings need the whole book (the summary)."""

    chapter: ModuleType

    @property
    def name(self) -> str:
        """The chapter's one spelling: the notebook's name (the module's with hyphens)."""
        return self.chapter.__name__.rsplit(".", 1)[1].replace("_", "-")

    def rows(self, results) -> pd.DataFrame:
        """The rows the chapter records, with each row's rule as data (``rule_data``)."""
        ledger = Ledger(self.name)
        self.chapter.record_claims(ledger, results)
        return pd.DataFrame([asdict(row) for row in ledger.rows.values()])

    def test_every_verdict_is_its_rule_and_moves_with_the_measurement(self, results):
        for row in self.rows(results).itertuples():
            rule = rules.from_dict(row.rule_data)
            assert rule.verdict == row.verdict and rule.text() == row.rule, row.claim_id
            if rule.kind == "unmeasurable":
                continue
            moved = {rule.at(value) for value in rule.probes()}
            assert len(moved) >= 2, f"{row.claim_id}: the verdict cannot change ({moved})"

    def test_ledger_rows_are_well_formed(self, results):
        table = self.rows(results)
        assert len(table) and table.claim_id.is_unique
        assert table.claim_id.str.startswith(f"{self.name}.").all(), list(table.claim_id)
        assert table.verdict.isin(VERDICTS).all()
        assert (table.claim.str.len() > 10).all() and (table.seed_value.str.len() > 0).all()
        assert (table.measured.str.len() > 0).all()
        assert (table[table.verdict == "unverifiable"].rule.str.len() > 20).all()  # the reason
        for proof in table.proof:
            notebook, _, anchor = proof.partition("#")
            assert (ROOT / "book" / notebook).exists(), proof
            assert not anchor or anchor in notebook_anchors(notebook), f"{proof}: no such section"


class ChapterContract(LedgerContract):
    """The whole contract: every finding holds, each can fail, and the ledger rows are well formed."""

    def findings(self, results) -> dict[str, bool]:
        return self.chapter.findings(results)

    def breakages(self) -> list[Breakage]:
        raise NotImplementedError

    def test_the_headline_holds_plain_python_values(self, results):
        """Glued numbers must be Python's own types: a numpy scalar is glued as its repr (``np.float64(…)``), which
        the page cannot format and the summary cannot compare."""
        if not hasattr(self.chapter, "headline"):
            return
        numbers = self.chapter.headline(results)
        odd = {k: type(v).__name__ for k, v in numbers.items() if type(v) not in (int, float, str, bool)}
        assert not odd, f"headline values of a numpy or other type: {odd}"

    def test_every_finding_holds(self, results):
        findings = self.findings(results)
        assert findings and all(findings.values()), {k: v for k, v in findings.items() if not v}

    def test_timing_findings_keep_a_margin_of_three_spreads(self, results):
        for statement, value in self.findings(results).items():
            for part in timings_of(value):
                assert math.isfinite(part.spread) and part.spread >= 0, f"{statement}: no spread between rounds"
                assert part.margin >= MARGIN * part.spread, f"{statement}: {part.describe()}"

    def test_each_finding_can_fail(self, results):
        breakages = self.breakages()
        assert breakages, "a chapter must show that its findings can fail"
        for change, finding in breakages:
            broken = copy.deepcopy(results)
            change(broken)
            findings = self.findings(broken)
            assert finding in findings, f"no finding named {finding!r}"
            assert not findings[finding], f"{finding!r} still holds after its fact changed"
