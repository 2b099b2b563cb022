"""The decision record (``book/index.md``): its shape, its numbers all glued from executed chapters, its decision
section within a ten-minute read, and its answer the summary's decision function's; and the record's parts
(`experiments.chapters.record`) computed from the workload, not typed."""

from __future__ import annotations

import dataclasses
import re

import nbformat
import numpy as np
import pandas as pd
import pytest

from experiments.chapters import record
from experiments.chapters.summary import example_workloads
from experiments.decide import engine, spec
from experiments.models import decision
from experiments.paths import ROOT
from tests.test_committed_notebooks import glued

RECORD = ROOT / "book" / "index.md"
SECTIONS = ["Decision outcome", "Options against the decision drivers", "What would change the answer", "Operating it",
            "Consequences", "Evidence, chapter by chapter", "Confirmation"]
"""The record's sections in order: the decision (its first five), then the evidence and how it is re-checked."""
DECISION_WORDS = 1_200
"""About ten minutes of reading, tables aside."""
GLUE = re.compile(r"\{glue(?::\w+)?\}`([^`]*)`")
ROLES = re.compile(r"\{(?:ref|numref|cite:p|cite:t|doc)\}`[^`]*`")
DIRECTIVE = re.compile(r"```\{glue\} (\w+)\n:doc: ([\w.-]+)\n```")


