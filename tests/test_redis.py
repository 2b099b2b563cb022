"""The Redis chapter's experiments on real servers, small: structures, invalidation, failover,
cluster, evictions; and the findings and ledger rows computed from them.

The probe tests and `TestChapterLive` run the experiments (``live``, `chapter_run`: the fault experiments —
failover, a lost acknowledged invalidation, a missed pub/sub event — are the ones `make soak` repeats 20
times); the contract runs on a recorded run (``results``, `tests/recorded.py`) in every `make test`.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import recorded
from chapter_contract import ChapterContract

from experiments.caches.adapters import RedisCache
from experiments.caches.invalidationlog import FailoverReplayer, InvalidationLog
from experiments.chapters import redis as chapter
from experiments.lab import loadgen
from experiments.lab.endpoints import open_redis
from experiments.lab.servers import RedisServer
from experiments.lab.topologies import RedisClusterSet
from experiments.ledger import Ledger
from experiments.models import popularity, traffic
from experiments.probes import evictions, failover, invalidation, scaleout, structures


def live_results() -> chapter.RedisResults:
    """The chapter's experiments, small, on real servers."""
    target = open_redis("")
    with failover.ParallelSets([1000, 1000]) as sets, RedisClusterSet() as cluster, \
            evictions.eviction_server() as evicting:
        cache = RedisCache(target)
        pubsub, stream = invalidation.PubSubInvalidator(cache).start(), invalidation.StreamInvalidator(cache).start()
        try:
            r = chapter.RedisResults(
                product_layouts=structures.compare_product_layouts(target, size_bytes=2048, repetitions=50),
                reco_layouts=structures.compare_reco_layouts(target, repetitions=50),
                pubsub_ms=invalidation.event_to_gone_ms(pubsub, 100, progress=False),
                stream_ms=invalidation.event_to_gone_ms(stream, 100, progress=False),
                ttl_only=invalidation.ttl_only_staleness(),
                missed=pd.DataFrame([invalidation.missed_event(pubsub, downtime_s=0.2),
                                                       invalidation.missed_event(stream, downtime_s=0.2)]),
                failovers=failover.failover_sweep(sets.groups[:1], keys=2000),
                lost=failover.lost_invalidation(sets.groups[1], ttl_s=900),
                placement=scaleout.hot_asin_placement(cluster, [f"B{n:09d}" for n in range(100)]),
                hot_key=scaleout.hot_key_load(cluster, reads=2000),
                throughput=scaleout.throughput(cluster, requests=2000),
                evictions=evictions.watch_evictions(evicting, keys=4000),
                near_at_rate=scaleout.near_cache_at_rate(cluster, reads_per_s=traffic.hot_key_reads_per_task_s(),
                                                         ttl_s=1, reads=60, seed=3),
            )
        finally:
            pubsub.stop()
            stream.stop()
            target.close()
    return r


live, results = recorded.fixtures("redis", chapter.RedisResults, live_results)



def test_failover_keeps_every_key_and_recovers_within_bounds(live):
    row = live.failovers.iloc[0]
    assert row.keys_after == row.keys_before == 2000
    assert 1.0 <= row.promotion_s <= 6.0 and row.first_read_s <= 10.0


def test_acknowledged_deletes_are_lost_and_the_logged_replay_restores_them(live):
    lost = live.lost
    n = failover.LOST_PROMOTIONS
    assert lost["replicated_before_cut"] and (lost["deletes_acknowledged"], lost["replicas_with_delete"]) == (n, 0)
    assert lost["invalidations_logged"] == lost["invalidations_replayed"] == 2 * n
    assert lost["lost_deletes_found"] == n and lost["lost_were_after_cut"]
    assert lost["stale_for_s_without_mitigation"] > 800 and lost["stale_for_s_with_replay"] < 10
    assert lost["gone_after_replay"] and not lost["stale_read_after_replay"]
    table = failover.mitigations(lost, ttl_cap_s=60)
    assert table.stale_for_s.min() == lost["stale_for_s_with_replay"]


def test_the_invalidation_log_is_append_only_and_survives_a_reopen(tmp_path):
    path = tmp_path / "invalidations.log"
    log = InvalidationLog(path)
    first = log.append("promo:a")
    log.append("promo:b")
    reopened = InvalidationLog(path)
    third = reopened.append("promo:c")
    assert [e.key for e in reopened.entries()] == ["promo:a", "promo:b", "promo:c"]
    assert [e.seq for e in reopened.entries()] == [0, 1, 2] and third.seq == 2
    assert [e.key for e in reopened.since(first.at_s + 1e-6)] == ["promo:b", "promo:c"]
    with pytest.raises(ValueError, match="tab or a newline"):
        log.append("promo:\tbad")


