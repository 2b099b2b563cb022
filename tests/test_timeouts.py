"""The turn's cache timeout: derived from what a lost packet costs and the turn's budget, against hand-computed
cases; the lossy-GET summary on a made-up frame of latencies (the measurement itself runs in the network chapter
and `tests/test_netlab.py`); the decide engine's deployment carries the plan."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from experiments.errors import ParameterError
from experiments.models import timeouts


def test_the_timeout_is_the_lost_packet_floor_rounded_up_to_fifty_ms():
    plan = timeouts.plan(budget_s=2.0, origin_p99_s=0.2, lost_packet_s=0.26, healthy_p99_s=0.01)
    assert plan.floor_s == pytest.approx(0.27) and plan.command_timeout_s == pytest.approx(0.30)
    assert plan.retries == 0
    assert plan.dead_cache_turn_s == pytest.approx(0.5) and plan.budget_used == pytest.approx(0.25) and plan.fits
    assert plan.budget_breaks_below_s == pytest.approx(0.5 / timeouts.BUDGET_SHARE)
    on_a_step = timeouts.plan(budget_s=2.0, origin_p99_s=0.2, lost_packet_s=0.24, healthy_p99_s=0.01)
    assert on_a_step.command_timeout_s == pytest.approx(0.25)


def test_a_budget_too_short_for_a_dead_cache_does_not_fit_and_says_where_it_would():
    plan = timeouts.plan(budget_s=0.6, origin_p99_s=0.2)
    assert not plan.fits and plan.budget_breaks_below_s > 0.6
    assert timeouts.plan(budget_s=plan.budget_breaks_below_s + 1e-9, origin_p99_s=0.2).fits


def test_the_engine_s_inputs_give_the_note_s_chatbot_a_timeout_above_tcp_s_retransmission():
    p99 = timeouts.origin_p99_s(0.12, 0.25)
    assert p99 == pytest.approx(0.12 * math.exp(2.326 * 0.25))
    plan = timeouts.plan(budget_s=2.0, origin_p99_s=p99)
    assert plan.command_timeout_s > timeouts.LOST_PACKET_S > timeouts.TCP_RTO_MIN_S


@pytest.mark.parametrize("bad", [{"budget_s": 0}, {"origin_p99_s": -1}, {"lost_packet_s": 0}, {"healthy_p99_s": -0.1}])
def test_bad_inputs_are_refused(bad):
    with pytest.raises(ParameterError):
        timeouts.plan(**({"budget_s": 2.0, "origin_p99_s": 0.2} | bad))


def _gets(lossy_ms: list[float], clients: int = 2) -> pd.DataFrame:
    healthy = [{"phase": "healthy", "client": i % clients, "latency_ms": 0.2} for i in range(100)]
    lossy = [{"phase": "lossy", "client": i % clients, "latency_ms": ms} for i, ms in enumerate(lossy_ms)]
    return pd.DataFrame(healthy + lossy)


def test_lost_packets_are_told_apart_by_how_many_retransmissions_they_waited():
    costs = timeouts.lost_packet_costs(_gets([0.3] * 96 + [205.0, 251.0, 207.0, 610.0]))
    assert costs["slowed"] == 4 and costs["one_loss"] == 3 and costs["more_losses"] == 1
    assert costs["one_loss_min_ms"] == 205.0 and costs["one_loss_max_ms"] == 251.0
    assert costs["unslowed_max_ms"] == 0.3 and costs["healthy_p99_ms"] == pytest.approx(0.2)
    # client 0 lost 205 and 207 (median 206), client 1 lost 251: the median of the rounds and their spread
    assert costs["one_loss_median_ms"] == pytest.approx((206 + 251) / 2)
    assert costs["one_loss_median_spread_ms"] == pytest.approx(45.0)


def test_each_candidate_timeout_counts_the_gets_it_would_fail():
    frame = timeouts.candidates(_gets([0.3] * 97 + [205.0, 251.0, 610.0]), budget_s=2.0, origin_p99_s=0.2,
                                timeouts_s={"short": 0.1, "aws": 0.25, "derived": 0.3, "long": 2.0})
    failed = frame.set_index("timeout").gets_failed
    assert failed.to_dict() == {"short": 3, "aws": 2, "derived": 1, "long": 0}
    assert frame.set_index("timeout").fits.to_dict() == {"short": True, "aws": True, "derived": True, "long": False}


def test_the_decide_deployment_carries_the_plan_and_warns_on_a_short_budget():
    from test_decide_models import workload

    from experiments.decide import spec

    ok = spec.deployment(workload(), "valkey-serverless", {})
    assert ok["command_timeout_s"] == pytest.approx(0.30) and ok["retries"] == 0 and "timeout_warning" not in ok
    short = spec.deployment(dataclasses.replace(workload(), turn_budget_ms=300), "valkey-serverless", {})
    assert "timeout_warning" in short and short["timeout_breaks_below_budget_s"] > 0.3


def test_the_plan_holds_python_floats_even_from_numpy_inputs():
    import numpy as np

    plan = timeouts.plan(budget_s=np.float64(2.0), origin_p99_s=timeouts.origin_p99_s(np.int64(120) / 1000, 0.25))
    assert all(type(v) in (int, float, bool) for v in plan.as_dict().values()), plan
