"""The in-process chapter's numbers, findings and ledger rows, computed from its experiments' results."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments import rules
from experiments.caches import nearcache
from experiments.findings import AllOf, Timing, timing
from experiments.measure import chunk_stats, spread_between_rounds
from experiments.models.deployment import PromoTraffic
from experiments.models.taskcache import TaskTraffic
from experiments.models.taskstale import chance_at_least, model_stale_share
from experiments.probes import gcpause
from experiments.probes.gcpause import entries_for_pause, full_collection_interval_s, tracked_per_turn_for_share
from experiments.results import Results, declared
from experiments.seed import PRODUCT_READS_INPUTS, PROMO_READS_INPUTS, figure, product_reads_per_s, promo_reads_per_s

PROOF = "in-process-lru.ipynb"
TASKS = int(figure("task_count"))
PROMO_TTL_S = figure("promo_ttl_s")
PRODUCT_TTL_S = figure("product_cache_ttl_s")


GC_TURN_MESSAGES = (20, 200, 1000)
"""Turn sizes (messages of history a turn parses and holds) for the GC-under-traffic run. 20 is the
representative turn (ours: the note does not describe its request path); 200 and 1,000 stand for request
paths that keep more Python objects alive per turn (long histories, parsed LLM payloads, framework objects)."""
GC_SHARE_FOR_P99_PCT = 1.0
"""The share of the time in full collections needed to move P99: a pause in fewer than 1 % of the turns
cannot reach the 99th percentile."""


def gc_traffic_setting() -> dict[str, float]:
    """Turns per task per second and how long each turn's objects live, for `gcpause.under_traffic`: the
    product read rate per task (40,000/min over 60 tasks) and the note's P99 turn time of 1.9 s, an upper
    end of a turn's lifetime."""
    return {"turns_per_s": product_reads_per_s() / TASKS, "in_flight_s": figure("p99_before_s"),
            "entries": int(figure("product_cache_entries")), "ttl_s": PRODUCT_TTL_S}


def product_traffic(alpha: float = 1.0) -> TaskTraffic:
    """The seed's product reads (a catalog sized for 2,000 requests/min at 95 % hit) over 500K ASINs."""
    return TaskTraffic(catalog=int(figure("dax_catalog")), alpha=alpha, reads_per_s=product_reads_per_s())


def promo_traffic() -> PromoTraffic:
    """Promotion reads at the rate the seed's 40,000 users in 60 s imply, over its 200 categories and 60 tasks."""
    return PromoTraffic(reads_per_s=promo_reads_per_s(),
                        categories=int(figure("promo_categories")), tasks=TASKS, ttl_s=PROMO_TTL_S)


@dataclass
class InProcessResults(Results):
    """What the chapter modelled and measured: the per-task cache models and simulations, and the probes'
    declared tables and records (`experiments.results`): GC pauses, the near cache's fleet."""

    alpha: float
    sweep: pd.DataFrame
    q1: dict
    moving: pd.DataFrame
    benchmark: dict
    stale: pd.DataFrame
    after_rollout: pd.DataFrame
    deploy: pd.DataFrame
    deploy_summary: pd.DataFrame
    gc: pd.DataFrame = declared(gcpause.SWEEP)
    gc_traffic: pd.DataFrame = declared(gcpause.UNDER_TRAFFIC)
    near_ms: np.ndarray
    near_compare: pd.DataFrame = declared(nearcache.COMPARE_WITH_TTL)
    drop_tracking: dict = declared(nearcache.LINK_DROP)
    drop_naive: dict = declared(nearcache.LINK_DROP)
    fleet_status: pd.DataFrame = declared(nearcache.FLEET_STATUS)
    odd_tasks: list
    lookup_ms: np.ndarray


def _deploy(r: InProcessResults, name: str) -> pd.Series:
    return r.deploy_summary.set_index("change").loc[name]


