"""The Memcached chapter's experiments on real nodes, small, and the models beside them.

The probe tests and `TestMemcachedChapterLive` run the experiments (``live``, `chapter_run`: the
node-replacement experiment is one of those `make soak` repeats 20 times); the contract runs on a recorded run
(``results``, `tests/recorded.py`) in every `make test`.
"""

from __future__ import annotations

import numpy as np
import pytest
import recorded
from chapter_contract import ChapterContract

from experiments.caches.adapters import MemcachedCache
from experiments.chapters import memcached as chapter
from experiments.lab import loadgen
from experiments.lab.endpoints import open_memcached, open_redis
from experiments.lab.servers import MemcachedServer
from experiments.ledger import Ledger
from experiments.models import pollmodel
from experiments.probes import coldnode, evictions, hashing, invalidation, listupdates


def live_results() -> chapter.MemcachedResults:
    """The chapter's experiments, small, on four real memcached nodes."""
    nodes = [MemcachedServer(name=f"memcached-node{i}").start() for i in range(4)]
    try:
        return _measure(nodes)
    finally:
        for node in nodes:
            node.stop()


def _measure(nodes) -> chapter.MemcachedResults:
    redis_target, mc_target = open_redis(""), open_memcached("")
    subscriber = invalidation.QueueInvalidator(MemcachedCache(mc_target)).start()
    try:
        queue_ms = invalidation.event_to_gone_ms(subscriber, 200, progress=False)
        missed = invalidation.missed_event(subscriber, downtime_s=0.2)
    finally:
        subscriber.stop()
    rate = pollmodel.implied_rate(chapter.SEED_STALE_USERS, chapter.SEED_POLL_S)
    traffic = coldnode.HotTraffic()
    cold = coldnode.simulate_replacement(nodes, traffic, seconds=200, replace_at_s=100, seed=3)
    sample = hashing.sample_keys(20_000, 3)
    with evictions.eviction_server() as r_evict, evictions.memcached_eviction_server() as m_evict:
        r = chapter.MemcachedResults(
            throughput=loadgen.compare_throughput(seconds=1, requests=5000, value_sizes=(2048,)),
            queue_ms=queue_ms, missed=missed,
            polling=pollmodel.sweep(rate, [1, 30, 60], trials=4000, seed=3), implied_rate=rate,
            cold=cold, cold_summary=coldnode.summarize(cold, traffic, replace_at_s=100),
            remap_insilico=hashing.remap_table([2, 3], sample), vnodes=hashing.vnode_table([1, 200], sample),
            remap_nodes=hashing.remap_on_nodes_table(nodes, hashing.sample_keys(50_000, 3)),
            lists=listupdates.compare(redis_target, mc_target, writers=8, updates=50),
            memcached_evictions=evictions.watch_memcached_evictions(m_evict, keys=4000),
            redis_evictions=evictions.watch_evictions(r_evict, keys=4000),
        )
    redis_target.close()
    mc_target.close()
    return r


live, results = recorded.fixtures("memcached", chapter.MemcachedResults, live_results)



def test_remap_on_real_nodes_matches_the_analytic_share_within_1_point(live):
    table = live.remap_nodes.set_index("scheme")
    for scheme in ("rendezvous (pymemcache default)", "jump hash", "modulo", "rendezvous, node replaced",
                   "rendezvous on endpoint names, node replaced"):
        measured, analytic = table.loc[scheme, "moved_fraction"], table.loc[scheme, "analytic_fraction"]
        assert abs(measured - analytic) < 0.01, (scheme, measured, analytic)


def test_node_replacement_is_a_ripple_not_an_outage(live):
    summary = live.cold_summary
    assert 0 < summary["extra_origin_calls"] < 500 and summary["seconds_over_capacity"] < 60
    before = live.cold[live.cold.t_s < 100]
    assert before.hot_misses.iloc[30:].sum() == 0  # warm after 30 s: every hot read hits until the replacement


def test_polling_model_and_simulation_agree(live):
    for row in live.polling.itertuples():
        assert row.simulated_mean_users == pytest.approx(row.model_mean_users, rel=0.05)
    assert pollmodel.expected_stale_users(10, 60) == 300 and pollmodel.worst_case_stale_users(10, 60) == 600
    assert pollmodel.implied_rate(40_000, 60) == pytest.approx(666.67, rel=1e-3)


def test_hashers_follow_their_definitions():
    keys = hashing.sample_keys(5000, 1)
    for factory in hashing.SCHEMES.values():
        placement = hashing._placement(factory, hashing.node_names(3), keys)
        assert set(placement) == set(hashing.node_names(3))
    jump = hashing.JumpHash()
    for node in hashing.node_names(5):
        jump.add_node(node)
    counts = np.unique([jump.get_node(k) for k in keys], return_counts=True)[1]
    assert counts.max() / counts.mean() < 1.1
    assert hashing.analytic_remap("modulo", 3) == 0.75 and hashing.analytic_remap("jump hash", 3) == 0.25


def test_lists_lose_updates_only_without_cas(live):
    lists = live.lists.set_index("store")
    assert lists.loc["Memcached get/set", "lost_updates"] > 0
    assert lists.loc["Memcached gets/cas", "lost_updates"] == 0 and lists.loc["Memcached gets/cas", "retries"] > 0
    assert lists.loc["Redis sorted set", "round_trips_per_update"] == 1




def test_remap_chart_frame_has_both_analytic_curves(live):
    frame = hashing.remap_chart_frame(live.remap_insilico)
    assert {"N/(N+1), modulo", "1/(N+1), consistent", "modulo (computed)"} <= set(frame.series)
    modulo = frame[frame.series == "N/(N+1), modulo"].set_index("nodes_before").moved_pct
    assert modulo.loc[3] == 75.0


class TestMemcachedChapter(ChapterContract):
    chapter = chapter

    def breakages(self):
        def lost_queue(r): r.missed["caught_up"] = False
        def long_outage(r): r.cold_summary["seconds_over_capacity"] = 480
        def remapped(r):
            r.remap_nodes.loc[r.remap_nodes.scheme == "rendezvous (pymemcache default)", "moved_fraction"] = 0.3
        return [(lost_queue, "a queued invalidation survives the subscriber's restart"),
                (long_outage, "replacing a node overloaded the catalog for < 60 s, not 8 minutes"),
                (remapped, "adding a 4th node moved 1/(N+1) of the keys within 1 point (pymemcache default, real nodes)")]

    def test_verdicts(self, results):
        table = chapter.record_claims(Ledger("memcached"), results)
        verdicts = dict(zip(table.claim_id, table.verdict))
        assert verdicts["memcached.no-subscriber"] == "fails" and verdicts["memcached.remap"] == "holds"
        assert verdicts["memcached.multithreaded"] == "unverifiable"
        assert "not decidable here" in table.set_index("claim_id").loc["memcached.multithreaded", "rule"]


@pytest.mark.chapter_run
class TestMemcachedChapterLive(TestMemcachedChapter):
    """The same contract on a live run of the experiments."""

    @pytest.fixture(scope="class")
    def results(self, live):
        return live


def test_the_notebook_s_chart_frames_read_only_declared_columns(results):
    """What the notebook draws from the results runs on the recorded run (whose tables hold exactly the declared
    columns), so a helper that read an undeclared column would fail here."""
    assert not hashing.remap_chart_frame(results.remap_insilico).empty
