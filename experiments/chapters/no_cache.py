"""The no-cache chapter's numbers, findings and ledger rows, computed from its experiments' results."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments import claims, rules
from experiments.findings import Timing, timing
from experiments.models import fanout, flashsale
from experiments.models.costmodel import CostInputs, break_even_outage_s, cost_ratio
from experiments.models.flashsale import origin_share
from experiments.probes import collapse as collapse_probe
from experiments.probes.collapse import LIVE_SETUP
from experiments.results import Results, declared
from experiments.seed import LAUNCH_INPUTS, LAUNCH_RECONCILED, figure, launch_capacity_per_s, launch_reads_per_s, origin_table

PROOF = "no-cache.ipynb"

FANOUT_CALLS = 3
"""Q2's turn: "product detail + recommendation + promotion = 3 calls in parallel"."""

RECO_SIGMA = float(origin_table().set_index("family").loc["reco", "latency_sigma"])
"""The spread of a 350 ms origin call (the recommendation service's, ``data/origins.csv``): Q2's calls have the
recommendation's median, and the note gives no spread."""


@dataclass
class NoCacheResults(Results):
    """What the chapter modelled and measured: the launch and fan-out models, the cost inputs and safe-to-cache
    rules, the collapse probe's declared summary (`experiments.results`), and the launch read as one burst
    (`flashsale.launch_readings`)."""

    launches: pd.DataFrame
    collapse: pd.DataFrame = declared(collapse_probe.SUMMARY)
    fanout: pd.DataFrame
    cost: CostInputs
    rules: pd.DataFrame
    readings: pd.DataFrame
    launch_seconds: pd.DataFrame


def _launch(r: NoCacheResults, label: str) -> pd.Series:
    return r.launches.set_index("launch").loc[label]


def _rule(r: NoCacheResults, family: str) -> pd.Series:
    return r.rules.set_index("family").loc[family]


def _reading(r: NoCacheResults, label: str, column: str) -> float:
    """A column of `flashsale.launch_readings` for the reading named ``label``."""
    return float(r.readings.set_index("reading")[column].loc[label])