def test_the_replay_deletes_only_within_its_horizon_and_reports_what_it_found(tmp_path):
    with RedisServer() as server:
        client = server.client()
        log = InvalidationLog(tmp_path / "invalidations.log")
        for key in ("promo:old", "promo:stale", "promo:gone"):
            client.set(key, b"v", ex=900)
        log.path.write_text(f"0\t{time.time() - 1000:.6f}\tpromo:old\n")
        log = InvalidationLog(log.path)
        log.append("promo:stale")
        log.append("promo:gone")
        client.delete("promo:gone")
        replayer = FailoverReplayer(client, log, horizon_s=900, connect=lambda host, port: client)
        replay = replayer.replay(client)
        assert (replay.replayed, replay.still_present) == (2, ["promo:stale"])
        assert 0 < replay.remaining_ttl_s[0] <= 900
        assert client.exists("promo:old") == 1 and client.exists("promo:stale") == 0


def test_pubsub_loses_and_stream_keeps_a_missed_event(live):
    missed = live.missed.set_index("transport")
    assert not missed.loc["PubSub", "caught_up"] and missed.loc["PubSub", "stale_window_s"] == 900
    assert missed.loc["Stream", "caught_up"] and missed.loc["Stream", "stale_window_s"] < 1.5


def test_ttl_only_staleness_is_half_the_ttl_on_average(live):
    table = live.ttl_only.set_index("family")
    assert table.loc["product", "mean_stale_s"] == 150 and table.loc["review", "max_stale_s"] == 3600
    assert "price" not in table.index


def test_layouts_and_placement_are_deterministic(live):
    by_read = live.product_layouts.set_index(["layout", "read"])
    assert by_read.loc[("hash", "recommendation: HMGET 3 fields"), "bytes_returned"] == 45
    assert sorted(live.placement.shard.value_counts()) == [32, 34, 34]


def test_evictions_are_counted_and_named(live):
    assert live.evictions["evictions_counted"] == live.evictions["evictions_named"] > 0




def test_the_hot_key_rate_and_the_near_cache_model():
    # the hot set's exponent gives the top 100 their 15,000 reads/min, so the hottest gets 15,000 / H(100, alpha)
    alpha = popularity.hot_set().alpha
    harmonic = sum(k ** -alpha for k in range(1, 101))
    assert traffic.hot_key_reads_per_task_s() == pytest.approx(15_000 / 60 / harmonic / 60, rel=1e-3)
    assert scaleout.near_cache_saved_share(1.0, 1.0) == 0.5 and scaleout.near_cache_saved_share(99.0, 1.0) == 0.99


def test_benchmark_rejects_a_dead_port():
    from experiments.lab.spawner import free_port

    with pytest.raises(RuntimeError, match="does not answer"):
        loadgen.redis_benchmark(free_port(), "x", requests=10)


class TestRedisChapter(ChapterContract):
    chapter = chapter

    def breakages(self):
        def no_replay(r): r.lost["gone_after_replay"] = False
        def late_read(r): r.lost["stale_read_after_replay"] = True
        def lost_before_cut(r): r.lost["lost_were_after_cut"] = False
        def slow_pubsub(r): r.pubsub_ms = np.full(100, 80.0)
        def lost_key(r): r.failovers.loc[0, "keys_after"] = 1999
        def saves_all(r): r.near_at_rate["saved_share"] = 0.99
        return [(saves_all, "at that rate it saves under three quarters of the reads, not almost all"),
                (no_replay, "the durable log's replay removed every lost invalidation, and no read saw one after it"),
                (late_read, "the durable log's replay removed every lost invalidation, and no read saw one after it"),
                (lost_before_cut,
                 "every DEL acknowledged after the replica was cut off was lost in failover, and only those"),
                (slow_pubsub, "pub/sub invalidation reaches the key in < 50 ms at p99"),
                (lost_key, "every key survived the primary's SIGKILL on the promoted replica")]

    def test_verdicts_and_summary_row(self, results):
        table = chapter.record_claims(Ledger("redis"), results)
        verdicts = dict(zip(table.claim_id, table.verdict))
        assert verdicts["redis.table.consistency"] == "fails"
        # every key the replica acknowledged is kept, but not a write the primary alone acknowledged
        assert verdicts["redis.failover-warm"] == "partly"
        # judged on ElastiCache, which fails over in seconds, not 30-60 s; a lost invalidation lasts the TTL
        assert verdicts["redis.table.failure-risk"] == "fails"
        assert list(chapter.summary_row(chapter.headline(results)).column) == ["Latency", "Invalidation", "Consistency",
                                                                               "Key failure risk"]


@pytest.mark.chapter_run
class TestRedisChapterLive(TestRedisChapter):
    """The same contract on a live run of the experiments."""

    @pytest.fixture(scope="class")
    def results(self, live):
        return live


def test_the_notebook_s_chart_frames_read_only_declared_columns(results):
    """What the notebook draws from the results runs on the recorded run (whose tables hold exactly the declared
    columns), so a helper that read an undeclared column would fail here."""
    assert not failover.recovery_chart_frame(results.failovers).empty
    assert not failover.mitigations(results.lost, ttl_cap_s=60).empty
    assert chapter.promotion_at_default(results.failovers)["promotion_at_default_s"] > 30
