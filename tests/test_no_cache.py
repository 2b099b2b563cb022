"""The no-cache chapter: the launch simulation against its fluid model, the real collapse on loopback,
fan-out order statistics against Monte Carlo, the cost model and the safe-to-cache rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from chapter_contract import ChapterContract

from experiments.chapters import no_cache as chapter
from experiments.errors import ParameterError
from experiments.lab.processes import running
from experiments.lab.servers import RedisServer
from experiments.ledger import Ledger
from experiments.models import costmodel, fanout, flashsale, safetocache
from experiments.probes import collapse


def test_fluid_model_and_simulation_agree_on_the_outage():
    for launch in (flashsale.Launch(), flashsale.Launch(scale_to=20.0)):
        summary = flashsale.summarize(flashsale.simulate(launch, seed=2), flashsale.fluid(launch), launch)
        assert abs(summary["sim_stop_s"] - summary["model_stop_s"]) <= 2
    assert abs(summary["sim_resume_s"] - summary["model_resume_s"]) <= 15


def test_shedding_and_caches_change_the_outcome():
    shed = flashsale.Launch(shed_expired=True)
    cached = flashsale.Launch(hit_rate=0.95)
    for launch, low in ((shed, 30.0), (cached, 99.9)):
        summary = flashsale.summarize(flashsale.simulate(launch, seed=3), flashsale.fluid(launch), launch)
        assert summary["answered_pct"] > low


def test_a_burst_is_absorbed_up_to_what_the_catalog_serves_before_the_timeout():
    """The fluid burst model against the simulation, and the edge: (timeout - service) x capacity at once."""
    launch = flashsale.Launch()
    edge = flashsale.burst_absorbed_up_to(launch)
    assert edge == pytest.approx((2.0 - 0.12) * 5000 / 0.12)
    assert flashsale.burst_answered(launch, 0.9 * edge, 0.001) == 1.0
    for n in (1.3 * edge, 2.5 * edge):
        model = flashsale.burst_answered(launch, n, 0.001)
        assert model == pytest.approx(edge / n, rel=0.01)
        assert flashsale.burst_simulated(launch, n, 0.001, seed=3) == pytest.approx(model, abs=0.02)
    assert flashsale.burst_answered(launch, 50_000, 15) == 1.0  # under capacity
    assert flashsale.burst_answered(launch, 2 * edge, 0) == pytest.approx(0.5)  # at one instant: the edge's share


def test_live_reads_reach_the_catalog_whatever_the_hit_rate():
    assert flashsale.origin_share(0.95, 0.0) == pytest.approx(0.05)
    assert flashsale.origin_share(1.0, 0.5) == pytest.approx(0.5)  # a perfect cache still leaves every live read
    live = flashsale.Launch(hit_rate=0.95, live_share=0.5)
    assert live.offered_per_s == pytest.approx(10 * live.capacity_per_s * 0.525)
    summary = flashsale.summarize(flashsale.simulate(live, seed=3), flashsale.fluid(live), live)
    assert summary["answered_pct"] < 25  # the tail after autoscaling; 100 % if every read were cacheable


def test_live_reads_on_real_servers_bypass_the_cache():
    with RedisServer(name="redis-collapse") as server:
        frame = collapse.run(workers=4, rate_per_s=50, duration_s=2, redis_server=server, live_share=1.0, seed=5)
    assert (frame.outcome != "hit").all()  # every request went to the origin
    with pytest.raises(ParameterError, match="live_share"):
        collapse.run(workers=4, rate_per_s=50, duration_s=1, live_share=1.5)


@pytest.mark.parametrize("hit_rate", [0.0, 0.5, 0.95])
def test_fan_out_p50_within_2_percent_of_monte_carlo(hit_rate):
    analytic = fanout.turn_quantile(0.5, hit_rate=hit_rate)
    simulated = float(pd.Series(fanout.monte_carlo(200_000, hit_rate=hit_rate, seed=4)).quantile(0.5))
    assert abs(analytic - simulated) / simulated < 0.02
    if hit_rate == 0.0:
        assert analytic == pytest.approx(350, rel=0.01)


def test_three_calls_at_one_median_as_the_note_states():
    """All three within their common median in 1/8 of turns, whatever the spread; the median turn by the closed
    form matches a Monte Carlo of the same turns."""
    for sigma in (0.1, 0.25, 0.6):
        assert fanout.equal_calls_within(350, calls=3, median_ms=350, sigma=sigma) == pytest.approx(0.125)
    rng = np.random.default_rng(3)
    turns = rng.lognormal(np.log(350), 0.25, (200_000, 3)).max(axis=1)
    assert fanout.equal_calls_p50_ms(calls=3, median_ms=350, sigma=0.25) == pytest.approx(np.median(turns), rel=0.01)
    assert fanout.equal_calls_p50_ms(calls=1, median_ms=350, sigma=0.25) == pytest.approx(350)


@pytest.mark.chapter_run  # nbval runs the collapse; make soak repeats it
def test_real_collapse_is_bounded_and_leaves_nothing_running():
    with RedisServer(name="redis-collapse") as server:
        plain = collapse.run(workers=4, rate_per_s=4 / 0.12 * 5, duration_s=2, seed=5)
        cached = collapse.run(workers=4, rate_per_s=4 / 0.12 * 5, duration_s=3, redis_server=server, seed=5)
        left = list(server.client().scan_iter("cachebook:collapse:*"))
        pid = server.pid
    in_time = lambda frame: frame.outcome.isin(["answered", "hit"]).mean()
    assert len(plain) < 400 and in_time(plain) < 0.5 and in_time(cached) > in_time(plain)
    assert left == [] and not running(pid)
    with pytest.raises(ParameterError):
        collapse.run(workers=4, rate_per_s=10_000, duration_s=60)


def test_cost_model():
    base = costmodel.CostInputs()
    assert costmodel.cost_ratio(base) == pytest.approx(0.0002)
    assert costmodel.break_even_outage_s(base, sale_hours=24) == pytest.approx(17.28)
    table = costmodel.sensitivity(base, factors=[0.1, 1, 10]).set_index(["input", "factor"])
    assert table.loc[("cache cost per month", 10), "cost_per_protected_pct"] == pytest.approx(0.2)
    assert table.loc[("outage probability", 10), "cost_per_protected_pct"] == pytest.approx(0.02)  # capped at 1


def test_safe_to_cache_rule_on_obvious_cases():
    def decide(**kwargs):
        base = dict(changes_per_day=1, reads_per_s=10, stale_cost_usd=0.01, legal_or_financial=False,
                    budget_usd_per_day=10)
        return safetocache.decide(**{**base, **kwargs})

    assert decide(legal_or_financial=True)["decision"] == "never cache"
    assert decide(changes_per_day=0.001)["ttl_s"] == 86_400  # capped at a day
    assert decide(changes_per_day=100, reads_per_s=100, stale_cost_usd=0.1)["decision"] == "cache with event invalidation"
    assert decide(changes_per_day=1e6, reads_per_s=1e4, stale_cost_usd=10)["decision"] == "do not cache"
    with pytest.raises(ParameterError):
        decide(reads_per_s=-1)
    rules = safetocache.apply(10.0).set_index("family")
    assert rules.loc["price", "decision"] == "never cache"
    assert rules.loc["genre_taxonomy", "ttl_s"] >= 3600 and 0 < rules.loc["price_range", "ttl_s"] < 86_400


@pytest.fixture(scope="module")
def results():
    seconds, _, launches = flashsale.compare(flashsale.scenarios(), seed=1)
    table = collapse.SUMMARY.frame([
        {"setup": "no cache", "requests": 2000, "answered_pct": 8.0, "timed_out_pct": 92.0, "hit_pct": 0.0,
         "origin_goodput_per_s": 27.0, "capacity_per_s": 66.7, "answered_spread_pct": 3.0, "p50_ms": 1500.0,
         "p99_ms": 1990.0},
        {"setup": "cache-aside on Redis", "requests": 2000, "answered_pct": 86.0, "timed_out_pct": 14.0,
         "hit_pct": 75.0, "origin_goodput_per_s": 37.0, "capacity_per_s": 66.7, "answered_spread_pct": 4.0,
         "p50_ms": 1.0, "p99_ms": 1500.0},
        {"setup": collapse.LIVE_SETUP, "requests": 2000, "answered_pct": 45.0, "timed_out_pct": 55.0,
         "hit_pct": 40.0, "origin_goodput_per_s": 30.0, "capacity_per_s": 66.7, "answered_spread_pct": 5.0,
         "p50_ms": 800.0, "p99_ms": 1980.0}])
    return chapter.NoCacheResults(
        launches=launches, collapse=table, fanout=fanout.table([0.0, 0.95], turns=100_000, seed=1),
        cost=costmodel.CostInputs(), rules=safetocache.apply(10.0), launch_seconds=seconds,
        readings=flashsale.launch_readings(flashsale.Launch(), sustained_answered_pct=0.2, seed=1))


class TestNoCacheChapter(ChapterContract):
    chapter = chapter

    def breakages(self):
        def answered(r): r.launches.loc[r.launches.launch == "no cache", "answered_pct"] = 40.0
        def live_answered(r):
            r.launches.loc[r.launches.launch == "cache at 95 % hit, price and stock read live", "answered_pct"] = 60.0
        def weak_cache(r): r.collapse.loc[r.collapse.setup == "cache-aside on Redis", "answered_pct"] = 9.0
        def cached_price(r): r.rules.loc[r.rules.family == "price", "decision"] = "cache with TTL"
        def noisy_cache(r): r.collapse.loc[r.collapse.setup == "cache-aside on Redis", "answered_spread_pct"] = 25.0
        def slow_burst(r): r.readings["answered_model_pct"] = 50.0
        return [(slow_burst, "read as one burst, the note's 50,000 requests are all answered in time even at one "
                             "instant, and two reads per user under 90 % (model and simulation within 3 points): the "
                             "collapse needs an offered load above capacity for longer than the timeout absorbs"),
                (noisy_cache, "on real servers, cache-aside answered at least twice the share in time that no cache did"),
                (answered, "without a cache or shedding, under 1 % of the launch's requests are answered in time"),
                (weak_cache, "on real servers, cache-aside answered at least twice the share in time that no cache did"),
                (cached_price, "the rule never caches prices and caches the genre taxonomy for hours"),
                (live_answered,
                 "with the launch's price and stock reads live, a 95 % cache answers under a quarter of it in time")]

    def test_verdicts(self, results):
        table = chapter.record_claims(Ledger("no-cache"), results).set_index("claim_id")
        # the P99 depends on the pool's queue (unbounded FCFS fails, a pool bounded at the timeout partly);
        # three 350 ms calls are all within 350 ms in 1/8 of turns, not half
        assert table.loc["no-cache.p99-3000", "verdict"] == "depends"
        # the collapse rests on the reading of "50,000 concurrent": sustained, it holds; one burst, it is answered
        assert table.loc["no-cache.every-timeout", "verdict"] == "depends"
        assert table.loc["no-cache.table.failure-risk", "verdict"] == "depends"
        assert table.loc["no-cache.q2-p50-350", "verdict"] == "partly"  # a median turn of 430 ms, 23 % over
        assert "12.5 % of turns" in table.loc["no-cache.q2-p50-350", "measured"]
        assert len(chapter.summary_row(chapter.headline(results))) == 4
