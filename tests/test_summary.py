"""The summary chapter's parts: the decision function on workloads whose answer is clear, the what-if
grids and their slider charts, the seed-claim inventory against the ledger, and the summary tables."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from chapter_contract import LedgerContract

from experiments.chapters import summary
from experiments.decide import engine
from experiments.decide.workload import Family, Workload, load, with_headroom
from experiments.errors import BookError, ParameterError
from experiments.ledger import Ledger
from experiments.models import decision, popularity, whatif
from experiments.paths import DATA
from experiments.seed import figure, launch_capacity_per_s, launch_reads_per_s, product_reads_per_s

EXAMPLES = DATA / "workloads"


@pytest.fixture(scope="module")
def chatbot() -> Workload:
    return load(EXAMPLES / "chatbot.toml")


def _table(w: Workload) -> pd.DataFrame:
    return decision.table(engine.rank(w)[0])


def _first(w: Workload) -> str:
    table = _table(w)
    assert table.verdict.iloc[0] == "recommended"
    return table.option.iloc[0]


def _one(name: str, **family) -> Workload:
    """A one-family workload (defaults: a 2 KB catalog of 20K keys, a 5-minute TTL, no events)."""
    base = dict(name=name, reads_per_s=20.0, value_kb=2.0, ttl_s=300.0, max_stale_s=300.0, changed_by_events=False,
                cacheable=True, in_dynamodb=False, keys=20_000, zipf_alpha=1.0)
    origin = family.pop("origin_capacity_per_s", 10.0)
    tasks, peak = family.pop("tasks", 1), family.pop("peak_multiple", 1.0)
    return Workload(name=name, tasks=tasks, peak_multiple=peak, turn_budget_ms=2000, origin_capacity_per_s=origin,
                    origin_latency_ms=100, families=(Family(**{**base, **family}),))


def test_the_example_files_carry_the_notes_figures(chatbot):
    """Each example that stands for the note takes its numbers from one of the note's scenarios."""
    product = chatbot.families[0]
    assert chatbot.origin_capacity_per_s == pytest.approx(figure("catalog_capacity_per_min") / 60, rel=1e-4)
    assert product.reads_per_s == pytest.approx(product_reads_per_s(), rel=1e-4)
    assert product.zipf_alpha == pytest.approx(popularity.product().alpha, abs=1e-4)
    assert (product.keys, product.ttl_s, chatbot.tasks) == (figure("dax_catalog"), figure("product_cache_ttl_s"),
                                                            figure("task_count"))
    launch = load(EXAMPLES / "launch.toml")
    assert launch.origin_capacity_per_s == pytest.approx(launch_capacity_per_s(), rel=1e-4)
    live = sum(f.reads_per_s for f in launch.families if not f.cacheable)
    assert sum(f.reads_per_s for f in launch.families) == pytest.approx(launch_reads_per_s(), rel=1e-4)
    assert live / launch_reads_per_s() == pytest.approx(figure("launch_live_share"), rel=1e-4)


def test_the_seed_chatbot_has_no_headroom_and_with_it_gets_durable_valkey(chatbot):
    table = _table(chatbot).set_index("option")
    assert (table.verdict == "rejected").all() and 99 < table.loc["valkey", "origin_load_pct"] < 101
    assert "above the 80 % a plan may use" in table.loc["valkey", "reasons"]
    roomy = _table(with_headroom(chatbot)).set_index("option")
    assert _first(with_headroom(chatbot)) == "valkey-durable"
    assert roomy.loc["valkey", "verdict"] == "viable" and roomy.loc["in-process", "verdict"] == "rejected"
    assert "zone-local reads" in roomy.loc["valkey-durable", "reasons"]
    assert table.loc["no-cache", "origin_load_pct"] > 1000


def test_the_launch_is_lost_to_its_live_reads_whatever_the_cache():
    launch = load(EXAMPLES / "launch.toml")
    live = _table(launch).set_index("option")
    assert (live.verdict == "rejected").all() and live.loc["redis", "origin_load_pct"] > 400
    assert "serve the live reads from a path that scales" in live.loc["redis", "reasons"]
    cacheable = _table(summary.every_read_cacheable(launch))
    assert cacheable.verdict.iloc[0] == "recommended"