def headline(r: NoCacheResults) -> dict[str, float]:
    """Numbers quoted by the chapter's prose and the decision record."""
    base, shed = _launch(r, "no cache"), _launch(r, "no cache, catalog sheds expired requests")
    wide = _launch(r, "no cache, scaled to 20x")
    fan = r.fanout.set_index("hit_rate")
    plain, cached = r.collapse.set_index("setup").loc["no cache"], r.collapse.set_index("setup").loc["cache-aside on Redis"]
    numbers = {
        "stop_sim_s": base.sim_stop_s, "stop_model_s": base.model_stop_s,
        "answered_no_cache_pct": base.answered_pct, "answered_shed_pct": shed.answered_pct,
        "shed_peak_p99_ms": shed.peak_p99_ms,
        "sustained_per_user_per_s": launch_reads_per_s() / figure("launch_users"),
        "launch_reads_per_s": launch_reads_per_s(), "launch_capacity_per_s": launch_capacity_per_s(),
        "burst_edge_requests": flashsale.burst_absorbed_up_to(flashsale.Launch()),
        "closed_loop_response_s": figure("launch_users") / flashsale.Launch().capacity_per_s,
        "burst_once_answered_pct": _reading(r, "50,000 requests at one instant", "answered_model_pct"),
        "burst_double_answered_pct": _reading(r, "two reads per user at one instant", "answered_model_pct"),
        "burst_double_answered_sim_pct": _reading(r, "two reads per user at one instant", "answered_sim_pct"),
        "burst_1s_answered_pct": _reading(r, "50,000 requests over 1 s", "answered_model_pct"),
        "burst_worst_gap_pp": float((r.readings.answered_model_pct - r.readings.answered_sim_pct).abs().max()),
        "resume_20x_sim_s": wide.sim_resume_s, "resume_20x_model_s": wide.model_resume_s,
        "answered_20x_pct": wide.answered_pct,
        "answered_85_pct": _launch(r, "cache at 85 % hit").answered_pct,
        "answered_95_pct": _launch(r, "cache at 95 % hit").answered_pct,
        "answered_95_live_pct": _launch(r, "cache at 95 % hit, price and stock read live").answered_pct,
        "live_share_pct": 100 * figure("launch_live_share"),
        "live_catalog_load_x": figure("launch_users") / figure("catalog_concurrency")
        * origin_share(0.95, figure("launch_live_share")),
        "real_live_answered_pct": float(r.collapse.set_index("setup").loc[LIVE_SETUP, "answered_pct"]),
        "real_live_cost_points": live_cost_points(r)["points"], "real_live_cost_spread": live_cost_points(r)["spread"],
        "p99_95_ms": _launch(r, "cache at 95 % hit").peak_p99_ms,
        "wait_at_60s_s": float(r.launch_seconds[(r.launch_seconds.launch == "no cache")
                                                  & (r.launch_seconds.t_s == 60)].wait_p50_ms.iloc[0]) / 1000,
        "catalog_p99_at_60s_ms": float(r.launch_seconds[(r.launch_seconds.launch == "no cache")
                                                        & (r.launch_seconds.t_s == 60)].wait_p99_ms.iloc[0])
        + figure("launch_catalog_latency_ms"),
        "fan_p50_ms": float(fan.loc[0.0, "p50_ms"]), "fan_p50_mc_ms": float(fan.loc[0.0, "p50_mc_ms"]),
        "fan_p99_ms": float(fan.loc[0.0, "p99_ms"]),
        "fan_stated_within_pct": 100 * fanout.equal_calls_within(figure("fanout_p50_ms"), calls=FANOUT_CALLS,
                                                                 median_ms=figure("fanout_p50_ms"), sigma=RECO_SIGMA),
        "fan_stated_p50_ms": fanout.equal_calls_p50_ms(calls=FANOUT_CALLS, median_ms=figure("fanout_p50_ms"),
                                                      sigma=RECO_SIGMA),
        "fan_max_gap_pct": float((100 * (fan.p50_ms - fan.p50_mc_ms).abs() / fan.p50_mc_ms).max()),
        "fan_cached_p50_ms": float(fan.loc[0.95, "p50_ms"]), "fan_cached_p99_ms": float(fan.loc[0.95, "p99_ms"]),
        "fan_all_hit_pct": 100 * float(fan.loc[0.95, "all_three_hit"]),
        "real_plain_answered_pct": float(plain.answered_pct), "real_cached_answered_pct": float(cached.answered_pct),
        "real_plain_timeouts_pct": float(plain.timed_out_pct), "real_cached_hit_pct": float(cached.hit_pct),
        "real_requests": int(plain.requests), "real_capacity_per_s": float(plain.capacity_per_s),
        "real_plain_goodput_per_s": float(plain.origin_goodput_per_s),
        "cost_ratio_pct": 100 * cost_ratio(r.cost), "break_even_s": break_even_outage_s(r.cost, sale_hours=24),
        "price_range_ttl_s": float(_rule(r, "price_range").ttl_s),
        "genre_ttl_h": float(_rule(r, "genre_taxonomy").ttl_s) / 3600,
    }
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in numbers.items()}


def live_cost_points(r: NoCacheResults) -> dict[str, float]:
    """Points of answers in time that live price and stock reads cost cache-aside on the real servers, with the
    spread between the runs' seconds (reported, not asserted)."""
    real = r.collapse.set_index("setup")
    cached, live = real.loc["cache-aside on Redis"], real.loc[LIVE_SETUP]
    return {"points": float(cached.answered_pct - live.answered_pct),
            "spread": float(cached.answered_spread_pct + live.answered_spread_pct)}


