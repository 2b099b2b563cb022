"""The traffic chapter: the key families' stream, libCacheSim's policies (and the per-request flags that count
hits per family), Redis's own policies on a real server, the in-process libraries; the findings and the
ledger row computed from them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from chapter_contract import ChapterContract, rows

from experiments.chapters import traffic as chapter
from experiments.errors import ParameterError
from experiments.lab.servers import RedisServer
from experiments.models import peer, policies, popularity, traffic
from experiments.probes import evictionpolicy

ALPHA = 1.3


@pytest.fixture(scope="module")
def stream() -> traffic.Trace:
    return traffic.generate(chapter.chat_traffic(ALPHA, launch_at_s=60), duration_s=120, seed=3)


@pytest.fixture(scope="module")
def results(stream) -> chapter.TrafficResults:
    chat = chapter.chat_traffic(ALPHA, launch_at_s=60)
    task = traffic.generate(chat, duration_s=1800, seed=4, share=1 / chapter.TASKS)
    ws = policies.working_set_bytes(stream)
    return chapter.TrafficResults(
        wonders=traffic.one_hit_wonders(stream),
        sweep=policies.sweep(stream, fractions=chapter.FRACTIONS, progress=False),
        per_family=policies.per_family(stream, fraction=chapter.TIGHT, progress=False),
        pools=policies.pools(stream, fraction=chapter.TIGHT, policy="lru", reco_shares=chapter.RECO_SHARES),
        redis=evictionpolicy.compare(stream, cache_bytes=int(chapter.TIGHT * ws), requests=60_000),
        in_process=policies.in_process(task, maxsizes=chapter.TASK_ENTRIES),
        headroom=policies.ttl_headroom(task.select(("product",)), maxsizes=chapter.TASK_ENTRIES, ttl_s=chapter.TTL_S),
        peer=chapter.peer_check(stream, fraction=chapter.TIGHT), speed=chapter.throughput(requests=2_000_000, seed=1),
        traffic=chat, stream_s=120.0, popularity=chapter.popularity_moves())


def _scale(frame: pd.DataFrame, where: dict, column: str, factor: float) -> None:
    frame.loc[rows(frame, where), column] *= factor


class TestChapter(ChapterContract):
    chapter = chapter

    def breakages(self):
        def lru_everywhere(r):
            r.per_family.loc[r.per_family.policy == "LRU", "hit_rate"] = 1.0

        def reco_reused(r):
            r.wonders.loc[r.wonders.family == "reco", "one_hit_share"] = 0.1

        def huge_catalog(r):
            r.traffic = chapter.chat_traffic(ALPHA).__class__(product_alpha=ALPHA, catalog=10_000_000)

        return [
            (lambda r: r.peer.update(peer_hits=r.peer["peer_hits"] + 1),
             "the book's replay and libCacheSim's LRU count the same hits on the mixed stream and the timed one"),
            (lambda r: _scale(r.in_process, {"library": "cachetools LRUCache"}, "hit_rate", 0.99),
             "cachetools' LRUCache and libCacheSim's LRU count the same hits on a task's stream"),
            (lambda r: _scale(r.in_process, {"library": "theine (W-TinyLFU)"}, "hit_rate", 0.5),
             "theine's W-TinyLFU is within 2 points of libCacheSim's"),
            (reco_reused, "most recommendation keys are read once (one-hit wonders)"),
            (lru_everywhere,
             "in a tight cache a policy that demotes new keys quickly or admits by frequency hits 2 points more than LRU"),
            (lambda r: _scale(r.sweep, {"policy": "LRU"}, "hit_rate", 0.5),
             "in a large cache LRU hits at least 1 point more than S3-FIFO, SIEVE, W-TinyLFU and LFU (recent keys return)"),
            (lambda r: _scale(r.pools, {"setup": "one shared cache"}, "hit_rate", 1.5),
             "a pool of their own for the recommendations raises the products' hit rate by over 1 point"),
            (lambda r: _scale(r.redis, {"policy": "allkeys-lru"}, "hit_rate", 1.5),
             "Redis's allkeys-lfu hits at least 2 points more than allkeys-lru at a tight maxmemory"),
            (lambda r: r.headroom.__setitem__("lru_ttl_hit_rate", r.headroom.lru_ttl_hit_rate - 0.05),
             "with the note's TTL, no policy can add a point to a per-task cache of 5,000 entries"),
            (lambda r: r.popularity.__setitem__("shared_hit_pct", 95.0),
             "over the 500K catalog the note's two readings of its product traffic do not fit: on its top 100's share one "
             "shared cache hits under 80 % and the catalog carries over 4 times the misses it was sized for, and no option "
             "of decide is viable"),
            (huge_catalog,
             "one node of the type the book recommends holds everything the TTLs keep, so no policy changes its hit rate"),
        ]


def test_the_stream_is_seeded_and_its_families_use_disjoint_ids(stream):
    again = traffic.generate(chapter.chat_traffic(ALPHA, launch_at_s=60), duration_s=120, seed=3)
    assert np.array_equal(stream.entry, again.entry) and np.array_equal(stream.times, again.times)
    assert np.all(np.diff(stream.times) >= 0)
    assert np.array_equal(stream.object_family[stream.entry], stream.family)  # every request in its family's range
    rates = stream.reads_per_s()
    assert rates["product"] == pytest.approx(rates["reco"]) and rates["promo"] == pytest.approx(rates["product"])
    assert rates["review"] == pytest.approx(0.5 * rates["product"], rel=0.05)
    assert rates["product"] == pytest.approx(traffic.ChatTraffic(product_alpha=ALPHA).turns_per_s, rel=0.03)


def test_a_launch_puts_a_new_product_on_top_at_once(stream):
    products = stream.family == traffic.FAMILIES.index("product")
    before = np.bincount(stream.entry[products & (stream.times < 60)]).argmax()
    after_ids = stream.entry[products & (stream.times >= 60) & (stream.times < 70)]
    top_after = np.bincount(after_ids).argmax()
    assert top_after != before and top_after not in stream.entry[products & (stream.times < 60)]


def test_one_hit_wonders_count_objects_read_once():
    trace = traffic.Trace(entry=np.array([0, 1, 1, 2]), times=np.arange(4.0), family=np.array([0, 0, 0, 1], np.uint8),
                          sizes=np.ones(3), object_family=np.array([0, 0, 1], np.uint8))
    table = traffic.one_hit_wonders(trace).set_index("family")
    assert table.loc["product", "one_hit_share"] == 0.5 and table.loc["reco", "one_hit_share"] == 1.0
    assert table.loc["all", "objects"] == 3


def test_one_task_sees_its_share_of_the_turns():
    chat = chapter.chat_traffic(ALPHA)
    whole = traffic.generate(chat, duration_s=600, seed=5)
    task = traffic.generate(chat, duration_s=600, seed=5, share=0.1)
    assert task.entry.size == pytest.approx(0.1 * whole.entry.size, rel=0.1)


@pytest.mark.parametrize("kwargs,message", [
    ({"product_alpha": 0}, "product_alpha"), ({"stay_on_product": 1.5}, "stay_on_product"),
    ({"catalog": 1}, "catalog"), ({"think_time_s": -1}, "think_time_s"),
])
def test_bad_traffic_parameters_are_one_line_errors(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        traffic.ChatTraffic(**({"product_alpha": ALPHA} | kwargs))


@pytest.mark.parametrize("kwargs,message", [({"duration_s": 0}, "duration_s"), ({"share": 0}, "share")])
def test_bad_stream_sizes_are_one_line_errors(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        traffic.generate(traffic.ChatTraffic(product_alpha=ALPHA), **({"duration_s": 10, "seed": 1} | kwargs))


def test_per_request_flags_agree_with_the_compiled_loop_for_every_policy(stream):
    capacity = chapter.TIGHT * policies.working_set_bytes(stream)
    with peer.Stream(stream.entry, stream.times, stream.sizes) as s:
        for policy in peer.POLICIES:
            assert int(s.hit_flags(policy, capacity).sum()) == s.hits(policy, capacity), policy


def test_pools_keep_each_family_in_its_own_cache(stream):
    table = policies.pools(stream, fraction=chapter.TIGHT, policy="lru", reco_shares=[0.5])
    assert set(table.setup) == {"one shared cache", "pools, 50 % for reco"}
    unpooled = policies.pools(stream, fraction=chapter.TIGHT, policy="lru", reco_shares=[0.0])
    assert _reco_hits(unpooled, "recommendations not cached") == 0.0
    with pytest.raises(ParameterError, match="reco share"):
        policies.pools(stream, fraction=chapter.TIGHT, policy="lru", reco_shares=[1.0])


def _reco_hits(table: pd.DataFrame, setup: str) -> float:
    return float(table[(table.setup == setup) & (table.family == "reco")].hit_rate.iloc[0])


def test_an_unbounded_cache_bounds_every_policy_with_a_ttl(stream):
    room = policies.ttl_headroom(stream.select(("product",)), maxsizes=[10, 1000], ttl_s=30)
    assert (room.lru_ttl_hit_rate <= room.any_policy_bound + 1e-12).all()
    assert room.lru_ttl_hit_rate.iloc[0] < room.lru_ttl_hit_rate.iloc[1]


def test_bad_policy_arguments_are_one_line_errors(stream):
    with pytest.raises(ParameterError, match="fractions"):
        policies.sweep(stream, fractions=[0], progress=False)
    with pytest.raises(ParameterError, match="maxsize"):
        policies.in_process(stream, maxsizes=[0])
    with pytest.raises(ParameterError, match="is not one of"):
        evictionpolicy.replay(stream, policy="volatile-ttl", cache_bytes=1 << 20, requests=10)
    with pytest.raises(ParameterError, match="at least 64 KiB"):
        evictionpolicy.replay(stream, policy="allkeys-lru", cache_bytes=1000, requests=10)


def test_a_key_s_overhead_is_what_memory_usage_counts_beside_its_value():
    """`key_overhead` reads the server's own count of a key's memory, less its value: tens to hundreds of bytes
    (the key, its object, jemalloc's size class), the same whatever else the server holds in its buffers."""
    with RedisServer(name="key-overhead") as server, server.client() as client:
        assert np.isnan(evictionpolicy.key_overhead(client))
        for i in range(300):
            client.set(f"o:{i}", b"x" * 2000)
        sizes = [int(client.memory_usage(f"o:{i}", samples=0)) - 2000 for i in range(300)]
        assert evictionpolicy.key_overhead(client, keys=300) == pytest.approx(np.mean(sizes))
        assert 16 < evictionpolicy.key_overhead(client) < 700


def test_the_ttl_bound_counts_the_catalog_and_the_last_15_minutes():
    chat = traffic.ChatTraffic(product_alpha=ALPHA, turns_per_s=100.0, catalog=1000, sections=10)
    sizes = traffic.family_bytes()
    expected = (1000 * (sizes["product"] + sizes["review"]) + 100 * 900 * sizes["reco"] + 10 * sizes["promo"]) / 1e9
    assert chapter.ttl_working_set_gb(chat) == pytest.approx(expected)


def test_the_working_set_is_judged_on_the_node_the_book_recommends():
    """The node `make decide` chooses for the chatbot (with headroom), its memory after the 25 % reserved."""
    node = chapter.recommended_node()
    assert node["option"] == "valkey-durable" and node["node_type"] == "cache.m7g.large"
    assert math.isclose(node["usable_gb"], 6.38 * 0.75 * 2**30 / 1e9, rel_tol=0.01)


def test_the_chapter_uses_the_books_one_product_exponent():
    assert chapter.chat_traffic(popularity.product().alpha).product_alpha == pytest.approx(1.334, abs=0.01)
