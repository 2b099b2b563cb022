"""The claims ledger: every seed claim a chapter tests, with the seed's value, ours and a verdict.

A chapter creates ``Ledger("economics")`` and calls `Ledger.record` once per claim; each call
rewrites ``<results>/ledger/<chapter>.json`` with all of the chapter's rows, so a re-run replaces
its rows and a failed run leaves the previous ones. Headline numbers that other pages quote go
through `save_numbers`. The summary chapter reads both with `load_all`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pandas as pd

from experiments.errors import ParameterError
from experiments.paths import results_dir

VERDICTS = ("holds", "partly", "fails", "unverifiable")


@dataclass(frozen=True)
class Claim:
    """One row of the ledger."""

    claim_id: str
    chapter: str
    claim: str
    seed_value: str
    measured: str
    verdict: str
    proof: str


class Ledger:
    """The rows one chapter records."""

    def __init__(self, chapter: str) -> None:
        self.chapter = chapter
        self.rows: dict[str, Claim] = {}

    def record(self, claim_id: str, *, claim: str, seed_value: str, measured: str, verdict: str,
               proof: str) -> Claim:
        """Add or replace a row and write the chapter's file. The id is ``<chapter>.<name>``; ``unverifiable``
        needs a reason in ``measured``."""
        if not claim_id.startswith(f"{self.chapter}."):
            raise ParameterError(f"claim {claim_id!r} must start with its chapter's name, {self.chapter!r} "
                                 "(one spelling of each chapter: notebook, module, claim ids and saved numbers)")
        if verdict not in VERDICTS:
            raise ParameterError(f"verdict={verdict!r} is not one of {', '.join(VERDICTS)}")
        if verdict == "unverifiable" and not measured.strip():
            raise ParameterError(f"claim {claim_id!r} is unverifiable but gives no reason")
        row = Claim(claim_id, self.chapter, claim, seed_value, measured, verdict, proof)
        self.rows[claim_id] = row
        folder = results_dir() / "ledger"
        folder.mkdir(exist_ok=True)
        (folder / f"{self.chapter}.json").write_text(
            json.dumps([asdict(r) for r in self.rows.values()], indent=1, ensure_ascii=False)
        )
        return row

    def table(self) -> pd.DataFrame:
        """The chapter's rows as a table (claim, seed, measured, verdict)."""
        return pd.DataFrame([asdict(r) for r in self.rows.values()]).drop(columns=["chapter"])


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
