"""The network chapter on the network lab, small: silent timeouts, Sentinel and Cluster under a partition, the
degraded modes, a flapping or replaced memcached node, a capped link; the findings and ledger rows computed
from them. The contract runs on a recorded run (``results``, `tests/recorded.py`) in every `make test`, and on a
live re-run of the chapter's experiments (`TestChapterLive`) in `make soak`."""

from __future__ import annotations

import pandas as pd
import pytest
import recorded
from chapter_contract import ChapterContract, rows

from experiments import params
from experiments.chapters import network as chapter
from experiments.models import degraded as degraded_model
from experiments.probes import degraded, lostpacket, partition, splitbrain


def live_results() -> chapter.NetworkResults:
    """The chapter's experiments, small, on the network lab."""
    sentinel, cluster, log = splitbrain.all_at_once([(1000, None), (2000, None), (1000, 1)], [1000])
    values = partition.hot_product_values()
    return chapter.NetworkResults(
        lossy=lostpacket.lossy_gets(loss_pct=1.0, gets=1200),
        timeouts=partition.client_timeouts(budget_timeout_s=0.25, cap_s=2.5), cap_s=2.5,
        sentinel=sentinel, cluster=cluster, cluster_log=log,
        degraded=degraded.outage(reads=800, fleet_reads=600, workers=16, seed=3),
        memcached=partition.memcached_flaps(keys=120, dead_timeout_s=1.5),
        # 100 Mbit/s carries ~120 GETs/s of 100 KB: 5 s make rounds of ~120 GETs, enough to time (1 s gave rounds
        # of one or two 16-GET pipelines, whose spread broke the finding's margin in a soak round)
        link=partition.saturated_link(mbit=100, values=values, seconds=5.0), mbit=100.0)


live, results = recorded.fixtures("network", chapter.NetworkResults, live_results)


def _set(frame: pd.DataFrame, where: dict, column: str, value) -> None:
    frame.loc[rows(frame, where), column] = value


def _plain(r) -> pd.Series:
    return r.sentinel.min_replicas_max_lag_s.isna()


class TestChapter(ChapterContract):
    chapter = chapter

    def breakages(self):
        def redis_answers(r):
            r.timeouts.loc[r.timeouts.timeout_s.isna() & (r.timeouts.client == "redis-py"), "still_blocked_at_cap"] = False

        def nothing_lost(r):
            r.sentinel.loc[_plain(r), "lost_dels"] = 0

        def guard_early(r):
            r.sentinel.loc[~_plain(r), "first_refused_s"] = 0.0

        def guard_kept(r):
            r.sentinel.loc[~_plain(r), "lost_dels"] = 0

        def early_move(r):
            r.cluster["slots_moved_s"] = 0.1

        def early_retransmission(r):
            r.lossy.loc[r.lossy.latency_ms.idxmax(), "latency_ms"] = 150.0

        def slow_retransmission(r):
            r.lossy.loc[r.lossy.latency_ms > 100, "latency_ms"] = 350.0

        return [
            (early_retransmission, "every GET slowed by a lost packet waited at least TCP's 200 ms minimum "
                                   "retransmission timeout"),
            (lambda r: r.lossy.__setitem__("latency_ms", 0.2), "every GET slowed by a lost packet waited at least "
                                                               "TCP's 200 ms minimum retransmission timeout"),
            (slow_retransmission, "a GET that lost one packet answered within the derived timeout (median of the "
                                  "clients' rounds)"),
            (redis_answers, "with their default timeouts, redis-py and pymemcache blocked a read past the turn budget"),
            (lambda r: _set(r.timeouts, {"client": "redis-py", "timeout_s": 0.25, "retries": "default"},
                            "still_blocked_at_cap", False),
             "redis-py with the short timeout but its default retries still blocked past the budget"),
            (lambda r: _set(r.timeouts, {"client": "pymemcache", "timeout_s": 0.25}, "blocked_s", 2.0),
             "with retries off (redis-py) or by default (pymemcache) the short timeout failed the read within 1 s"),
            (lambda r: _set(r.timeouts, {"client": "pymemcache", "timeout_s": 0.25}, "blocked_spread_s", 0.3),
             "with retries off (redis-py) or by default (pymemcache) the short timeout failed the read within 1 s"),
            (nothing_lost,
             "a cut-off Sentinel primary acknowledged writes as long as they were sent, and the failover lost every one"),
            (lambda r: r.sentinel.__setitem__("untouched_kept", 0),
             "every promotion the replica had acknowledged (WAIT) and the writer never touched was kept"),
            (lambda r: r.sentinel.__setitem__("replicated_before", False),
             "every promotion the replica had acknowledged (WAIT) and the writer never touched was kept"),
            (lambda r: r.sentinel.__setitem__("promotion_s", 0.1),
             "promotion came after the detection time and within detection + 10 s in every run"),
            (guard_early, "min-replicas-to-write 1 stopped acknowledgements only once the lag had passed, with NOREPLICAS"),
            (guard_kept, "what it acknowledged before was lost all the same"),
            (lambda r: r.sentinel.__setitem__("new_side_write", "accepted"),
             "with one replica, min-replicas-to-write 1 made the promoted replica refuse writes, having no replica"),
            (lambda r: r.cluster.__setitem__("rejoined_as_replica", False),
             "the healed primary rejoined as a replica in every run"),
            (lambda r: r.cluster.__setitem__("refusal", ""),
             "a cut-off cluster primary refused writes (CLUSTERDOWN) only after its node timeout, and lost what it took "
             "before"),
            (early_move, "its slots moved only after its node timeout"),
            (lambda r: r.cluster.__setitem__("victim_answered_again_s", 0.2),
             "reads of its keys through RedisCluster answered again only with the move (not before it, less 0.5 s)"),
            (lambda r: r.cluster.__setitem__("other_errors", 1), "reads of the other primaries' keys never failed"),
            (lambda r: r.timeouts.__setitem__("timeout_s", r.timeouts.timeout_s * 8),  # 2 s: 11 tries outlast the move
             "at the default node timeout a read of the cut-off keys would give up (short timeout, default retries) "
             "before the slots can move"),
            (lambda r: _set(r.degraded, {"mode": "gutter pool"}, "max_ms", 2_500.0),
             "with the short timeout and a breaker, every turn of an answering mode ended within the turn's budget in the "
             "lab"),
            (lambda r: _set(r.degraded, {"mode": "gutter pool"}, "in_budget", 0.5),
             "a gutter whose entries live the product TTL, kept warm, answers every turn with the catalog at its capacity"),
            (lambda r: _set(r.degraded, {"mode": "in-process copy"}, "calls_per_read", 0.5),
             "the in-process copy's catalog calls match an exact replay within 2 points, and the model within 5"),
            (lambda r: _set(r.degraded, {"mode": "gutter pool"}, "calls_per_read", 0.6),
             "the gutter's catalog calls are the distinct keys of its slice (within 2 %)"),
            (lambda r: _set(r.memcached, {"replaced": False}, "stale_reads_after_return", 0),
             "a flapping memcached node served every key invalidated while it was out, stale"),
            (lambda r: _set(r.memcached, {"replaced": True}, "stale_reads_after_return", 5),
             "a replaced node served none stale and missed every key of its share"),
            (lambda r: _set(r.link, {"value": "100 KB JSON"}, "link_share", 0.5),
             "the capped link, not the client, set the hot product's GET rate (85-105 % of the cap, 100 KB and 2 KB)"),
            (lambda r: _set(r.link, {"value": "100 KB JSON, zstd"}, "gets_per_s", 1.0),
             "zstd raised the 100 KB rate by its compression ratio (within 15 %)"),
            (lambda r: _set(r.link, {"value": "2 KB item"}, "gets_per_s", 1.0),
             "the 2 KB item passed over 20 times the 100 KB page's GETs"),
        ]


