"""The rehearsal: its plan (scale, speed, phases, the engine's prediction for the traffic as run), its schedule
and popularity, the change paths' bookkeeping, its choice of option, and one short run on real servers."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments.decide import engine
from experiments.decide.workload import WorkloadError, load, with_headroom
from experiments.lab.processes import descendants, process_state
from experiments.paths import DATA, ROOT
from experiments.rehearse import change_worker, plan, run, tally, task_worker

CHATBOT = with_headroom(load(DATA / "workloads" / "chatbot.toml"))


def test_the_speed_sets_the_ttl_and_the_scale_keeps_the_peak_under_the_machine_s_share():
    p = plan.choose(CHATBOT, "valkey-durable", machine_reads_per_s=4000, target_ttl_s=10)
    assert p.ttl_as_run_s == pytest.approx(10) and p.speed == pytest.approx(30)
    assert p.offered_peak_per_s == pytest.approx(plan.MACHINE_SHARE * 4000)
    assert sum(ph.seconds for ph in p.phases) == pytest.approx(5 * 10)
    fast = plan.choose(CHATBOT, "valkey-durable", machine_reads_per_s=1e9, target_ttl_s=10)
    assert fast.scale == 1  # never more than the workload


def test_the_origin_as_run_is_loaded_as_the_written_one_and_the_hit_rate_falls_with_the_scale():
    small = plan.Plan(CHATBOT, "valkey-durable", 0.1, 30, 0)
    run_, written = small.predicted()["as_run"], small.predicted()["as_written"]
    assert run_["origin_load_peak"] == pytest.approx(written["origin_load_peak"], rel=1e-6)
    assert run_["hit_rate"] < written["hit_rate"] - 0.02  # fewer reads per key per TTL
    misses = engine.origin_load(small.scaled, "valkey-durable", 1) * small.scaled.origin_capacity_per_s
    assert small.origin_capacity_per_s == pytest.approx(misses * 30 / written["origin_load_peak"])
    none = plan.Plan(CHATBOT, "no-cache", 0.1, 30, 0).predicted()["as_run"]
    assert none["hit_rate"] == 0 and none["turns_in_budget"] == pytest.approx(1 / none["origin_load_peak"])


def test_the_traffic_ramps_to_the_peak_and_back():
    peaky = dataclasses.replace(CHATBOT, peak_multiple=3.0)
    p = plan.Plan(peaky, "valkey-durable", 0.5, 30, 0)
    normal, ramp, peak, _back = p.phases
    assert p.multiple_at(1) == 1 and p.multiple_at(normal.seconds + ramp.seconds / 2) == pytest.approx(2)
    low, high = p.peak_window()
    assert p.multiple_at((low + high) / 2) == 3 and p.multiple_at(p.seconds - 0.01) == pytest.approx(1, abs=0.01)
    assert high - low == pytest.approx(peak.seconds / 2)


def test_a_plan_refuses_what_it_cannot_run():
    traced = dataclasses.replace(CHATBOT, families=(dataclasses.replace(CHATBOT.families[0], trace=object()),))
    with pytest.raises(WorkloadError, match="Zipf"):
        plan.choose(traced, "valkey", machine_reads_per_s=1000, target_ttl_s=10)
    with pytest.raises(WorkloadError, match="positive"):
        plan.choose(CHATBOT, "valkey", machine_reads_per_s=0, target_ttl_s=10)
    with pytest.raises(WorkloadError, match="scale"):
        plan.Plan(CHATBOT, "valkey", 2.0, 1.0, 0)
    with pytest.raises(WorkloadError, match="at least 5 s"):
        plan.choose(CHATBOT, "valkey", machine_reads_per_s=1000, target_ttl_s=2)


def test_arrivals_follow_the_phases_and_keys_their_popularity():
    rng = np.random.default_rng(1)
    times = task_worker.arrivals([[10, 1, 1], [10, 1, 3]], 500, rng)
    first, second = (times < 10).sum(), (times >= 10).sum()
    assert abs(first - 5000) < 5 * math.sqrt(5000) and abs(second - 10000) < 5 * math.sqrt(10000)
    assert np.all(np.diff(times) >= 0) and times.max() < 20
    ranks = task_worker.zipf_sampler(1000, 1.2, rng)(200_000)
    weights = np.arange(1, 1001, dtype=float) ** -1.2
    assert (ranks == 0).mean() == pytest.approx(weights[0] / weights.sum(), rel=0.03)


def test_the_breaker_opens_after_failures_in_a_row_and_closes_after_its_time():
    b = task_worker.Breaker(failures=3, open_s=5)
    for now in (0, 1):
        b.result(False, now)
    b.result(True, 1.5)
    b.result(False, 2)
    assert b.allow(2)  # the success reset the count
    b.result(False, 3)
    b.result(False, 4)
    assert not b.allow(4.5) and b.allow(9)


def test_a_change_not_deleted_is_lost_and_one_deleted_twice_is_not(tmp_path):
    path = str(tmp_path / "source.sqlite")
    change_worker.create(path)
    db = change_worker._connect(path)
    seqs = [change_worker.commit_change(db, f"k{i}", route, crash=i == 2)
            for i, route in enumerate(("outbox", "dual write") * 2)]
    for seq in seqs[:3]:
        change_worker.published(db, seq)
    change_worker.published(db, seqs[0])  # at least once: a repeated delete
    assert tally.lost_changes(path) == {"outbox": 0, "dual_write": 1}
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT key, crash FROM outbox ORDER BY seq").fetchall() == [("k0", 0), ("k2", 1)]
        assert check.execute("SELECT version FROM items WHERE key = 'k0'").fetchone()[0] == 1


def test_the_option_is_the_engine_s_first_or_a_named_one_it_accepts():
    assert run.chosen_option(CHATBOT, None) == engine.rank(CHATBOT, edge=False)[0][0].option
    with pytest.raises(WorkloadError, match="not one of the engine's options"):
        run.chosen_option(CHATBOT, "etcd")
    as_written = load(DATA / "workloads" / "chatbot.toml")
    with pytest.raises(WorkloadError, match="rejects every option"):
        run.chosen_option(as_written, None)
    with pytest.raises(WorkloadError, match="rejects valkey"):
        run.chosen_option(as_written, "valkey")
    assert run.chosen_option(as_written, "no-cache") == "no-cache"  # the baseline is always run


def test_a_short_rehearsal_on_real_servers_agrees_with_the_engine_loses_the_dual_write_s_change_and_leaves_nothing():
    before = set(descendants(os.getpid()))  # the session's own servers (other workers' are not ours to count)
    result = run.rehearse(CHATBOT, "valkey", run.Options(target_ttl_s=5.0, seed=3))
    totals = result["totals"]
    assert totals["lost_changes"] == {"outbox": 0, "dual_write": 1}
    assert set(result["crashes"]) == {"invalidator", "dual write"}
    assert totals["stale_prices_served"] is None  # the chatbot reads no price: nothing to serve stale
    assert totals["stale_beyond_bound"]["product"] > 0  # the dual write's lost delete, on a key that is read
    measured, predicted = totals["measured"], totals["predicted"]["as_run"]
    assert measured["seconds"] >= 4 and result["late_turns"] <= 0.01 * sum(r["turns"] for r in result["timeline"])
    agreement = totals["agreement"]
    assert agreement["agree"] is not None and agreement["because"], agreement
    if not (measured["origin_timeouts"] or measured["breaker_open_reads"] or measured["cache_errors"]):
        # the engine's steady state held: then the numbers must agree (a collapse is reported with its cause)
        assert agreement["agree"], agreement
        assert abs(measured["hit_rate"] - predicted["hit_rate"]) < 0.03 and measured["turns_in_budget"] > 0.99
    left = [pid for pid in set(descendants(os.getpid())) - before if process_state(pid) not in (None, "Z")]
    assert len(result["timeline"]) >= 25 and not left


def test_with_an_origin_at_half_its_capacity_the_engine_and_the_servers_agree():
    """The engine's count of misses against the servers', with headroom enough that no burst of misses builds a
    queue at the origin: this comparison is always judged, and must hold."""
    result = run.rehearse(CHATBOT, "valkey", run.Options(target_ttl_s=5.0, seed=5, origin_load=0.5))
    totals = result["totals"]
    assert totals["measured"]["origin_timeouts"] == 0 and totals["agreement"]["agree"], totals["agreement"]
    assert totals["predicted"]["as_run"]["origin_load_peak"] == 0.5


def test_agreement_is_within_three_standard_errors_and_the_model_s_slack_and_needs_a_healthy_cache():
    measured = {"origin_load_peak": 0.9, "origin_load_peak_se": 0.01, "breaker_open_reads": 0, "cache_errors": 0,
                "origin_timeouts": 0}

    def judge(m: dict, **kw) -> dict:
        return tally.agreement({"origin_load_peak": 0.8}, m,
                               **({"deletes_per_s": 0.0, "capacity_per_s": 100.0, "cached": True} | kw))

    assert not judge(measured)["agree"]  # 0.1 apart, tolerance 0.03 + 0.04
    assert judge(measured | {"origin_load_peak_se": 0.02})["agree"]
    assert judge(measured, deletes_per_s=10.0)["agree"]  # ten deletes a second: 0.1 of the capacity, expected
    assert judge(measured | {"origin_load_peak": 0.8, "breaker_open_reads": 5})["agree"] is False
    assert judge(measured, cached=False)["agree"] is None
    fell = judge(measured | {"origin_load_peak": 0.8, "origin_timeouts": 40})
    assert fell["agree"] is False and "fell behind" in fell["because"]


def test_the_command_says_what_is_wrong_in_one_line_and_stops_cleanly_on_sigterm(tmp_path):
    command = [sys.executable, "-m", "experiments.rehearse", "--workload", str(DATA / "workloads" / "chatbot.toml"),
               "--out", str(tmp_path)]
    bad = subprocess.run([*command, "--option", "valkey"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "rejects valkey" in bad.stderr
    run_ = subprocess.Popen([*command, "--headroom"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True)
    try:
        while "measuring the rate" not in run_.stdout.readline():
            assert run_.poll() is None, run_.stderr.read()
        time.sleep(1)
        started = descendants(run_.pid)  # its servers and task processes
        os.kill(run_.pid, signal.SIGTERM)
        assert run_.wait(15) == 130 and "interrupted" in run_.stderr.read()
    finally:
        if run_.poll() is None:
            os.killpg(run_.pid, signal.SIGKILL)
    assert len(started) >= 4 and not [pid for pid in started if process_state(pid) not in (None, "Z")]
    assert not (tmp_path / "rehearsal.json").exists()