def test_serverless_wins_a_small_catalog_and_a_big_peak_needs_pre_scaling():
    """A small resident set costs less on Serverless than the smallest node pair; a peak beyond what an empty
    Serverless cache supports adds a pre-scaling step, one more component to pay for."""
    small = _one("small", changed_by_events=True, max_stale_s=5.0)
    table = _table(small).set_index("option")
    assert table.loc["valkey-serverless", "usd_per_month"] < table.loc["valkey", "usd_per_month"]
    spiky = _one("spiky", changed_by_events=True, max_stale_s=5.0, peak_multiple=2_000, origin_capacity_per_s=1_000)
    spiked = _table(spiky).set_index("option")
    assert "pre-scaling step" in spiked.loc["valkey-serverless", "reasons"]


def test_values_that_must_never_be_stale_get_no_cache():
    prices = _one("prices", origin_capacity_per_s=200, max_stale_s=0.0, changed_by_events=True)
    table = _table(prices)
    assert _first(prices) == "no-cache" and (table.verdict.iloc[1:] == "rejected").all()


def test_static_data_read_by_many_tasks_gets_a_per_task_cache():
    taxonomy = _one("taxonomy", reads_per_s=2000, origin_capacity_per_s=50, tasks=60, keys=2000, value_kb=1.0,
                    ttl_s=86_400, max_stale_s=86_400)
    assert _first(taxonomy) == "in-process"


def test_an_origin_with_room_to_spare_and_fresh_data_needs_no_cache():
    assert _first(_one("internal tool", reads_per_s=5, origin_capacity_per_s=100, max_stale_s=600)) == "no-cache"


def test_dax_is_considered_only_for_dynamodb_data(chatbot):
    product = dataclasses.replace(chatbot.families[0], in_dynamodb=True, changed_by_events=False, max_stale_s=600.0)
    roomy = with_headroom(chatbot)
    table = _table(dataclasses.replace(roomy, families=(product,))).set_index("option")
    assert table.loc["dax", "verdict"] != "rejected" and table.loc["dax", "hit_pct"] > 50
    assert _table(chatbot).set_index("option").loc["dax", "verdict"] == "rejected"


def test_the_memory_per_item_sizes_and_prices_the_cluster():
    """A memory-bound resident set (50 GB of 2 KB items): more bytes per item, more shards."""
    big = _one("big", reads_per_s=20_000, keys=50_000_000, zipf_alpha=0.6, ttl_s=3600, max_stale_s=3600,
               origin_capacity_per_s=50_000)
    lean = decision.table(engine.rank(big, item_overhead=1.0)[0]).set_index("option")
    fat = decision.table(engine.rank(big, item_overhead=3.0)[0]).set_index("option")
    assert fat.loc["valkey", "usd_per_month"] > lean.loc["valkey", "usd_per_month"]


def test_what_if_grids_follow_their_models():
    hits = whatif.per_task_hit_rates(tasks=[1, 10, 60], ttls_s=[60, 300], alpha=1.0)
    at_300 = hits[hits.ttl_s == 300].set_index("tasks").hit_pct
    assert at_300[1] > at_300[10] > at_300[60]  # more tasks, lower hit rate
    assert (hits[hits.ttl_s == 300].hit_pct.to_numpy() > hits[hits.ttl_s == 60].hit_pct.to_numpy()).all()
    calls = whatif.stampede_calls(callers=[10, 500], tasks=[1, 60]).set_index(["tasks", "callers", "protection"])
    assert calls.loc[(60, 500, "single-flight per task"), "origin_calls"] == 60
    assert calls.loc[(60, 10, "single-flight per task"), "origin_calls"] == 10  # never more tasks than callers
    launch = whatif.launch_answers(overloads=[10.0], hit_rates=[0.0, 0.95], live_share=0.5)
    cacheable = launch[launch.reads == whatif.CACHEABLE].set_index("hit_pct").answered_pct
    live = launch[launch.reads != whatif.CACHEABLE].set_index("hit_pct").answered_pct
    assert cacheable[0.0] < 1 and cacheable[95.0] > 99.9 and live[95.0] < 25
    assert whatif.hit_rate_to_answer(launch, overload=10.0, reads=whatif.CACHEABLE) == 95.0
    assert whatif.hit_rate_to_answer(launch, overload=10.0, reads=whatif.LIVE) is None