def headline(r: InProcessResults) -> dict[str, float]:
    """Numbers quoted by the chapter's prose and the decision record."""
    entries = int(figure("product_cache_entries"))
    gc_rows = r.gc.set_index(["representation", "entries"])
    parsed, raw = gc_rows.loc[("parsed JSON", entries)], gc_rows.loc[("bytes", entries)]
    five = r.stale.set_index("minutes_after_change").loc[5]
    share5 = float(model_stale_share(300, ttl_s=PROMO_TTL_S, reads_per_s_per_task=promo_traffic().reads_per_s / TASKS))
    interval = full_collection_interval_s(r.gc, entries=entries, ttl_s=PRODUCT_TTL_S)
    lazy_add = _deploy(r, "scale-out +10 tasks, lazy fill")
    origin_roll = _deploy(r, "rolling deploy, warm from origin")
    numbers = {
        "alpha": r.alpha, "max_gap_pp": float(r.sweep.gap_pp.abs().max()), "sweep_requests": int(r.sweep.requests.min()),
        "q1_hit_pct": 100 * r.q1["hit_rate"], "q1_hot_hit_pct": 100 * r.q1["hot_hit_rate"],
        "shared_hit_pct": 100 * float(r.sweep.shared_cache_hit_rate.iloc[0]),
        "q1_miss_ratio": (1 - r.q1["hit_rate"]) / (1 - figure("planned_hit_rate")),
        "hit_1_task_pct": 100 * float(r.sweep.set_index("tasks").simulated_hit_rate.iloc[0]),
        "hit_100_tasks_pct": 100 * float(r.sweep.set_index("tasks").simulated_hit_rate.iloc[-1]),
        "replay_per_s": r.benchmark["replay_per_s"], "cachetools_per_s": r.benchmark["cachetools_per_s"],
        "speedup": r.benchmark["speedup"],
        "stale_at_5_model": TASKS * share5, "stale_at_5_sim": float(five.simulated_mean_tasks),
        "stale_at_5_p95": float(five.simulated_p95_tasks),
        "chance_50_stale_pct": 100 * chance_at_least(int(figure("stale_tasks_at_5_min")), TASKS, share5),
        "stale_users_at_5_pct": 100 * share5,
        "rollout_stale_min": float(r.after_rollout.simulated_mean_tasks.min()),
        "rollout_stale_max": float(r.after_rollout.simulated_mean_tasks.max()),
        "rollout_end_for_50_s": float(r.after_rollout[r.after_rollout.simulated_mean_tasks.round()
                                                      == figure("stale_tasks_at_5_min")].rollout_ended_s_before.min()),
        "baseline_per_s": float(origin_roll.baseline_per_s),
        "roll_origin_peak_ratio": float(origin_roll.peak_over_baseline),
        "roll_lazy_peak_ratio": float(_deploy(r, "rolling deploy, lazy fill").peak_over_baseline),
        "roll_shared_peak_ratio": float(_deploy(r, "rolling deploy, warm from shared cache").peak_over_baseline),
        "roll_small_batches_peak_ratio": float(
            _deploy(r, "rolling deploy, warm from origin, batches of 2 every 20 s").peak_over_baseline),
        "coalescing_saved_calls": float(_deploy(r, "rolling deploy, lazy fill").extra_calls
                                        - _deploy(r, "rolling deploy, lazy fill, coalescing").extra_calls),
        "scale_lazy_first_minute_extra": float(lazy_add.first_minute_extra),
        "scale_origin_first_minute_extra": float(_deploy(r, "scale-out +10 tasks, warm from origin").first_minute_extra),
        "bytes_rss_mb": float(raw.rss_growth_mb), "parsed_rss_mb": float(parsed.rss_growth_mb),
        "bytes_gc_ms": float(raw.full_collect_p50_ms), "parsed_gc_ms": float(parsed.full_collect_p50_ms),
        "entries_for_20ms": entries_for_pause(r.gc, figure("gc_pause_low_ms")),
        "entries_for_80ms": entries_for_pause(r.gc, figure("gc_pause_high_ms")),
        "gc_interval_s": interval, "gc_time_share_pct": 100 * float(parsed.full_collect_p50_ms) / 1000 / interval,
        **_gc_under_traffic(r.gc_traffic),
        **_moving(r.moving),
        "task_budget_used_mb": figure("product_cache_mb") + figure("llm_buffer_mb") + figure("interpreter_mb"),
        "q1_cache_mb": figure("q1_entries") * figure("product_entry_kb") / 1000,
        "near_p50_ms": float(np.percentile(r.near_ms, 50)), "near_p99_ms": float(np.percentile(r.near_ms, 99)),
        "near_max_ms": float(r.near_ms.max()), "near_samples": len(r.near_ms),
        "near_hit_pct": 100 * float(r.near_compare.l1_hit_rate.iloc[0]),
        "near_stale_reads": int(r.near_compare.stale_reads.iloc[0]),
        "ttl_stale_pct": 100 * float(r.near_compare.stale_share.iloc[-1]),
        "lookup_p50_us": 1000 * float(np.percentile(r.lookup_ms, 50)),
        "lookup_p99_us": 1000 * float(np.percentile(r.lookup_ms, 99)),
    }
    return {key: value.item() if isinstance(value, np.generic) else value for key, value in numbers.items()}


