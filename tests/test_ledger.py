"""experiments.ledger: rows are validated and written where the summary will find them."""

from __future__ import annotations

import json

import pytest

from experiments.errors import ParameterError
from experiments.ledger import Ledger, load_all, save_numbers
from experiments.paths import results_dir


def row(ledger, claim_id="chapter.c1", verdict="holds", measured="1 ms"):
    return ledger.record(claim_id, claim="a claim", seed_value="2 ms", measured=measured, verdict=verdict,
                         proof="chapter.ipynb#x")


def test_rows_are_written_and_replaced():
    ledger = Ledger("chapter")
    row(ledger)
    row(ledger, verdict="fails")
    rows = json.loads((results_dir() / "ledger" / "chapter.json").read_text())
    assert len(rows) == 1 and rows[0]["verdict"] == "fails"


def test_verdicts_are_checked():
    with pytest.raises(ParameterError, match="verdict='maybe'"):
        row(Ledger("chapter"), verdict="maybe")


def test_unverifiable_needs_a_reason():
    with pytest.raises(ParameterError, match="gives no reason"):
        row(Ledger("chapter"), verdict="unverifiable", measured=" ")
    row(Ledger("chapter"), verdict="unverifiable", measured="needs AWS")


def test_all_chapters_are_collected():
    row(Ledger("a"), "a.x")
    row(Ledger("b"), "b.y")
    assert sorted(load_all().claim_id) == ["a.x", "b.y"]


def test_a_claim_id_starts_with_its_chapter():
    with pytest.raises(ParameterError, match="must start with its chapter's name, 'in-process-lru'"):
        row(Ledger("in-process-lru"), "inprocess.stale")
    row(Ledger("in-process-lru"), "in-process-lru.stale")


def test_numbers_are_saved():
    save_numbers("chapter", {"p50_us": 12.5})
    assert json.loads((results_dir() / "numbers" / "chapter.json").read_text()) == {"p50_us": 12.5}