def findings(r: NoCacheResults) -> dict[str, bool | Timing]:
    """The chapter's conclusions as statements that must hold (asserted; compared by nbval). The real-server
    shares are timings: they hold only three spreads (between the run's seconds) beyond their thresholds. What
    live price and stock reads cost cache-aside on the real servers (`live_cost_points`) is within three of its
    spreads of any threshold worth stating: it is reported; the launch model's finding on live reads is the
    asserted one."""
    h = headline(r)
    real = r.collapse.set_index("setup")
    plain, cached = real.loc["no cache"], real.loc["cache-aside on Redis"]
    return {
        "the fluid model and the simulation agree within 2 s on when answers stop":
            abs(h["stop_sim_s"] - h["stop_model_s"]) <= 2,
        "they agree within 15 s on when a 20x scale-up brings answers back":
            abs(h["resume_20x_sim_s"] - h["resume_20x_model_s"]) <= 15,
        "without a cache or shedding, under 1 % of the launch's requests are answered in time":
            h["answered_no_cache_pct"] < 1,
        "shedding expired requests keeps the catalog answering (over 30 % of the launch)": h["answered_shed_pct"] > 30,
        "if every read were cacheable, a 95 % cache would answer every request of the launch in time":
            h["answered_95_pct"] > 99.9,
        "with the launch's price and stock reads live, a 95 % cache answers under a quarter of it in time":
            h["answered_95_live_pct"] < 25,
        "on real servers, cache-aside answered at least twice the share in time that no cache did":
            timing(h["real_cached_answered_pct"] - 2 * h["real_plain_answered_pct"], above=0, unit="points",
                   spread=float(cached.answered_spread_pct + 2 * plain.answered_spread_pct)),
        "the analytic fan-out p50 is within 2 % of Monte Carlo at every hit rate": h["fan_max_gap_pct"] < 2,
        "read as one burst, the note's 50,000 requests are all answered in time even at one instant, and two reads per "
        "user under 90 % (model and simulation within 3 points): the collapse needs an offered load above capacity "
        "for longer than the timeout absorbs":
            h["burst_once_answered_pct"] > 99 and h["burst_double_answered_pct"] < 90 and h["burst_worst_gap_pp"] < 3,
        "with the note's family medians (120/350/80 ms) a turn's p50 is the recommendation's 350 ms within 1 %":
            abs(h["fan_p50_ms"] - 350) / 350 < 0.01,
        "with the seed's inputs the cost share is 0.02 %": math.isclose(h["cost_ratio_pct"], figure("cost_share_pct")),
        "the rule never caches prices and caches the genre taxonomy for hours":
            _rule(r, "price").decision == "never cache" and h["genre_ttl_h"] >= 1,
    }


DYNAMODB_DEFAULT_READ_STRONG = False
"""Documented: DynamoDB's GetItem is eventually consistent unless ConsistentRead is set (DynamoDB developer
guide, "Read consistency")."""