def _moving(moving: pd.DataFrame) -> dict[str, float]:
    """How far popularity that moves shifts the per-task and the shared hit rate (rows: stationary, busy, stress)."""
    still, busy, stress = (moving.iloc[i] for i in range(3))
    return {"moving_busy_pp": float(busy.moved_pp), "moving_stress_pp": float(stress.moved_pp),
            "moving_stress_shared_pp": float(stress.shared_moved_pp),
            "moving_gap_still_pp": 100 * float(still.shared_simulated_hit_rate - still.simulated_hit_rate),
            "moving_gap_stress_pp": 100 * float(stress.shared_simulated_hit_rate - stress.simulated_hit_rate)}


def _gc_under_traffic(traffic: pd.DataFrame) -> dict[str, float]:
    rows = traffic.set_index("messages")
    light, heavy = rows.loc[GC_TURN_MESSAGES[0]], rows.loc[GC_TURN_MESSAGES[-1]]
    return {"gc_turns_per_s": gc_traffic_setting()["turns_per_s"], "gc_in_flight": int(light.in_flight),
            "gc_traffic_s": float(light.traffic_s), "gc_light_tracked": int(light.tracked_per_turn),
            "gc_light_collections": int(light.full_collections), "gc_light_share_pct": float(light.gc_time_share_pct),
            "gc_heavy_tracked": int(heavy.tracked_per_turn), "gc_heavy_interval_s": float(heavy.interval_s),
            "gc_heavy_share_pct": float(heavy.gc_time_share_pct), "gc_heavy_pause_ms": float(heavy.pause_p50_ms),
            "gc_tracked_for_p99": tracked_per_turn_for_share(traffic, GC_SHARE_FOR_P99_PCT)}


def gc_pause_spread(r: InProcessResults) -> float:
    """The relative spread of a full collection's pause between repeats (5,000 parsed products): the GC shares
    are that pause over an interval counted from objects, so they move with it and nothing else."""
    row = r.gc.set_index(["representation", "entries"]).loc[("parsed JSON", int(figure("product_cache_entries")))]
    return float(row.full_collect_spread_ms / row.full_collect_p50_ms)


