"""The claims ledger: every seed claim a chapter tests, with the seed's value, ours, the rule that
compares them and the verdict the rule yields.

A chapter creates ``Ledger("economics")`` and calls `Ledger.record` once per claim with a rule from
`experiments.rules` — never a verdict: the verdict is the rule applied to the numbers. ``inputs`` names
the note's figures the row's value or model uses (``data/seed_figures.csv``); their scenarios are shown
in the row, and figures from two of the note's scenarios are refused unless the row says how it
reconciles them. ``judges`` names the note's figure a numeric rule compares with ours: the rule must then
compare that very value in the note's unit (like with like — not a neighbouring quantity the note does
not name), in every case of a ``depends`` rule. Each call rewrites ``<results>/ledger/<chapter>.json``
with all of the chapter's rows, so a re-run replaces its rows and a failed run leaves the previous ones.
Headline numbers that other pages quote go through `save_numbers`. The summary chapter reads both with `load_all`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import pandas as pd

from experiments.errors import ParameterError
from experiments.paths import results_dir
from experiments.rules import VERDICTS, Rule
from experiments.seed import CONFIGURATION, figure, figure_unit, scenario

__all__ = ["VERDICTS", "Claim", "Ledger", "load_all", "save_numbers"]


@dataclass(frozen=True)
class Claim:
    """One row of the ledger."""

    claim_id: str
    chapter: str
    claim: str
    scenario: str
    seed_value: str
    measured: str
    rule: str
    verdict: str
    proof: str
    rule_data: dict = field(default_factory=dict)


class Ledger:
    """The rows one chapter records."""

    def __init__(self, chapter: str) -> None:
        self.chapter = chapter
        self.rows: dict[str, Claim] = {}

    def record(self, claim_id: str, *, claim: str, seed_value: str, measured: str, rule: Rule, proof: str,
               inputs: tuple[str, ...] = (), reconciled: str = "", judges: str = "", threshold: str = "") -> Claim:
        """Add or replace a row and write the chapter's file.

        The id is ``<chapter>.<name>``; the verdict is ``rule.verdict``. ``inputs`` are the note's figures
        the row uses; if they come from more than one of the note's scenarios, ``reconciled`` must say how
        the row makes them fit (it is shown beside the scenarios). A rule that compares a number with a threshold
        names what the threshold is: the note's figure it judges (``judges``, checked like with like), or — for a
        threshold that is not one figure of ``data/seed_figures.csv`` (a theory's value, a bound of the book's own, a
        column of the note's economics table) — ``threshold``, saying what it is.
        """
        if not claim_id.startswith(f"{self.chapter}."):
            raise ParameterError(f"claim {claim_id!r} must start with its chapter's name, {self.chapter!r} "
                                 "(one spelling of each chapter: notebook, module, claim ids and saved numbers)")
        if not isinstance(rule, Rule):
            raise ParameterError(f"claim {claim_id!r}: the verdict comes from a rule (experiments.rules), "
                                 f"not {rule!r}")
        if _numeric(rule) and bool(judges) == bool(threshold):
            raise ParameterError(f"claim {claim_id!r} compares a number with a threshold: name the note's figure it "
                                 "judges (judges=) or say what the threshold is (threshold=), one of the two")
        if judges:
            _check_like_with_like(claim_id, judges, rule)
            inputs = tuple(dict.fromkeys((judges, *inputs)))
        scenarios = sorted({scenario(name) for name in inputs})
        stories = [s for s in scenarios if s != CONFIGURATION]
        if len(stories) > 1 and not reconciled:
            raise ParameterError(f"claim {claim_id!r} combines figures from the note's scenarios "
                                 f"{' and '.join(stories)}; take them from one, or say how they are reconciled")
        shown = "; ".join(scenarios) + (f" (reconciled: {reconciled})" if reconciled else "")
        row = Claim(claim_id, self.chapter, claim, shown, seed_value, measured, rule.text(), rule.verdict, proof,
                    rule.as_dict())
        self.rows[claim_id] = row
        folder = results_dir() / "ledger"
        folder.mkdir(exist_ok=True)
        (folder / f"{self.chapter}.json").write_text(
            json.dumps([asdict(r) for r in self.rows.values()], indent=1, ensure_ascii=False)
        )
        return row

    def table(self) -> pd.DataFrame:
        """The chapter's rows as a table (claim, scenario, seed, measured, rule, verdict)."""
        return pd.DataFrame([asdict(r) for r in self.rows.values()]).drop(columns=["chapter", "rule_data"])


UNIT_SCALES = {("fraction", "%"): 100.0, ("ms", "µs"): 1000.0, ("s", "ms"): 1000.0}
"""A note's figure may be compared in a finer unit: the factor from the figure's unit to the rule's."""


def _numeric(rule: Rule) -> list[Rule]:
    """The rule's comparisons of a number with a threshold (a depends rule's, case by case)."""
    return [r for r in (dict(rule.cases).values() if rule.kind == "depends" else [rule])
            if r.kind in ("at_most", "at_least", "close_to")]


def _check_like_with_like(claim_id: str, name: str, rule: Rule) -> None:
    """Refuse a rule that compares ours with something other than the note's figure ``name`` in its unit (or a
    finer one, `UNIT_SCALES`)."""
    value, unit = figure(name), figure_unit(name)
    numeric = _numeric(rule)
    if not numeric:
        raise ParameterError(f"claim {claim_id!r} judges the note's {name} but its rule compares no number with it")
    for r in numeric:
        rule_unit = r.unit.split(" ")[0]
        scale = 1.0 if rule_unit == unit else UNIT_SCALES.get((unit, rule_unit), math.nan)
        if not math.isclose(r.claimed, value * scale):
            raise ParameterError(f"claim {claim_id!r} judges the note's {name} ({value:g} {unit}) but its rule compares "
                                 f"ours with {r.claimed:g} {r.unit}: compare the quantity the note names, in its unit")


def save_numbers(chapter: str, numbers: dict[str, float | int | str]) -> None:
    """Record a chapter's headline numbers for pages that quote them (the decision record)."""
    folder = results_dir() / "numbers"
    folder.mkdir(exist_ok=True)
    (folder / f"{chapter}.json").write_text(json.dumps(numbers, indent=1, sort_keys=True))


def load_all() -> pd.DataFrame:
    """Every chapter's ledger rows in one table."""
    folder = results_dir() / "ledger"
    rows = [row for path in sorted(folder.glob("*.json")) for row in json.loads(path.read_text())]
    return pd.DataFrame(rows, columns=list(Claim.__dataclass_fields__))
