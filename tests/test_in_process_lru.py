"""The in-process chapter: per-task hit rates (model against replay), the stale promotion, cold starts,
memory and GC in real processes, and the near cache in real worker processes over a real Redis.

The near-cache test is one of those `make soak` repeats 20 times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from chapter_contract import ChapterContract

from experiments.caches import nearcache
from experiments.chapters import in_process_lru as chapter
from experiments.errors import BookError, ParameterError
from experiments.lab.processes import running
from experiments.lab.servers import RedisServer
from experiments.ledger import Ledger
from experiments.models import deployment, taskcache, taskstale
from experiments.probes import gcpause


@pytest.fixture(scope="module")
def traffic():
    alpha = taskcache.calibrate_alpha(chapter.product_traffic(), target_hit=0.95, ttl_s=300)
    return chapter.product_traffic(alpha)


def test_per_task_model_within_2_points_of_the_replay_for_1_to_100_tasks(traffic):
    sweep = taskcache.sweep(traffic, tasks_list=[1, 2, 5, 10, 20, 50, 100], maxsize=1000, ttl_s=300,
                            requests_count=1_000_000, seed=5, progress=False)
    assert sweep.gap_pp.abs().max() < 2, sweep
    assert sweep.simulated_hit_rate.is_monotonic_decreasing
    assert (sweep.shared_cache_hit_rate > sweep.simulated_hit_rate).all()


def test_replay_and_real_cachetools_agree_request_by_request(traffic):
    bench = taskcache.benchmark(traffic, maxsize=200, ttl_s=60, requests_count=100_000, seed=2)
    assert bench["same_hits"] and bench["replay_per_s"] > bench["cachetools_per_s"]


def test_bad_task_parameters_are_refused(traffic):
    with pytest.raises(ParameterError):
        taskcache.predict(traffic, tasks=0, maxsize=10, ttl_s=60)
    with pytest.raises(ParameterError):
        taskcache.TaskTraffic(catalog=100)


def test_stale_promotion_model_matches_simulation():
    frame = taskstale.stale_over_time(tasks=60, ttl_s=900, reads_per_s_per_task=11.1, trials=2000, seed=3,
                                      minutes=[0, 2, 5, 10, 14, 15])
    assert (frame.simulated_mean_tasks - frame.model_tasks).abs().max() < 1
    assert frame.set_index("minutes_after_change").loc[15, "simulated_mean_tasks"] == 0
    assert taskstale.chance_at_least(0, 10, 0.3) == pytest.approx(1)
    assert taskstale.chance_at_least(10, 10, 0.5) == pytest.approx(0.5**10)


def test_rollout_scenarios_count_what_they_should():
    promo = chapter.promo_traffic()
    changes = [deployment.Change("origin", warm="origin"), deployment.Change("shared", warm="shared"),
               deployment.Change("lazy"), deployment.Change("lazy+coalesce", coalesce=True)]
    frames, summary = deployment.compare(promo, changes, seed=4)
    s = summary.set_index("change")
    first = frames[(frames.change == "origin") & (frames.t_s == 900)].origin_calls.iloc[0]
    assert first >= 10 * promo.categories  # a batch of 10 tasks warming 200 categories in that second
    assert s.loc["shared", "shared_cache_calls"] == promo.tasks * promo.categories
    assert s.loc["shared", "peak_over_baseline"] < s.loc["origin", "peak_over_baseline"] / 5
    assert s.loc["lazy+coalesce", "extra_calls"] <= s.loc["lazy", "extra_calls"]
    with pytest.raises(ParameterError):
        deployment.Change("bad", warm="prefetch")


@pytest.mark.chapter_run  # nbval runs gcpause.sweep; make soak repeats it
def test_gc_measurement_in_a_fresh_process():
    small = gcpause.sweep([50, 200], size_kb=20, repeats=2)
    parsed = small[small.representation == "parsed JSON"].set_index("entries")
    raw = small[small.representation == "bytes"].set_index("entries")
    assert (parsed.rss_growth_mb > raw.rss_growth_mb).all()
    assert (parsed.tracked_objects > raw.tracked_objects).all()
    with pytest.raises(BookError):
        gcpause.measure(10, "pickled")


def test_gc_arithmetic_on_a_known_table():
    table = pd.DataFrame([
        {"representation": "bytes", "entries": 1000, "full_collect_p50_ms": 10.0, "tracked_objects": 50_000},
        {"representation": "parsed JSON", "entries": 1000, "full_collect_p50_ms": 30.0, "tracked_objects": 52_000},
        {"representation": "bytes", "entries": 2000, "full_collect_p50_ms": 10.0, "tracked_objects": 50_000},
        {"representation": "parsed JSON", "entries": 2000, "full_collect_p50_ms": 50.0, "tracked_objects": 54_000}])
    assert gcpause.entries_for_pause(table, 20) == pytest.approx(1000)
    # 2 tracked objects per entry, 2,000 entries per 100 s: 40/s; a quarter of 54,000 is 13,500 → 337.5 s
    assert gcpause.full_collection_interval_s(table, entries=2000, ttl_s=100) == pytest.approx(337.5)


def test_launches_put_new_products_on_top_and_slide_the_rest_down():
    launches = taskcache.Launches(every_s=10, new=2)
    ranks = np.array([0, 1, 2, 3, 0, 1, 2, 5, 9])
    times = np.array([5, 5, 5, 5, 15, 15, 15, 25, 25.0])
    # epoch 0 is the stationary catalog; in epoch 1 ranks 0-1 are ids 102-103; in epoch 2 rank 5 is original 1
    assert launches.items(ranks, times, catalog=100).tolist() == [0, 1, 2, 3, 102, 103, 0, 1, 5]
    assert taskcache.STATIONARY.items(ranks, times, catalog=100).tolist() == ranks.tolist()


def test_moving_popularity_costs_per_task_caches_more_than_a_shared_one():
    traffic = taskcache.TaskTraffic(catalog=20_000, alpha=1.0, reads_per_s=600)
    moving = taskcache.moving_check(traffic, tasks=20, maxsize=200, ttl_s=60, requests_count=300_000, seed=2,
                                    launches=[taskcache.Launches(every_s=5, new=50)])
    still, stress = moving.iloc[0], moving.iloc[1]
    assert abs(still.moved_pp) < 1.5 and stress.moved_pp < -3
    assert stress.shared_moved_pp > stress.moved_pp


@pytest.mark.chapter_run  # nbval runs gcpause.under_traffic; make soak repeats it
def test_gc_under_traffic_counts_the_request_path():
    traffic = gcpause.under_traffic([0, 400], turns_per_s=10, in_flight_s=2, entries=200, ttl_s=60, size_kb=20, turns=600)
    none, heavy = traffic.set_index("messages").loc[0], traffic.set_index("messages").loc[400]
    assert none.tracked_per_turn < 10 < 1000 < heavy.tracked_per_turn and (traffic.in_flight == 20).all()
    assert heavy.full_collections > none.full_collections and heavy.interval_s > 0
    assert (traffic.traffic_s == 60).all()
    with pytest.raises(BookError, match="must be positive"):
        gcpause.under_traffic([20], turns_per_s=0, in_flight_s=2, entries=10, ttl_s=60)


def test_tracked_objects_for_a_share_interpolate_between_measured_sizes():
    table = pd.DataFrame({"tracked_per_turn": [100, 1000, 10000], "full_collections": [0, 10, 100],
                          "gc_time_share_pct": [0.01, 0.5, 5.0]})
    assert gcpause.tracked_per_turn_for_share(table, 0.5) == pytest.approx(1000)
    assert gcpause.tracked_per_turn_for_share(table, 5.0) == pytest.approx(10000)
    assert 1000 < gcpause.tracked_per_turn_for_share(table, 1.0) < 10000
    assert gcpause.tracked_per_turn_for_share(table, 50) == float("inf")


def test_near_cache_invalidates_every_process_and_survives_a_broken_link():
    with RedisServer(name="redis-near") as server:
        with nearcache.Fleet(server, size=3, mode="tracking", prefix="cachebook:near:") as fleet:
            pids = [server.pid, *fleet.pids]
            latency = nearcache.invalidation_latency_ms(fleet, changes=10)
            fresh = nearcache.stale_reads(fleet, rounds=5, reads_per_round=20)
            tracked = nearcache.link_drop(fleet)
        with nearcache.Fleet(server, size=3, mode="naive", prefix="cachebook:near:") as naive:
            pids += naive.pids
            broken = nearcache.link_drop(naive)
            odd = nearcache.odd_tasks(nearcache.fleet_status(naive), current="after")
        with nearcache.Fleet(server, size=2, mode="ttl", prefix="cachebook:near:", ttl_s=60) as ttl_fleet:
            pids += ttl_fleet.pids
            stale = nearcache.stale_reads(ttl_fleet, rounds=5, reads_per_round=20)
    assert len(latency) == 30 and latency.max() < 50
    assert fresh["stale_reads"] == 0 and fresh["l1_hit_rate"] > 0.5
    assert tracked["read_while_down"] == "after" and not tracked["stale_after_reconnect"] and tracked["flushes"] >= 2
    assert broken["stale_after_reconnect"] and broken["flushes"] == 0 and odd == [0]
    assert stale["stale_reads"] > 0
    assert not any(running(pid) for pid in pids)  # the workers and the server are gone


def test_fleet_refuses_bad_modes():
    with pytest.raises(ParameterError):
        nearcache.Fleet(None, size=2, mode="write-behind", prefix="x:")


@pytest.fixture(scope="module")
def results(traffic):
    promo = chapter.promo_traffic()
    deploy, summary = deployment.compare(promo, deployment.scenarios(), seed=1)
    gc_table = gcpause.SWEEP.frame(
        {"representation": rep, "entries": n, "entry_kb": 100.0, "rss_growth_mb": n * (0.1 if rep == "bytes" else 0.19),
         "full_collect_p50_ms": 10 + (0.012 * n if rep == "parsed JSON" else 0), "full_collect_spread_ms": 1.0,
         "full_collect_max_ms": 12 + (0.012 * n if rep == "parsed JSON" else 0), "automatic_full_collections": 0,
         "longest_automatic_pause_ms": 0.0, "tracked_objects": 49_000 + (2 * n if rep == "parsed JSON" else 0)}
        for rep in ("bytes", "parsed JSON") for n in (1000, 5000))
    gc_traffic = gcpause.UNDER_TRAFFIC.frame(
        {"messages": m, "tracked_per_turn": 4 * m + 8, "tracked_objects": 60_000, "turns": 1000, "full_collections": n,
         "in_flight": 21, "traffic_s": 90.0, "interval_s": 90.0 / n if n else np.nan,
         "pause_p50_ms": 100.0 if n else np.nan, "explicit_full_ms": 100.0,
         "gc_time_share_pct": 100 * max(n, 1) * 0.1 / 90}
        for m, n in zip(chapter.GC_TURN_MESSAGES, (0, 7, 45), strict=True))
    drop = {"mode": "tracking", "read_while_down": "after", "read_after_reconnect": "after",
            "stale_after_reconnect": False, "other_tasks_fresh": True, "link_drops": 1, "flushes": 1}
    return chapter.InProcessResults(
        alpha=traffic.alpha,
        sweep=taskcache.sweep(traffic, tasks_list=[1, 50], maxsize=1000, ttl_s=300, requests_count=1_000_000,
                              seed=1, progress=False),
        q1=taskcache.predict(traffic, tasks=50, maxsize=1000, ttl_s=300),
        moving=taskcache.moving_check(traffic, tasks=50, maxsize=1000, ttl_s=300, requests_count=600_000, seed=1,
                                      launches=[taskcache.Launches(every_s=60, new=5),
                                                taskcache.Launches(every_s=60, new=100)]),
        benchmark={"replay_per_s": 3e7, "cachetools_per_s": 6e5, "speedup": 50.0, "same_hits": True,
                   "replay_spread_per_s": 2e6},
        after_rollout=taskstale.stale_after_rollout(tasks=60, ttl_s=900, reads_per_s_per_task=promo.reads_per_s / 60,
                                                    batch=10, every_s=100, ends_s_before=[0, 120, 600], minute=5,
                                                    trials=50, seed=1),
        stale=taskstale.stale_over_time(tasks=60, ttl_s=900, reads_per_s_per_task=promo.reads_per_s / 60,
                                        trials=2000, seed=1, minutes=[0, 5, 10]),
        deploy=deploy, deploy_summary=summary, gc=gc_table, gc_traffic=gc_traffic, near_ms=np.array([0.2, 0.3, 0.5]),
        near_compare=nearcache.COMPARE_WITH_TTL.frame([
            {"cache": "near", "reads": 100, "stale_reads": 0, "stale_share": 0.0, "l1_hit_rate": 0.98},
            {"cache": "ttl", "reads": 100, "stale_reads": 50, "stale_share": 0.5, "l1_hit_rate": 0.99}]),
        drop_tracking=drop,
        drop_naive={**drop, "mode": "naive", "read_while_down": "before", "read_after_reconnect": "before",
                    "stale_after_reconnect": True, "other_tasks_fresh": True, "flushes": 0},
        fleet_status=nearcache.FLEET_STATUS.frame([
            {"task": i, "pid": 100 + i, "holds": "before" if i == 0 else "after", "held_for_s": 5.0, "link_up": True,
             "hits": 10, "misses": 1, "invalidations": 1, "flushes": 0} for i in range(3)]),
        odd_tasks=[0], lookup_ms=np.full(100, 0.0013))


class TestInProcessChapter(ChapterContract):
    chapter = chapter

    def breakages(self):
        def model_off(r): r.sweep["gap_pp"] = 2.5
        def stale_near(r): r.drop_tracking["stale_after_reconnect"] = True
        def two_odd(r): r.odd_tasks = [0, 2]
        def gap_steady(r): r.moving["shared_simulated_hit_rate"] = r.moving.simulated_hit_rate + 0.1
        def heavy_light_turn(r): r.gc_traffic.loc[0, "gc_time_share_pct"] = 2.0
        def noisy_replay(r): r.benchmark["replay_spread_per_s"] = 1.2e7  # 28 M/s from 2 M: 2.3 spreads
        def noisy_collections(r): r.gc["full_collect_spread_ms"] = 40.0
        def slow_near(r): r.near_ms = np.array([0.2, 0.3, 60.0])
        return [(noisy_replay, "the compiled replay runs over 2 million requests/s and 10x the cachetools loop, "
                               "with the same hits"),
                (noisy_collections, "5,000 parsed products take more memory and a longer full collection than 5,000 "
                                    "as bytes"),
                (slow_near, "every task's near cache dropped a changed promotion within 50 ms (max)"),
                (model_off, "the per-task model is within 2 points of the simulation for every task count"),
                (stale_near, "after its invalidation link broke, the tracked near cache stayed fresh; the naive one did not"),
                (two_odd, "the per-task status check names exactly the stale task"),
                (gap_steady,
                 "renewing the hot set every minute widens the per-task caches' gap to a shared cache by over 2 points"),
                (heavy_light_turn, "with a representative turn alive, full collections still take under 1 % of the time")]

    def test_verdicts(self, results):
        table = chapter.record_claims(Ledger("in-process-lru"), results).set_index("claim_id")
        # the scenario as told: independent task phases leave 40 expected, not 50 (the deployment case is Q2's)
        assert table.loc["in-process-lru.stale-50-of-60", "verdict"] == "partly"
        # the note's own design (TTL only, per task) judged as the note describes it
        assert table.loc["in-process-lru.table.invalidation", "verdict"] == "holds"
        assert table.loc["in-process-lru.table.consistency", "verdict"] == "holds"
        assert table.loc["in-process-lru.q1-200kb", "measured"] == "1,000 x 100 KB = 100 MB"
        assert len(chapter.summary_row(chapter.headline(results))) == 4