def findings(r: InProcessResults) -> dict[str, bool | Timing | AllOf]:
    """The chapter's conclusions as statements that must hold (asserted; compared by nbval). Timings hold only
    three spreads between rounds beyond their thresholds (`experiments.findings`)."""
    h = headline(r)
    gc_rows = r.gc.set_index(["representation", "entries"])
    entries = int(figure("product_cache_entries"))
    parsed, raw = gc_rows.loc[("parsed JSON", entries)], gc_rows.loc[("bytes", entries)]
    relative = gc_pause_spread(r)
    bench = r.benchmark
    return {
        "the per-task model is within 2 points of the simulation for every task count": h["max_gap_pp"] < 2,
        "the compiled replay runs over 2 million requests/s and 10x the cachetools loop, with the same hits":
            AllOf((timing(h["replay_per_s"], above=2e6, spread=bench["replay_spread_per_s"], unit="requests/s"),
                   timing(h["speedup"], above=10, spread=bench["replay_spread_per_s"] / bench["cachetools_per_s"]),
                   bool(bench["same_hits"]))),
        "50 tasks x 1,000 entries hit at least 5 points less than one shared cache": h["shared_hit_pct"] - h["q1_hit_pct"] > 5,
        "five new products a minute move the per-task hit rate by under 1 point":
            abs(h["moving_busy_pp"]) < 1,
        "renewing the hot set every minute widens the per-task caches' gap to a shared cache by over 2 points":
            h["moving_gap_stress_pp"] - h["moving_gap_still_pp"] > 2,
        "5 minutes after the change the model and the simulation agree within 1 task":
            abs(h["stale_at_5_model"] - h["stale_at_5_sim"]) < 1,
        "50 of 60 stale tasks at 5 minutes has under 1 % probability": h["chance_50_stale_pct"] < 1,
        "warming from the origin at start-up sends at least 60x the baseline to the Promotions service":
            h["roll_origin_peak_ratio"] >= 60,
        "warming from a shared cache keeps the peak under 15x the baseline": h["roll_shared_peak_ratio"] < 15,
        "batches of 2 cut the warm-from-origin peak at least 4x":
            h["roll_origin_peak_ratio"] / h["roll_small_batches_peak_ratio"] >= 4,
        "5,000 parsed products take more memory and a longer full collection than 5,000 as bytes":
            # two interpreters' independent repeats: the difference's spread is their root sum of squares
            AllOf((h["parsed_rss_mb"] > h["bytes_rss_mb"],
                   timing(h["parsed_gc_ms"] - h["bytes_gc_ms"], above=0, unit="ms",
                          spread=float(np.hypot(parsed.full_collect_spread_ms, raw.full_collect_spread_ms))))),
        "with the cache's own churn alone, full collections pause the task for under 1 % of the time":
            timing(h["gc_time_share_pct"], below=1, spread=relative * h["gc_time_share_pct"], unit="%"),
        "with a representative turn alive, full collections still take under 1 % of the time":
            timing(h["gc_light_share_pct"], below=GC_SHARE_FOR_P99_PCT, spread=relative * h["gc_light_share_pct"], unit="%"),
        "a request path holding thousands of objects per turn makes full collections 10x more frequent than churn":
            AllOf((h["gc_heavy_interval_s"] < 0.1 * h["gc_interval_s"],
                   timing(h["gc_heavy_share_pct"], above=GC_SHARE_FOR_P99_PCT, spread=relative * h["gc_heavy_share_pct"],
                          unit="%"))),
        "every task's near cache dropped a changed promotion within 50 ms (max)":
            timing(h["near_max_ms"], below=50, spread=spread_between_rounds(chunk_stats(r.near_ms)), unit="ms"),
        "the tracked near cache served no stale read; TTL-only caches did":
            h["near_stale_reads"] == 0 and h["ttl_stale_pct"] > 0,
        "after its invalidation link broke, the tracked near cache stayed fresh; the naive one did not":
            not r.drop_tracking["stale_after_reconnect"] and r.drop_tracking["read_while_down"] == "after"
            and r.drop_naive["stale_after_reconnect"],
        "the per-task status check names exactly the stale task": r.odd_tasks == [0],
        "after a rolling deployment, when it ended moves the stale count at 10:05 by 20 tasks or more":
            h["rollout_stale_max"] - h["rollout_stale_min"] >= 20,
    }


PROMO_RATE_RECONCILED = ("the in-process scenario gives no promotion read rate; the only one the note states is "
                         "its Memcached failure 1's 40,000 users within one 60 s poll")


