"""experiments.rules: each kind of rule gives the verdict its statement says, moves with the measurement,
and nothing in the package types a verdict instead of computing one."""

from __future__ import annotations

import ast
import json

import pytest

from experiments import claims, rules
from experiments.errors import ParameterError
from experiments.paths import ROOT


def test_at_most_holds_within_the_bound_partly_within_its_margin_and_fails_beyond():
    assert rules.at_most(2.0, 0.7, unit="ms").verdict == "holds"
    assert rules.at_most(1.0, 2.5, unit="µs", partly=3).verdict == "partly"
    assert rules.at_most(1.0, 3.5, unit="µs", partly=3).verdict == "fails"
    assert rules.at_most(0, 0, unit="price fields").verdict == "holds"
    assert rules.at_most(0, 1, unit="price fields").verdict == "fails"


def test_at_least_and_close_to():
    assert rules.at_least(118, 119.9, unit="ms").verdict == "holds"
    assert rules.at_least(118, 117.0, unit="ms").verdict == "fails"
    assert rules.at_least(5.0, 2.0, partly=5).verdict == "partly"
    assert rules.close_to(350, 349.0, tolerance=0.05).verdict == "holds"
    assert rules.close_to(2000, 1758, tolerance=0.1, partly=0.5).verdict == "partly"
    assert rules.close_to(40, 78.9, tolerance=0.1, partly=0.5).verdict == "fails"


def test_parts_hold_all_some_or_none():
    assert rules.parts({"a": True, "b": True}).verdict == "holds"
    assert rules.parts({"a": True, "b": False}).verdict == "partly"
    assert rules.parts({"a": False}).verdict == "fails"
    assert "✓ a; ✗ b" in rules.parts({"a": True, "b": False}).text()


def test_every_kind_moves_across_its_thresholds():
    for rule in (rules.at_most(2.0, 0.7), rules.at_most(1.0, 2.0, partly=3), rules.at_most(0, 0),
                 rules.at_least(118, 120), rules.at_least(5, 0.3, partly=5), rules.close_to(50, 40, tolerance=0.1),
                 rules.close_to(0.2, 100, tolerance=0.25, partly=1.0), rules.parts({"x": True})):
        verdicts = [rule.at(value) for value in rule.probes()]
        assert len(set(verdicts)) == len(verdicts) >= 2, (rule, verdicts)
        assert rules.from_dict(rule.as_dict()) == rule


def test_unmeasurable_needs_a_reason_and_bad_rules_are_one_line_errors():
    assert rules.unmeasurable("no AWS account or network reaches DAX from here").verdict == "unverifiable"
    with pytest.raises(ParameterError, match="needs its reason"):
        rules.unmeasurable("n/a")
    with pytest.raises(ParameterError, match="finite numbers"):
        rules.at_most(2.0, float("nan"))
    with pytest.raises(ParameterError, match="kind='maybe'"):
        rules.Rule("maybe")


def test_no_verdict_is_typed_in_the_package():
    """A verdict comes from a rule: no ``verdict=`` argument, and no verdict literal chosen by a condition
    or returned, anywhere in the package but `experiments.rules`."""
    typed = []
    for path in sorted((ROOT / "experiments").rglob("*.py")):
        if path.name == "rules.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and any(k.arg == "verdict" for k in node.keywords):
                typed.append(f"{path.name}:{node.lineno} verdict=")
            candidates = ([node.body, node.orelse] if isinstance(node, ast.IfExp)
                          else [node.value] if isinstance(node, ast.Return) else [])
            if any(isinstance(c, ast.Constant) and c.value in rules.VERDICTS for c in candidates):
                typed.append(f"{path.name}:{node.lineno} literal verdict")
    assert not typed


def test_a_verdict_that_rests_on_the_books_choice_says_so():
    """Two readings that agree give their verdict; two that disagree give ``depends``, with the input named;
    the rule moves, reads back from its data, and refuses a case that is not a rule on numbers."""
    disagree = rules.depends_on("the caller read period", {
        "callers read at once (the note)": rules.at_most(10, 4, unit="ms"),
        "callers read every 50 ms (the chapter)": rules.at_most(10, 40, unit="ms", partly=5)})
    assert disagree.verdict == "depends"
    assert disagree.text().startswith("depends on the caller read period: callers read at once (the note): ours 4 ms")
    assert disagree.text().endswith("the cases disagree → depends")
    agree = rules.depends_on("the queue discipline", {"a": rules.at_most(10, 4), "b": rules.at_most(10, 8)})
    assert agree.verdict == "holds" and agree.text().endswith("every case → holds")
    for rule in (disagree, agree):
        assert len({rule.at(value) for value in rule.probes()}) >= 2
        assert rules.from_dict(rule.as_dict()) == rule
        assert rules.from_dict(json.loads(json.dumps(rule.as_dict()))) == rule
    with pytest.raises(ParameterError, match="at least two cases"):
        rules.depends_on("the queue discipline", {"a": rules.at_most(10, 4)})
    with pytest.raises(ParameterError, match="a rule on numbers"):
        rules.depends_on("the queue discipline", {"a": rules.at_most(10, 4), "b": rules.unmeasurable("x" * 30)})


def test_the_failover_claim_is_judged_on_elasticache_for_every_engine():
    """One rule for "a node failure means 30-60 s of promotion staleness", whichever chapter applies it:
    ElastiCache's documented failover is seconds, so the claim holds in part at most, and fails once a lost
    invalidation outlives 60 s."""
    assert claims.failover_staleness(0.0).verdict == "partly"
    assert claims.failover_staleness(900.0).verdict == "fails"
    assert claims.ELASTICACHE_FAILOVER_S < 0.9 * claims.FAILOVER_RANGE_S[0]