@pytest.mark.chapter_run
class TestChapterLive(TestChapter):
    """The same contract on a live run of the experiments."""

    @pytest.fixture(scope="class")
    def results(self, live):
        return live


def test_the_recommended_mode_answers_the_most_turns_at_the_note_s_rate():
    lab = pd.DataFrame({"mode": ["fail open", "fail fast", "in-process copy", "gutter pool"],
                        "in_budget": [1.0, 0.0, 1.0, 1.0]})
    fleet = degraded_model.fleet_modes(lab).set_index("mode")
    assert fleet.loc["fail open", "answered_pct"] == 0  # 20x the catalog's capacity: it answers nothing in time
    assert 80 < fleet.loc["in-process copy", "answered_pct"] < fleet.loc["gutter pool, 10 s entries", "answered_pct"] < 90
    assert fleet.loc["gutter pool, 300 s entries, kept warm", "answered_pct"] == pytest.approx(100)
    # filled on a miss, it starts empty: it answers what it holds, its misses queue behind the fail-open start
    assert 90 < fleet.loc["gutter pool, 300 s entries, filled on a miss", "answered_pct"] < 99
    # at the catalog's capacity it has no room: the recommended gutter's entries live long enough to leave it 20 %
    planned = fleet.loc["gutter pool, 617 s entries, kept warm"]
    assert planned.answered_pct == pytest.approx(100) and planned.catalog_load_x == pytest.approx(0.8, abs=1e-3)
    assert degraded_model.recommended_mode(fleet.reset_index()) == "gutter pool, 617 s entries, kept warm"
    lab.loc[lab["mode"] == "gutter pool", "in_budget"] = 0.5  # a mode that broke the budget in the lab answers none
    assert degraded_model.recommended_mode(degraded_model.fleet_modes(lab)) == "in-process copy"


def test_the_full_profile_adds_the_documented_defaults():
    sentinel, cluster = chapter.settings(params.profile("full"), [1000], [1000], 1)
    assert (30_000, None) in sentinel and (30_000, 10) in sentinel and 15_000 in cluster
    sentinel, cluster = chapter.settings(params.profile("quick"), [1000, 2000], [1000], 1)
    assert sentinel == [(1000, None), (2000, None), (1000, 1)] and cluster == [1000]


def test_the_notebook_s_tables_and_chart_frames_read_only_declared_columns(results):
    """What the notebook draws from the results runs on the recorded run (whose tables hold exactly the declared
    columns), so a helper that read an undeclared column would fail here."""
    assert not chapter.writes_chart_frame(results.sentinel, results.cluster).empty
    assert not chapter.cluster_chart_frame(results.cluster_log).empty
    assert not chapter.modes_chart_frame(degraded_model.fleet_modes(results.degraded)).empty
    assert not chapter.link_chart_frame(results.link).empty
    assert not chapter.timing_bounds(results).empty