def record_claims(ledger, r: NoCacheResults) -> pd.DataFrame:
    """This chapter's ledger rows: each verdict is its rule applied to the results."""
    h = headline(r)
    rec = ledger.record
    launch = {"inputs": LAUNCH_INPUTS, "reconciled": LAUNCH_RECONCILED}
    rec("no-cache.always-fresh", claim="Without a cache nothing served is stale", seed_value="always fresh",
        measured="every read goes to the origin; as fresh as the origin's own reads",
        rule=rules.parts({"no cached copy exists to go stale": True}),  # by construction
        proof=f"{PROOF}#q3-a-rule-for-what-is-safe-to-cache")
    ratio = figure("launch_users") / figure("catalog_concurrency")
    rec("no-cache.10x", claim="50,000 concurrent requests are 10x the catalog's planned 5,000", seed_value="10x",
        measured=f"{ratio:.0f}x", rule=rules.close_to(10, ratio, unit="x", tolerance=0.01),
        inputs=("launch_users", "catalog_concurrency"),
        judges="launch_load_multiple", proof=f"{PROOF}#failure-the-flash-sale-collapse")
    timeout_ms = figure("catalog_timeout_ms")
    rec("no-cache.p99-3000", claim="Overloaded, the catalog's P99 grows from 120 ms to 3,000 ms",
        seed_value="3,000 ms",
        measured=(f"it depends on the pool's queue, which the note does not bound: first-come-first-served waits grow "
                  f"without bound (a minute in, P99 {h['catalog_p99_at_60s_ms'] / 1000:,.0f} s, the median "
                  f"{h['wait_at_60s_s']:,.0f} s); a pool that refuses what it "
                  f"cannot answer within the clients' {timeout_ms:,.0f} ms answers at P99 {h['shed_peak_p99_ms']:,.0f} ms"),
        rule=rules.depends_on("how the saturated connection pool queues (the note: \"connections are queued\", no bound)", {
            "an unbounded first-come-first-served queue (the chapter's simulation)": rules.close_to(
                figure("catalog_p99_overload_ms"), h["catalog_p99_at_60s_ms"], unit="ms (P99 wait + median service, a minute in)",
                tolerance=0.25, partly=1.0),
            f"a pool that refuses what it cannot answer in {timeout_ms:,.0f} ms": rules.close_to(
                figure("catalog_p99_overload_ms"), h["shed_peak_p99_ms"], unit="ms (P99 of the answers, worst second)",
                tolerance=0.25, partly=1.0)}),
        inputs=("catalog_timeout_ms", *LAUNCH_INPUTS), judges="catalog_p99_overload_ms", reconciled=LAUNCH_RECONCILED,
        proof=f"{PROOF}#failure-the-flash-sale-collapse")
    rec("no-cache.every-timeout", claim="Every request times out", seed_value="every request",
        measured=(f"{h['answered_no_cache_pct']:.2f} % answered in time over the launch (FCFS, no shedding); "
                  f"{h['answered_shed_pct']:.0f} % if the catalog drops what it cannot answer in time; as one burst of "
                  f"50,000 at one instant, {h['burst_once_answered_pct']:.0f} %"),
        rule=claims.launch_reading(
            rules.parts({"first come first served: under 1 % answered in time": h["answered_no_cache_pct"] < 1,
                         "a catalog that sheds expired requests: under 1 % too": h["answered_shed_pct"] < 1}),
            rules.parts({"first come first served: under 1 % answered in time": h["burst_once_answered_pct"] < 1})),
        **launch, proof=f"{PROOF}#the-launch-s-size-is-a-reading")
    rec("no-cache.cost-0.02", claim="The cache costs 0.02 % of the revenue it protects", seed_value="0.02 %",
        measured=(f"{h['cost_ratio_pct']:.2f} % only if the whole $2M sale would be lost; the cache pays for itself "
                  f"if it prevents {h['break_even_s']:.0f} s of outage in a 24-hour sale — but with the launch's price "
                  f"and stock reads live a 95 % cache answers {h['answered_95_live_pct']:.1f} % of it in time; arriving "
                  f"once, {h['burst_once_answered_pct']:.0f} % of the 50,000 are answered without any cache"),
        rule=claims.launch_reading(
            rules.parts({"$400 a month is 0.02 % of $2M": abs(h["cost_ratio_pct"] - figure("cost_share_pct")) < 0.002,
                         "without a cache the launch is lost (under 1 % answered, FCFS)": h["answered_no_cache_pct"] < 1,
                         "... even if the catalog sheds what it cannot answer": h["answered_shed_pct"] < 1,
                         "with a cache, the launch is answered (over 50 %) though price and stock are live":
                         h["answered_95_live_pct"] > 50}),
            rules.parts({"$400 a month is 0.02 % of $2M": abs(h["cost_ratio_pct"] - figure("cost_share_pct")) < 0.002,
                         "without a cache the burst is lost (under half answered), so the cache protects the sale":
                         h["burst_once_answered_pct"] < 50})),
        inputs=("cache_cost_per_month", "sale_revenue", "cost_share_pct", "launch_live_share", "planned_hit_rate",
                *LAUNCH_INPUTS),
        reconciled=f"{LAUNCH_RECONCILED}; the cache's 95 % is the hit rate the Memcached scenario plans",
        proof=f"{PROOF}#cost-per-revenue")
    rec("no-cache.q1-autoscaling", claim="Autoscaling takes 90-180 s while the spike takes 15 s",
        seed_value="90-180 s vs 15 s",
        measured=("in the gap the catalog answers nothing in time (FCFS) and a scale-up to the offered load never "
                  "drains the backlog"),
        rule=rules.unmeasurable("the ECS scaling times are the note's, taken as inputs: no ECS here to time"),
        inputs=("autoscale_min_s", "autoscale_max_s", "spike_s"), proof=f"{PROOF}#q1-the-autoscaling-gap")
    stated = figure("fanout_p50_ms")
    rec("no-cache.q2-p50-350", claim="Three parallel origin calls at a 350 ms median each give a P50 of 350 ms",
        seed_value="350 ms",
        measured=(f"a turn waits for the slowest call: it is within {stated:.0f} ms only when all three are, "
                  f"{h['fan_stated_within_pct']:.1f} % of turns (any spread), not 50 %; its P50 is "
                  f"{h['fan_stated_p50_ms']:.0f} ms at the origins' spread (sigma {RECO_SIGMA}). With the note's own "
                  f"family medians (120/350/80 ms) it would be {h['fan_p50_ms']:.0f} ms"),
        rule=rules.close_to(stated, h["fan_stated_p50_ms"], unit="ms (median turn, origins' spread)", tolerance=0.05,
                            partly=0.25),
        judges="fanout_p50_ms", proof=f"{PROOF}#q2-fan-out-latency")
    rec("no-cache.q2-cached-p50-2", claim="With a cache the P50 is 2 ms", seed_value="2 ms",
        measured=(f"P50 {h['fan_cached_p50_ms']:.0f} ms at 95 % hit ({h['fan_all_hit_pct']:.0f} % of turns hit on all "
                  f"three calls), but P99 stays {h['fan_cached_p99_ms']:.0f} ms"),
        rule=rules.at_most(figure("cached_p50_ms"), h["fan_cached_p50_ms"], unit="ms", partly=5),
        inputs=("planned_hit_rate",), judges="cached_p50_ms", reconciled="the hit rate is the Memcached scenario's planned "
        "95 %, the only planned hit rate the note states", proof=f"{PROOF}#q2-fan-out-latency")
    rec("no-cache.q3-price-range", claim="Price-range context could be cached though prices cannot",
        seed_value="(question)",
        measured=f"the rule caches it with a TTL up to {h['price_range_ttl_s']:.0f} s at a $10/day stale-cost budget",
        rule=rules.parts({"the rule caches price-range context": h["price_range_ttl_s"] > 0,
                          "the rule never caches prices": _rule(r, "price").decision == "never cache"}),
        proof=f"{PROOF}#q3-a-rule-for-what-is-safe-to-cache")
    rec("no-cache.heuristic", claim="No cache only for low traffic or data whose staleness causes harm",
        seed_value="prices, order status",
        measured="the rule never caches prices or order status; everything else it caches under a stale-cost budget",
        rule=rules.parts({"the rule never caches prices": _rule(r, "price").decision == "never cache",
                          "nor order status": _rule(r, "order_status").decision == "never cache",
                          "it caches the rest": bool(r.rules[~r.rules.family.isin(["price", "order_status"])]
                                                     .decision.str.startswith("cache").all())}),
        proof=f"{PROOF}#no-cache-decision-heuristic")
    rec("no-cache.table.latency", claim="Without a cache reads take 80-350 ms", seed_value="80-350ms",
        measured=f"turn P50 {h['fan_p50_ms']:.0f} ms, P99 {h['fan_p99_ms']:.0f} ms",
        rule=rules.parts({"a turn's median lies in 80-350 ms": 80 <= h["fan_p50_ms"] <= 1.01 * 350,
                          "its P99 does too": h["fan_p99_ms"] <= 1.01 * 350}),
        proof=f"{PROOF}#q2-fan-out-latency")
    rec("no-cache.table.consistency", claim="Without a cache consistency is perfect", seed_value="Perfect",
        measured="as consistent as the origin's reads (DynamoDB's default reads are eventually consistent)",
        rule=rules.parts({"no cached copy can disagree with the origin": True,  # by construction
                          "the origin's default reads are strongly consistent": DYNAMODB_DEFAULT_READ_STRONG}),
        proof=f"{PROOF}#q3-a-rule-for-what-is-safe-to-cache")
    rec("no-cache.table.failure-risk", claim="Origin services collapse under flash-sale load",
        seed_value="collapse", measured=(f"simulated: {h['answered_no_cache_pct']:.2f} % answered; on real servers "
                                         f"{h['real_plain_answered_pct']:.0f} % at 5x capacity"),
        rule=claims.launch_reading(
            rules.parts({"the simulated launch: under 1 % answered in time": h["answered_no_cache_pct"] < 1,
                         "real servers at 5x capacity: under half answered": h["real_plain_answered_pct"] < 50}),
            rules.parts({"the burst: under half answered in time": h["burst_once_answered_pct"] < 50})),
        **launch, proof=f"{PROOF}#the-launch-s-size-is-a-reading")
    return ledger.table()


def summary_row(h: dict[str, float]) -> pd.DataFrame:
    """The seed's summary-table row for no cache beside the row this chapter measured, from its
    `headline` numbers (which the summary chapter reads back from the results)."""
    return pd.DataFrame([
        {"column": "Latency", "seed": "80-350ms", "measured": f"turn P50 {h['fan_p50_ms']:.0f} ms, P99 {h['fan_p99_ms']:.0f} ms"},
        {"column": "Invalidation", "seed": "N/A (always fresh)", "measured": "none needed"},
        {"column": "Consistency", "seed": "Perfect", "measured": "the origin's own (eventually consistent reads)"},
        {"column": "Key failure risk", "seed": "Origin services collapse under flash sale load",
         "measured": f"{h['answered_no_cache_pct']:.2f} % of a launch at 10x capacity answered in time (autoscaling alone "
                     f"never recovers); as one burst of 50,000, {h['burst_once_answered_pct']:.0f} %"},
    ])