def record_claims(ledger, r: InProcessResults) -> pd.DataFrame:
    """This chapter's ledger rows: each verdict is its rule applied to the measurements."""
    h = headline(r)
    rec = ledger.record
    rec("in-process-lru.sub-microsecond", claim="In-process cache reads take under a microsecond",
        seed_value="sub-microsecond",
        measured=(f"a TTLCache lookup of a cached product took {h['lookup_p50_us']:.2f} µs at the median "
                  f"(p99 {h['lookup_p99_us']:.2f} µs), timer included"),
        rule=rules.at_most(1.0, h["lookup_p50_us"], unit="µs", partly=3),
        judges="inprocess_read_us", proof=f"{PROOF}#best-case-no-network-hop")
    rec("in-process-lru.stale-50-of-60", claim="At 10:05, 50 of 60 tasks still serve the old promotion",
        seed_value="50 of 60",
        measured=(f"{h['stale_at_5_model']:.0f} expected, the tasks' fills independent of the change (simulated "
                  f"{h['stale_at_5_sim']:.1f}, 95th percentile {h['stale_at_5_p95']:.0f}; 50 or more has probability "
                  f"{h['chance_50_stale_pct']:.2f} %); the scale-out's new tasks fill after the change and are fresh. "
                  f"A rolling deployment (Q2, not this scenario) can leave {h['rollout_stale_min']:.0f}–"
                  f"{h['rollout_stale_max']:.0f}"),
        rule=rules.close_to(figure("stale_tasks_at_5_min"), h["stale_at_5_model"], unit="tasks (expected at 10:05)",
                            tolerance=0.1, partly=0.5),
        inputs=("task_count", "promo_ttl_s", *PROMO_READS_INPUTS), judges="stale_tasks_at_5_min",
        reconciled=PROMO_RATE_RECONCILED, proof=f"{PROOF}#failure-1-the-stale-promotion")
    rec("in-process-lru.no-broadcast", claim="There is no way to broadcast an invalidation to 60 isolated in-process caches",
        seed_value="no way",
        measured=(f"the note's isolated TTLCaches have no channel to the tasks: a changed promotion stayed until each "
                  f"task's TTL ({h['ttl_stale_pct']:.0f} % of reads stale after changes). Not isolated — a near cache "
                  f"with Redis CLIENT TRACKING, a different design — every task's copy went within "
                  f"{h['near_max_ms']:.1f} ms (p50 {h['near_p50_ms']:.2f} ms) over {h['near_samples']} drops"),
        rule=rules.parts({"the note's isolated per-task caches keep a changed entry until their TTL":
                          h["ttl_stale_pct"] > 0}),
        inputs=("task_count",), proof=f"{PROOF}#failure-1-the-stale-promotion")
    rec("in-process-lru.cold-start-2000", claim="10 new tasks send 2,000 requests to the Promotions service in 60 s",
        seed_value="2,000 in 60 s",
        measured=(f"{h['scale_origin_first_minute_extra']:,.0f} extra calls in the first minute if tasks warm every "
                  f"category at start-up, {h['scale_lazy_first_minute_extra']:,.0f} if they fill on demand"),
        rule=rules.close_to(figure("cold_start_requests"), h["scale_origin_first_minute_extra"], unit="requests",
                            tolerance=0.1, partly=0.5),
        inputs=("cold_start_window_s", "scale_out_tasks", "promo_categories", *PROMO_READS_INPUTS),
        judges="cold_start_requests", reconciled=PROMO_RATE_RECONCILED,
        proof=f"{PROOF}#q2-cold-starts-and-rolling-deployments")
    rec("in-process-lru.rollout-60x", claim="After each batch of 10 replacements the origins see 60x their warm baseline",
        seed_value="60x",
        measured=(f"{h['roll_origin_peak_ratio']:.0f}x for one second if new tasks warm from the origin, "
                  f"{h['roll_lazy_peak_ratio']:.1f}x filling on demand"),
        rule=rules.parts({"warming from the origin: 60x or more": h["roll_origin_peak_ratio"] >= 60,
                          "filling on demand: 60x or more": h["roll_lazy_peak_ratio"] >= 60}),
        inputs=("rollout_batch", "rollout_minutes", "rollout_multiplier", *PROMO_READS_INPUTS),
        reconciled=PROMO_RATE_RECONCILED, proof=f"{PROOF}#q2-cold-starts-and-rolling-deployments")
    rec("in-process-lru.500mb", claim="5,000 product entries of ~100 KB take up to 500 MB per task",
        seed_value="500 MB",
        measured=f"{h['bytes_rss_mb']:.0f} MB as bytes; {h['parsed_rss_mb']:.0f} MB as parsed JSON",
        rule=rules.parts({"as bytes, within 10 % of 500 MB": h["bytes_rss_mb"] <= 1.1 * figure("product_cache_mb"),
                          "as parsed JSON, within 10 % of 500 MB": h["parsed_rss_mb"] <= 1.1 * figure("product_cache_mb")}),
        inputs=("product_cache_entries", "product_entry_kb", "product_cache_mb"),
        proof=f"{PROOF}#failure-2-memory-and-garbage-collection")
    parsed_total_mb = h["parsed_rss_mb"] + figure("llm_buffer_mb") + figure("interpreter_mb")
    rec("in-process-lru.heap-headroom", claim="The cache leaves the 2 GB task without heap headroom",
        seed_value="out of headroom",
        measured=(f"the seed's own budget is {h['task_budget_used_mb']:.0f} MB of 2,048; with parsed JSON "
                  f"{parsed_total_mb:.0f} MB"),
        rule=rules.parts({"the note's own budget exceeds the task's RAM": h["task_budget_used_mb"] > figure("task_ram_mb"),
                          "with parsed JSON the budget exceeds the task's RAM": parsed_total_mb > figure("task_ram_mb")}),
        inputs=("task_ram_mb", "product_cache_mb", "llm_buffer_mb", "interpreter_mb"),
        proof=f"{PROOF}#failure-2-memory-and-garbage-collection")
    low, high = figure("gc_pause_low_ms"), figure("gc_pause_high_ms")
    rec("in-process-lru.gc-20-80ms", claim="Python's GC stops the world for 20-80 ms in major collections",
        seed_value="20-80 ms",
        measured=(f"a full collection took {h['parsed_gc_ms']:.0f} ms with 5,000 parsed products, "
                  f"{h['bytes_gc_ms']:.0f} ms with bytes (mostly the libraries' own objects)"),
        # judged where the note puts the pressure — product JSON held as Python objects (GC-tracked); bytes
        # give the collector almost nothing of the cache's to walk. A pause is a timing: within 25 % of the
        # note's range counts as in it (the parsed pause varies by ~10 % from run to run)
        rule=rules.parts({"with 5,000 parsed products a full collection takes 20-80 ms (±25 %)":
                          0.75 * low <= h["parsed_gc_ms"] <= 1.25 * high}),
        inputs=("gc_pause_low_ms", "gc_pause_high_ms", "product_cache_entries"),
        proof=f"{PROOF}#failure-2-memory-and-garbage-collection")
    rec("in-process-lru.p99-2.4s", claim="GC pressure moves the chatbot's P99 from 1.9 s to 2.4 s",
        seed_value="+500 ms at P99",
        measured=(f"full collections every ~{h['gc_interval_s']:.0f} s from TTL churn; with {h['gc_in_flight']} "
                  f"representative turns alive ({h['gc_light_tracked']} tracked objects each) "
                  f"{h['gc_light_collections']} in {h['gc_traffic_s']:.0f} s of traffic, ≤ {h['gc_light_share_pct']:.2f} % "
                  f"of the time; it takes ~{h['gc_tracked_for_p99']:,.0f} tracked objects per turn to reach "
                  f"{GC_SHARE_FOR_P99_PCT:.0f} % (the request path sets how often, the cache how long)"),
        rule=rules.at_least(GC_SHARE_FOR_P99_PCT, h["gc_light_share_pct"],
                            unit="% of the time in full collections, representative turns alive (needed to reach P99)"),
        inputs=("p99_before_s", "p99_after_s", "product_cache_entries", "product_cache_ttl_s", *PRODUCT_READS_INPUTS),
        reconciled=("the memory failure gives no request rate: the turns per task are the product reads of the "
                    "Memcached failure's catalog (40,000/min) over the configuration's 60 tasks, and a turn lives "
                    "for the memory failure's P99 of 1.9 s"),
        threshold="ours: the share of the P99 a GC pause must reach to move it",
        proof=f"{PROOF}#failure-2-memory-and-garbage-collection")
    rec("in-process-lru.q1-200kb", claim="1,000 entries cost 200 KB per task",
        seed_value="200 KB", measured=f"1,000 x 100 KB = {h['q1_cache_mb']:.0f} MB",
        rule=rules.close_to(figure("q1_overhead_kb"), 1000 * h["q1_cache_mb"], unit="KB", tolerance=0.25, partly=1.0),
        inputs=("q1_entries", "product_entry_kb"), judges="q1_overhead_kb", reconciled="the entry size is the memory "
        "failure's ~100 KB product JSON, the only entry size the note gives",
        proof=f"{PROOF}#failure-2-memory-and-garbage-collection")
    rec("in-process-lru.q1-hit-rate", claim="Per-task caches lower the effective cluster-wide hit rate",
        seed_value="(question)",
        measured=(f"50 tasks x 1,000 entries: {h['q1_hit_pct']:.1f} % cluster-wide (hot set {h['q1_hot_hit_pct']:.1f} %) "
                  f"against {h['shared_hit_pct']:.1f} % for one shared cache; {h['q1_miss_ratio']:.1f}x the planned misses; "
                  f"with the hot set renewed every minute the gap grows from {h['moving_gap_still_pp']:.1f} to "
                  f"{h['moving_gap_stress_pp']:.1f} points"),
        rule=rules.parts({"50 caches of 1,000 entries hit less than one shared cache": h["q1_hit_pct"] < h["shared_hit_pct"]}),
        inputs=("q1_tasks", "q1_entries", "hot_variant_pages", *PRODUCT_READS_INPUTS), reconciled="the question gives "
        "no read rate; the product reads are the Memcached scenario's (a catalog sized for 2,000/min at 95 %)",
        proof=f"{PROOF}#q1-the-cluster-wide-hit-rate")
    rec("in-process-lru.unobservable", claim="In-process caches cannot be observed",
        seed_value="not observable",
        measured="a per-task status command (version held, age, counters) named the one stale task",
        rule=rules.parts({"no per-task status could name the stale task": r.odd_tasks != [0]}),
        proof=f"{PROOF}#q3-seeing-inside-sixty-caches")
    rec("in-process-lru.heuristic", claim="Never use an in-process cache for data invalidated by external events",
        seed_value="never",
        measured="a near cache with server-assisted invalidation and a flush on reconnect served no stale read here",
        rule=rules.parts({"an event-invalidated near cache served stale reads": h["near_stale_reads"] > 0,
                          "it stayed stale after its invalidation link broke": bool(r.drop_tracking["stale_after_reconnect"])}),
        proof=f"{PROOF}#in-process-decision-heuristic")
    rec("in-process-lru.table.latency", claim="In-process reads take under 0.1 ms", seed_value="<0.1ms",
        measured=f"{h['lookup_p50_us']:.2f} µs per lookup at the median, {h['lookup_p99_us']:.2f} µs at p99",
        rule=rules.at_most(100.0, h["lookup_p99_us"], unit="µs"),
        judges="table_inprocess_latency_ms", proof=f"{PROOF}#best-case-no-network-hop")
    rec("in-process-lru.table.invalidation", claim="In-process caches have no invalidation, only TTL per task",
        seed_value="None (TTL only per task)",
        measured=(f"the note's TTLCache per task: a changed promotion stays until each task's TTL ({h['ttl_stale_pct']:.0f} % "
                  f"of reads stale after changes, measured); a near cache with CLIENT TRACKING, a different design, "
                  f"drops it within {h['near_max_ms']:.1f} ms"),
        rule=rules.parts({"the note's per-task TTLCache keeps serving a changed entry until its TTL":
                          h["ttl_stale_pct"] > 0}),
        proof=f"{PROOF}#failure-1-the-stale-promotion")
    rec("in-process-lru.table.consistency", claim="60 separate caches have no consistency",
        seed_value="None (60 separate caches)",
        measured=(f"TTL-only, as the note has them: {h['stale_at_5_model']:.0f} of 60 tasks stale 5 minutes after a "
                  f"change, the rest fresh — two answers at once (a tracked near cache, not the note's design: "
                  f"{h['near_stale_reads']} stale reads)"),
        rule=rules.parts({"TTL-only caches serve stale reads after a change": h["ttl_stale_pct"] > 0,
                          "tasks disagree: some stale, some fresh at the same moment":
                          0 < h["stale_at_5_model"] < TASKS}),
        proof=f"{PROOF}#failure-1-the-stale-promotion")
    rec("in-process-lru.table.failure-risk", claim="Users get different promotion answers from different tasks",
        seed_value="different answers per task",
        measured=f"with TTL-only caches, {h['stale_users_at_5_pct']:.0f} % of users still see the old promotion 5 minutes on",
        rule=rules.parts({"5 minutes after a change some users still get the old promotion": h["stale_users_at_5_pct"] > 1}),
        inputs=("task_count", "promo_ttl_s", *PROMO_READS_INPUTS), reconciled=PROMO_RATE_RECONCILED,
        proof=f"{PROOF}#failure-1-the-stale-promotion")
    return ledger.table()


def summary_row(h: dict[str, float]) -> pd.DataFrame:
    """The seed's summary-table row for the in-process LRU beside the row this chapter measured, from its
    `headline` numbers (which the summary chapter reads back from the results)."""
    return pd.DataFrame([
        {"column": "Latency", "seed": "<0.1ms", "measured": f"{h['lookup_p50_us']:.2f} µs per lookup (p50)"},
        {"column": "Invalidation", "seed": "None (TTL only per task)",
         "measured": f"TTL-only as described; with CLIENT TRACKING every task drops a key within {h['near_max_ms']:.1f} ms"},
        {"column": "Consistency", "seed": "None (60 separate caches)",
         "measured": f"TTL-only: {h['stale_at_5_model']:.0f} of 60 tasks stale 5 min after a change; tracked: no stale read"},
        {"column": "Key failure risk", "seed": "Users get different promo answers from different tasks",
         "measured": (f"that, and {h['q1_hit_pct']:.0f} % cluster hit rate instead of {h['shared_hit_pct']:.0f} %; "
                      f"cold starts at {h['roll_origin_peak_ratio']:.0f}x baseline if tasks warm from the origin")},
    ])