def test_dax_what_if_stays_within_dynamodbs_item_limit_where_the_ttl_not_memory_costs_projections():
    dax = whatif.dax_hit_rates(item_kb=[16, 400], projections=[1, 4], alpha=1.33)
    cost = whatif.dax_projection_cost(dax)
    assert cost["dax_one_projection_pct"] > cost["dax_most_projections_pct"] + 1  # four fills per item, one TTL each
    assert cost["dax_size_effect_pp"] < 0.1 and cost["dax_max_item_kb"] == 400  # a 13 GB node never binds
    with pytest.raises(ParameterError, match="past DynamoDB's 400 KB item limit"):
        whatif.dax_hit_rates(item_kb=[512], projections=[1], alpha=1.33)


def test_what_if_charts_have_one_slider_over_the_precomputed_values():
    frame = whatif.stampede_calls(callers=[10, 100], tasks=[1, 2, 3])
    spec = whatif.stampede_chart(frame).to_dict()
    (param,) = spec["params"]
    assert param["bind"]["input"] == "range" and (param["bind"]["min"], param["bind"]["max"]) == (1, 3)
    assert spec["transform"] == [{"filter": "datum.tasks == tasks"}]
    with pytest.raises(ValueError, match="evenly spaced"):
        whatif.stampede_chart(whatif.stampede_calls(callers=[10], tasks=[1, 2, 5]))


def test_the_seed_inventory_is_well_formed():
    claims = summary.inventory()
    assert claims.no.is_unique and set(claims.kind) == {"claim", "input", "judgement"}
    assert all(claims[claims.kind != "input"].ledger_ids.map(len) > 0)  # the chapter's check: they exist


def test_summary_without_results_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CACHE_BOOK_RESULTS", str(tmp_path / "empty"))
    with pytest.raises(BookError, match=r"no results yet for economics, .*python -m experiments.bookkit execute"):
        summary.load_results()


def test_coverage_lists_claims_without_rows():
    claims = pd.DataFrame({"no": [1, 2, 3], "kind": ["claim", "claim", "input"],
                           "ledger_ids": [["a"], ["b", "c"], []]})
    ledger = pd.DataFrame({"claim_id": ["a", "b"]})
    table = summary.coverage(claims, ledger)
    assert table.loc["claim", "statements"] == 2 and table.loc["claim", "in_ledger"] == 1
    assert table.loc["claim", "without_a_row"] == "2"


def test_two_chapters_judging_one_claim_differently_are_caught():
    claims = pd.DataFrame({"no": [1, 2, 3], "topic": ["x", "y", "z"], "ledger_ids": [["a.r", "b.r"], ["a.s", "b.s"], ["c"]]})
    ledger = pd.DataFrame({"claim_id": ["a.r", "b.r", "a.s", "b.s", "c"],
                           "verdict": ["fails", "fails", "partly", "holds", "holds"]})
    split = summary.split_verdicts(claims, ledger)
    assert list(split.no) == [2] and split.verdicts.iloc[0] == "a.s: partly, b.s: holds"
    assert summary.split_verdicts(claims.iloc[[0, 2]], ledger).empty


NUMBERS = {"no-cache": {"fan_p99_ms": 626.0, "fan_cached_p99_ms": 432.0, "fan_p50_ms": 350.0, "fan_cached_p50_ms": 2.0,
                        "answered_no_cache_pct": 0.16},
           "memcached": {"mc_t4_big_rps": 20_000.0, "redis_big_rps": 21_000.0, "big_kb": 128.0, "remap_replace_pct": 50.0,
                         "cold_lowest_hit_pct": 60.0, "remap_replace_named_pct": 33.0},
           "in-process-lru": {"bytes_rss_mb": 486.0, "parsed_rss_mb": 935.0, "roll_origin_peak_ratio": 154.0}}
"""The chapters' numbers the summary's own ledger rows read (a consistent synthetic set)."""


class TestSummaryLedger(LedgerContract):
    chapter = summary

    @pytest.fixture
    def results(self):
        return NUMBERS

    def test_context_rows_come_from_the_chapters_numbers(self):
        table = summary.record_claims(Ledger("summary"), NUMBERS).set_index("claim_id")
        assert len(table) == 8
        assert table.loc["summary.memcached-large-values", "verdict"] == "unverifiable"  # two tools, two mixes, 2 cores
        assert "626 ms to 432 ms" in table.loc["summary.context-p99", "measured"]