def _glued_html(notebook: str, key: str) -> str:
    """The HTML a notebook glued under ``key`` (what a glue directive pastes)."""
    for cell in nbformat.read(ROOT / notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            if output.get("metadata", {}).get("scrapbook", {}).get("name") == key:
                return output["data"]["application/papermill.record/text/html"]
    raise KeyError(key)


def _text() -> str:
    return RECORD.read_text()


def _decision_section(text: str) -> str:
    return text[text.index("## Decision outcome"):text.index("## Evidence, chapter by chapter")]


def test_the_record_s_sections_come_in_order():
    headings = re.findall(r"^## (.+)$", _text(), flags=re.MULTILINE)
    assert headings == SECTIONS


def test_the_decision_section_reads_in_ten_minutes():
    prose = DIRECTIVE.sub("", GLUE.sub("N", ROLES.sub("", _decision_section(_text()))))
    words = len(prose.split())
    assert words <= DECISION_WORDS, f"the decision section has {words} words, over {DECISION_WORDS}"


def test_every_number_in_the_decision_section_is_glued():
    prose = DIRECTIVE.sub("", GLUE.sub("", ROLES.sub("", _decision_section(_text()))))
    prose = re.sub(r"^\(.*\)=$", "", prose, flags=re.MULTILINE)  # labels
    prose = re.sub(r"^\d+\. ", "", prose, flags=re.MULTILINE)  # list numbering
    typed = [line for line in prose.splitlines() if re.search(r"\d", line)]
    assert not typed, f"typed numbers in the decision section: {typed}"


def test_every_glued_value_and_table_exists_in_the_committed_notebook_it_names():
    text = _text()
    cache: dict[str, dict] = {}
    for key, doc in DIRECTIVE.findall(text):
        values = cache.setdefault(doc, glued(f"book/{doc}"))
        assert key in values, f"{doc} glues no {key}"
    for ref in GLUE.findall(text):
        doc, key = ref.split("::")
        values = cache.setdefault(doc, glued(f"book/{doc}"))
        assert key.split(":")[0] in values, f"{doc} glues no {key}"
    assert {"record_options", "record_flips", "record_alarms", "record_cli"} <= {k for k, _ in DIRECTIVE.findall(text)}


def test_the_record_s_answer_is_the_summary_s_first_option():
    values = glued("book/summary.ipynb")
    assert values["answer_option"] == values["chatbot_roomy_first"]
    assert values["answer_verdict"] == "recommended"
    options = _glued_html("book/summary.ipynb", "record_options")
    assert f"{values['answer_option']} ✔ chosen" in options


@pytest.fixture(scope="module")
def roomy():
    w = example_workloads()[record.ANSWER]
    ordered, numbers = engine.rank(w)
    table = decision.table(ordered)
    table = table.assign(breaks_at=[numbers[o]["breaks_at_peak_multiple"] for o in table.option])
    return w, table, numbers


CHAPTERS = {"economics": {"redis_page_p50_us": 130.0, "memcached_page_p50_us": 120.0, "local_item_p50_us": 1.5},
            "dax": {"tls_get_extra_us": 15.0}}


def test_the_answer_is_the_first_option_deployed_as_the_spec_says(roomy):
    w, table, numbers = roomy
    a = record.answer(w, table, numbers)
    assert a["answer_option"] == table.option.iloc[0] and a["answer_second"] == table.option.iloc[1]
    assert a["answer_nodes"] == a["answer_shards"] * (a["answer_replicas"] + 1)
    assert f"--cache-node-type {a['answer_node_type']}" in a["answer_cli"]
    assert a["answer_total_usd"] == pytest.approx(a["answer_service_usd"] + a["answer_team_usd"])
    assert a["answer_dead_cache_turn_s"] < a["answer_budget_s"]
    assert all(not isinstance(v, np.generic) for v in a.values())  # glue takes plain Python values


def test_the_options_table_has_every_option_and_a_row_per_driver(roomy):
    w, table, numbers = roomy
    options = record.options_table(w, table, numbers, CHAPTERS)
    assert list(options.columns) == list(table.option)
    assert options.loc["hit rate"].str.endswith("%").all()
    assert options.loc["a hit (p50, loopback)", "no-cache"].endswith("(the origin)")
    assert options.loc["a hit (p50, loopback)", "valkey"] == "145 µs"  # the 100 KB GET plus TLS
    assert options.loc["in all", "dax"] == "— (caches nothing)" and options.loc["breaks at", "dax"].endswith("× the peak")
    assert options.loc["a replica cut off from its primary", table.option.iloc[0]].startswith("its zone's reads")
    html_ = record.table_html(options, table.option.iloc[0])
    assert html_.count("✔ chosen") == 1 and html_.count("<tr>") == len(options) + 1


def test_the_alarms_follow_the_workload_and_the_plan(roomy):
    w, table, numbers = roomy
    a = record.answer(w, table, numbers)
    alarms = record.alarms(w, a, CHAPTERS).set_index("metric")
    assert alarms.loc["ReplicationLag", "alarm when"] == "maximum over 1 min > 0.8 s"  # 80 % of the lag allowed
    lag = next(m for m in alarms.index if m.startswith("invalidation lag"))
    assert alarms.loc[lag, "alarm when"] == "> 3.2 s, missing data breaching"  # 80 % of 5 s less the replica's 1 s
    assert alarms.loc["CacheHitRate", "alarm when"] == "< 95 %"
    assert alarms.loc["catalog reads per second", "alarm when"] == f"> {0.8 * w.origin_capacity_per_s:.0f} reads/s"
    strict = dataclasses.replace(w, families=(dataclasses.replace(w.families[0], max_stale_s=20.0),), tasks=90)
    moved = record.alarms(strict, {**a, "answer_max_stale_s": 20.0}, CHAPTERS).set_index("metric")
    assert moved.loc[lag, "alarm when"] == "> 15.2 s, missing data breaching"
    assert moved.loc["NewConnections", "alarm when"] == "> 720 a minute on a node"  # 90 tasks × 8 connections


def test_warmed_keys_jittered_by_half_a_ttl_expire_no_faster_than_a_steady_cache_refills_them():
    """`spec.WARM_TTL_JITTER`'s arithmetic against a draw: N keys warmed at once, TTLs uniform in TTL·(1 ± ½), expire at
    about N / TTL a second in every second of their window (the steady refill rate), and all within one TTL."""
    keys, ttl = 20_000, 300.0
    rng = np.random.default_rng(7)
    expiries = ttl * (1 + spec.WARM_TTL_JITTER * rng.uniform(-1, 1, keys))
    per_second = np.bincount(expiries.astype(int))[int(ttl / 2):int(1.5 * ttl)]
    steady = keys / ttl
    assert expiries.max() - expiries.min() <= ttl
    assert abs(per_second.mean() - steady) < 0.01 * steady
    assert per_second.max() < steady + 5 * np.sqrt(steady)  # Poisson spread around the steady rate, no burst


def test_the_record_s_findings_hold_for_the_answer_and_fail_with_room_to_spare(roomy):
    w, table, numbers = roomy
    a = record.answer(w, table, numbers)
    at_edge = pd.DataFrame([{"input": "peak_multiple", "direction": "up", "factor": 1.01}])
    assert all(record.findings(a, table, numbers, at_edge).values())
    roomier = pd.DataFrame([{"input": "peak_multiple", "direction": "up", "factor": 1.5}])
    assert not record.findings(a, table, numbers, roomier)[
        "with the catalog a quarter larger the plan sits at its ceiling: a peak 5 % higher leaves no option viable"]
    assert not record.findings({**a, "answer_option": "valkey"}, table, numbers, at_edge)[
        "the record's answer is the decision function's first option, recommended"]
