"""The pure logic inside probes, on plain data: what a split brain lost, the rounds' summaries, the collapse's
per-second table and summary, the stampede's lead time, the retry bound, the mitigations table. The probes'
runs on real servers are tested in the chapters' test files; these check the arithmetic that turns a run into
its declared row (`experiments.results`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from redis import _defaults

from experiments.probes import collapse, failover, invalidation, parity, partition, splitbrain, stampede


def _write(kind: str, key: str, acked: bool, t_s: float, error: str = "") -> dict:
    return {"t_s": t_s, "kind": kind, "key": key, "acked": acked, "error": error}


def test_the_plan_alternates_invalidations_and_refills():
    assert splitbrain._plan(["a", "b"], ["x", "y"]) == [("DEL", "a"), ("SET", "x"), ("DEL", "b"), ("SET", "y")]
    assert splitbrain._writes_within(1.0) == int(1.0 / splitbrain.WRITE_EVERY_S / 2) + 1


def test_a_split_brain_s_losses_are_the_acknowledged_writes_the_survivor_lacks():
    plan = splitbrain._plan(["p1", "p2", "p3"], ["s1", "s2", "s3"])
    writes = [_write("DEL", "p1", True, 0.1), _write("SET", "s1", True, 0.2),  # both lost
              _write("DEL", "p2", True, 0.3), _write("SET", "s2", True, 0.4),  # both kept
              _write("DEL", "p3", False, 0.5, "NOREPLICAS")]                    # refused
    values = {"p1": b"v1", "s1": None, "p2": None, "s2": b"v2", "p3": b"v1", "s3": None}
    row = splitbrain._losses(writes, plan, values, {"p1": 880, "p3": 900})
    assert set(row) == set(splitbrain.LOSSES)
    assert (row["acked_dels"], row["acked_sets"], row["acked_writes"]) == (2, 2, 4)
    assert (row["lost_dels"], row["lost_sets"], row["lost_writes"]) == (1, 1, 2)
    assert row["lost_del_ttl_s"] == 880 and row["untouched"] == 0  # the plan's last DEL was attempted
    assert (row["refused"], row["refusal"], row["first_refused_s"], row["last_acked_s"]) == (1, "NOREPLICAS", 0.5, 0.4)


def test_promotions_the_writer_never_reached_count_as_untouched_and_kept_or_not():
    plan = splitbrain._plan(["p1", "p2", "p3"], ["s1", "s2", "s3"])
    writes = [_write("DEL", "p1", True, 0.1)]
    row = splitbrain._losses(writes, plan, {"p1": None, "p2": b"v1", "p3": None}, {})
    assert (row["untouched"], row["untouched_kept"], row["lost_writes"]) == (2, 1, 0)
    assert row["refusal"] == "" and math.isnan(row["first_refused_s"])


def test_rounds_summary_takes_the_median_of_each_round_s_percentiles():
    rounds = [np.full(100, 1.0), np.full(100, 2.0), np.full(100, 3.0), np.full(100, 4.0), np.full(100, 50.0)]
    row = parity._rounds_summary(rounds)
    assert tuple(row) == parity.ROUNDS_SUMMARY
    assert row["p50_ms"] == row["p99_ms"] == 3.0 and row["noise_ms"] == 49.0 and row["n"] == 500
    assert row["p99_spread_ms"] == 2.0  # the interquartile range of five rounds: the stalled one moves nothing


def test_beyond_noise_needs_a_difference_over_both_engines_noise():
    frame = pd.DataFrame([{"engine": "redis", "case": "a", "p50_ms": 1.0, "noise_ms": 0.1},
                          {"engine": "valkey", "case": "a", "p50_ms": 1.05, "noise_ms": 0.2},
                          {"engine": "redis", "case": "b", "p50_ms": 1.0, "noise_ms": 0.1},
                          {"engine": "valkey", "case": "b", "p50_ms": 2.0, "noise_ms": 0.2}])
    out = parity.beyond_noise(frame, ["case"]).set_index("case")
    assert not out.loc["a", "beyond_noise"] and out.loc["b", "beyond_noise"]
    assert out.loc["b", "difference"] == pytest.approx(1.0) and out.loc["b", "noise"] == 0.2


def test_a_mix_s_rate_is_the_harmonic_mean_of_its_passes():
    assert parity.mixed_rps(100.0, 100.0) == pytest.approx(100.0)
    assert parity.mixed_rps(90.0, 10.0, get_share=0.9) == pytest.approx(1 / (0.9 / 90 + 0.1 / 10))


def test_the_collapse_summary_counts_answers_in_time_per_second():
    frame = pd.DataFrame({"sent_s": [0.1, 0.5, 1.2, 1.6], "outcome": ["answered", "timed out", "hit", "hit"],
                          "latency_ms": [100.0, 2000.0, 1.0, 1.0]})
    frame = frame.assign(second=frame.sent_s.astype(int))
    per_s = collapse.per_second(frame, "x")
    assert list(per_s.answered_share) == [0.5, 1.0] and list(per_s.timed_out) == [1, 0]
    row = collapse.summary(frame, "x", capacity_per_s=10.0)
    assert tuple(row) == collapse.SUMMARY.columns
    assert row["answered_pct"] == 75.0 and row["hit_pct"] == 50.0 and row["timed_out_pct"] == 25.0
    assert row["answered_spread_pct"] == 50.0 and row["origin_goodput_per_s"] == 0.5


def test_xfetch_needs_readers_a_few_reloads_before_expiry():
    shape = stampede.Shape(callers=100, tasks=10)
    lead = stampede.xfetch_lead_ms(shape, reload_ms=120.0)
    rate = 100 * 1000 / shape.period_ms
    assert lead == int(1000 * (0.12 * math.log(rate * 0.12) + 4 * 0.12)) + shape.period_ms
    assert stampede.xfetch_lead_ms(shape, reload_ms=240.0) > lead


def test_redis_py_s_retry_bound_is_every_attempt_s_timeout_and_the_backoffs():
    retries = _defaults.DEFAULT_RETRY_COUNT
    assert partition.redis_py_retry_bound_s(0.25) == pytest.approx((retries + 1) * 0.25 + retries * _defaults.DEFAULT_RETRY_CAP)


def test_mitigations_list_the_measured_stale_windows():
    lost = {"stale_for_s_without_mitigation": 900.3, "replicas_with_delete": 0, "stale_for_s_with_replay": 2.3,
            "lost_deletes_found": 5, "invalidations_replayed": 10}
    table = failover.mitigations(lost, ttl_cap_s=60).set_index("mitigation")
    assert table.stale_for_s.tolist() == [900.3, 900.3, 2.3, 60.0]


def test_ttl_only_staleness_is_half_the_ttl_on_average():
    table = invalidation.ttl_only_staleness()
    assert list(table.columns) == list(invalidation.TTL_ONLY.columns)
    assert (table.mean_stale_s == table.ttl_s / 2).all() and (table.max_stale_s == table.ttl_s).all()
