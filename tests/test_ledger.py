"""experiments.ledger: rows are validated and written where the summary will find them."""

from __future__ import annotations

import json

import pytest

from experiments import rules
from experiments.errors import ParameterError
from experiments.ledger import Ledger, load_all, save_numbers
from experiments.paths import results_dir


def row(ledger, claim_id="chapter.c1", measured_ms=1.0, **kwargs):
    return ledger.record(claim_id, claim="a claim", seed_value="2 ms", measured=f"{measured_ms} ms",
                         rule=rules.at_most(2.0, measured_ms, unit="ms"), proof="chapter.ipynb#x",
                         **({"threshold": "a bound of the test's own"} | kwargs))


def test_rows_are_written_and_replaced():
    ledger = Ledger("chapter")
    row(ledger)
    row(ledger, measured_ms=3.0)
    rows = json.loads((results_dir() / "ledger" / "chapter.json").read_text())
    assert len(rows) == 1 and rows[0]["verdict"] == "fails"
    assert rows[0]["rule"] == "ours 3 ms: ≤ 2 ms → holds, else fails"


def test_a_verdict_comes_from_a_rule():
    with pytest.raises(ParameterError, match="comes from a rule"):
        Ledger("chapter").record("chapter.c1", claim="a claim", seed_value="2 ms", measured="1 ms", rule="holds",
                                 proof="chapter.ipynb#x")


def test_inputs_show_their_scenario_and_two_scenarios_need_a_reconciliation():
    ledger = Ledger("chapter")
    one = row(ledger, inputs=("catalog_capacity_per_min", "planned_hit_rate"))
    assert one.scenario == "Memcached failure 2"
    with pytest.raises(ParameterError, match="combines figures from the note's scenarios Memcached failure 2 and "
                                             "no-cache failure"):
        row(ledger, inputs=("catalog_capacity_per_min", "launch_users"))
    both = row(ledger, inputs=("catalog_capacity_per_min", "launch_users"), reconciled="compared, not combined")
    assert both.scenario == "Memcached failure 2; no-cache failure (reconciled: compared, not combined)"


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


def test_a_row_judged_on_another_quantity_is_refused():
    """Like with like: a row that says which of the note's figures it judges must compare that value in its unit."""
    ledger = Ledger("chapter")
    def judged(rule):
        return ledger.record("chapter.p99", claim="a claim", seed_value="3,000 ms", measured="x", rule=rule,
                             proof="chapter.ipynb#x", judges="catalog_p99_overload_ms")
    ok = judged(rules.close_to(3000, 2100, tolerance=0.25, unit="ms (P99)"))
    assert ok.scenario == "no-cache failure"  # the judged figure is an input of the row
    with pytest.raises(ParameterError, match=r"judges the note's catalog_p99_overload_ms \(3000 ms\) but its rule "
                                             r"compares ours with 3 s"):
        judged(rules.close_to(3, 2.1, tolerance=0.25, unit="s"))
    with pytest.raises(ParameterError, match="compares ours with 50 % of turns"):
        judged(rules.depends_on("the queue discipline", {"a": rules.close_to(3000, 2100, tolerance=0.25, unit="ms"),
                                              "b": rules.close_to(50, 12.5, tolerance=0.05, unit="% of turns")}))
    with pytest.raises(ParameterError, match="compares no number"):
        judged(rules.parts({"x": True}))


def test_every_threshold_says_what_it_is():
    """A numeric rule names the note's figure it judges or says what its threshold is; a finer unit is converted."""
    ledger = Ledger("chapter")
    rule = rules.at_most(100.0, 4.0, unit="µs")
    with pytest.raises(ParameterError, match="name the note's figure it judges"):
        ledger.record("chapter.bare", claim="a claim", seed_value="<0.1ms", measured="x", rule=rule, proof="c.ipynb#x")
    with pytest.raises(ParameterError, match="one of the two"):
        ledger.record("chapter.both", claim="a claim", seed_value="<0.1ms", measured="x", rule=rule, proof="c.ipynb#x",
                      judges="table_inprocess_latency_ms", threshold="ours")
    # the note's 0.1 ms, compared in µs; its 0.40 hit rate, compared in %
    assert ledger.record("chapter.us", claim="a claim", seed_value="<0.1ms", measured="x", rule=rule, proof="c.ipynb#x",
                         judges="table_inprocess_latency_ms").verdict == "holds"
    assert ledger.record("chapter.pct", claim="a claim", seed_value="40 %", measured="x", proof="c.ipynb#x",
                         rule=rules.close_to(40.0, 41.0, unit="% hit", tolerance=0.1),
                         judges="dax_failed_hit_rate").verdict == "holds"
    assert ledger.record("chapter.ours", claim="a claim", seed_value="(question)", measured="x", proof="c.ipynb#x",
                         rule=rules.close_to(25.0, 24.0, unit="% of keys", tolerance=0.1),
                         threshold="theory: 1/4 of the keys").verdict == "holds"
