"""The summary chapter's parts: the decision function on workloads whose answer is clear, the what-if
grids and their slider charts, the seed-claim inventory against the ledger, and the summary tables."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from chapter_contract import LedgerContract

from experiments.chapters import in_process_lru, summary
from experiments.errors import BookError, ParameterError
from experiments.ledger import Ledger
from experiments.models import decision, whatif


@pytest.fixture(scope="module")
def chatbot() -> decision.Workload:
    """The note's chatbot with the exponent the in-process chapter calibrates (as the summary reads it)."""
    return decision.seed_workload(alpha=in_process_lru.calibrated_alpha())


def _first(workload: decision.Workload) -> str:
    table = decision.rank(workload)
    assert table.verdict.iloc[0] == "recommended"
    return table.option.iloc[0]


def test_the_seed_chatbot_gets_valkey_and_rejects_per_task_caches(chatbot):
    table = decision.rank(chatbot).set_index("option")
    assert _first(chatbot) == "ElastiCache Valkey"
    # Valkey behaves as Redis (the Valkey chapter): the two tie on every number but the price
    assert "ties with ElastiCache Redis" in table.loc["ElastiCache Valkey", "reasons"]
    assert "less on demand" in table.loc["ElastiCache Valkey", "reasons"]
    assert table.loc["ElastiCache Valkey", "usd_per_month"] < table.loc["ElastiCache Redis", "usd_per_month"]
    assert table.loc["in-process LRU", "verdict"] == "rejected"
    assert "stale for up to 300 s" in table.loc["in-process LRU", "reasons"]
    assert table.loc["DAX", "reasons"] == "the data is not in DynamoDB"
    # the note's scenario sizes the catalog for exactly the planned misses: Redis leaves it at capacity, and
    # ties with Memcached on every number; the tie-break is said, not hidden
    assert table.loc["ElastiCache Redis", "origin_load_pct"] == pytest.approx(100, abs=1)
    assert "ties with Memcached" in table.loc["ElastiCache Redis", "reasons"]
    assert "a failed node keeps its keys" in table.loc["ElastiCache Redis", "reasons"]
    assert table.loc["no cache", "verdict"] == "rejected"  # 20x its capacity is not viable, even as a last resort


def test_the_launch_is_lost_to_its_live_reads_whatever_the_cache(chatbot):
    """The launch's questions are price and stock: with them cacheable a cache carries the launch; read
    live (as the key design has them), no option keeps the catalog under capacity."""
    cacheable = decision.rank(decision.launch_workload(chatbot.zipf_alpha, live_share=0.0))
    live = decision.rank(decision.launch_workload(chatbot.zipf_alpha)).set_index("option")
    assert cacheable.verdict.iloc[0] == "recommended" and cacheable.option.iloc[0] == "ElastiCache Valkey"
    assert (live.verdict == "rejected").all()
    assert live.loc["ElastiCache Redis", "origin_load_pct"] > 400
    assert "serve the live reads from a path that scales" in live.loc["ElastiCache Redis", "reasons"]


def test_serverless_wins_a_small_catalog_and_needs_pre_scaling_for_a_big_peak():
    """Below the storage break-even Serverless costs less than the smallest node pair; a peak beyond what an
    empty Serverless cache supports adds a pre-scaling step, which ranks it after the node-based option."""
    small = decision.Workload(name="small", reads_per_s=20, origin_capacity_per_s=10, catalog=20_000, item_kb=2.0,
                              changes_by_event=True, max_stale_s=5)
    table = decision.rank(small).set_index("option")
    assert table.loc["ElastiCache Serverless (Valkey)", "usd_per_month"] < table.loc["ElastiCache Valkey", "usd_per_month"]
    assert _first(small) == "ElastiCache Serverless (Valkey)"
    spiky = dataclasses.replace(small, peak_multiple=2_000, origin_capacity_per_s=1_000)
    spiked = decision.rank(spiky).set_index("option")
    assert "pre-scaling step" in spiked.loc["ElastiCache Serverless (Valkey)", "reasons"]
    assert spiked.loc["ElastiCache Serverless (Valkey)", "rank"] > spiked.loc["ElastiCache Valkey", "rank"]


def test_values_that_must_never_be_stale_get_no_cache():
    prices = decision.Workload(name="prices", reads_per_s=20, origin_capacity_per_s=200, max_stale_s=0.0,
                               changes_by_event=True)
    table = decision.rank(prices)
    assert _first(prices) == "no cache"
    assert (table.verdict.iloc[1:] == "rejected").all()


def test_static_data_read_by_many_tasks_gets_a_per_task_cache():
    taxonomy = decision.Workload(name="genre taxonomy", reads_per_s=2000, origin_capacity_per_s=50, tasks=60,
                                 catalog=2000, item_kb=1.0, ttl_s=86_400, max_stale_s=86_400)
    assert _first(taxonomy) == "in-process LRU"


def test_an_origin_with_room_to_spare_and_fresh_data_needs_no_cache():
    quiet = decision.Workload(name="internal tool", reads_per_s=5, origin_capacity_per_s=100, max_stale_s=600)
    assert _first(quiet) == "no cache"


def test_dax_is_considered_only_for_dynamodb_data(chatbot):
    w = dataclasses.replace(chatbot, in_dynamodb=True, changes_by_event=False, max_stale_s=600)
    table = decision.rank(w).set_index("option")
    assert table.loc["DAX", "verdict"] != "rejected" and table.loc["DAX", "hit_pct"] > 50


def test_the_memory_per_item_sizes_and_prices_the_cluster(chatbot):
    lean = decision.rank(dataclasses.replace(chatbot, item_overhead=1.0)).set_index("option")
    fat = decision.rank(dataclasses.replace(chatbot, item_overhead=3.0)).set_index("option")
    assert fat.loc["ElastiCache Valkey", "usd_per_month"] > lean.loc["ElastiCache Valkey", "usd_per_month"]
    assert "GB catalog" in lean.loc["ElastiCache Valkey", "reasons"]


def test_bad_workloads_are_one_line_errors():
    with pytest.raises(ParameterError, match="item_overhead must be positive"):
        decision.Workload(name="x", reads_per_s=1, origin_capacity_per_s=1, item_overhead=0)
    with pytest.raises(ParameterError, match="reads_per_s must be positive"):
        decision.Workload(name="x", reads_per_s=0, origin_capacity_per_s=1)
    with pytest.raises(ParameterError, match="tasks and projections"):
        decision.Workload(name="x", reads_per_s=1, origin_capacity_per_s=1, tasks=0)


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
