"""The Valkey chapter on real servers of both engines, small: versions, GET and invalidation, the missed
event, failover and the lost DEL, the cluster, bytes per item, threads, the libraries' client caches; the
price table and cost model; and the findings and ledger rows computed from them. The probe tests and
`TestChapterLive` run the experiments (``live``, `chapter_run`); the contract runs on a recorded run
(``results``, `tests/recorded.py`) in every `make test`."""

from __future__ import annotations

import pandas as pd
import pytest
import recorded
from chapter_contract import ChapterContract, rows

from experiments.caches import nearcache
from experiments.chapters import valkey as chapter
from experiments.errors import ParameterError
from experiments.lab.endpoints import open_redis
from experiments.lab.servers import RedisServer, engine_named, server_identity
from experiments.lab.topologies import RedisClusterSet, Together
from experiments.models import pricing
from experiments.probes import clientcache, failover, itembytes, parity


def live_results() -> chapter.ValkeyResults:
    """The chapter's experiments, small, on real servers of both engines."""
    targets = {engine: open_redis("", engine=engine) for engine in ("redis", "valkey")}
    sets = {engine: failover.ParallelSets([1000, 1000], engine=engine) for engine in ("redis", "valkey")}
    clusters = {engine: RedisClusterSet(engine=engine) for engine in ("redis", "valkey")}
    fleet = Together([*sets.values(), *clusters.values()]).start_in_background()
    try:
        item_bytes = itembytes.measure(2_000, large_items=100, progress=False)
        fleet.wait()
        servers = {engine: target.server for engine, target in targets.items()}
        with nearcache.Fleet(servers["valkey"], size=2, mode="tracking", prefix="cachebook:near:") as near:
            near_drop = nearcache.link_drop(near)
        r = chapter.ValkeyResults(
            versions=parity.versions(),
            get_latency=parity.get_latency(targets, 500, progress=False),
            invalidation=parity.invalidation_latency(targets, 50),
            missed=parity.missed_events(targets),
            failover=parity.failover({e: s.groups for e, s in sets.items()}, keys=1000),
            cluster=parity.cluster(clusters, reads=2_000),
            item_bytes=item_bytes,
            threads=parity.engine_threads(requests=5_000, seconds=1),
            client_cache=pd.DataFrame([clientcache.redis_py_refusal(s) for s in servers.values()]),
            glide=clientcache.glide_cache(servers["valkey"], changes=5),
            near_cache_drop=near_drop,
        )
    finally:
        fleet.stop()
        for target in targets.values():
            target.close()
    return r


live, results = recorded.fixtures("valkey", chapter.ValkeyResults, live_results)


def _set(frame: pd.DataFrame, where: dict, column: str, value) -> None:
    frame.loc[rows(frame, where), column] = value


class TestChapter(ChapterContract):
    chapter = chapter

    def breakages(self):
        return [
            (lambda r: _set(r.versions, {"engine": "valkey"}, "redis_version", "8.0.1"),
             "Valkey 8.0 answers as Redis 7.2.4 to clients that check the version"),
            (lambda r: _set(r.invalidation, {"engine": "valkey", "path": "pub/sub"}, "p99_ms", 60.0),
             "invalidation by pub/sub and by stream reaches the key within 50 ms at p99 on both engines (as the Redis "
             "chapter's)"),
            (lambda r: _set(r.missed, {"engine": "valkey", "transport": "PubSub"}, "caught_up", True),
             "a pub/sub event sent while the subscriber is away is lost on both; a stream's is replayed on both"),
            (lambda r: _set(r.failover, {"engine": "valkey"}, "keys_after", 1),
             "both engines promote the replica within detection + 10 s and keep every acknowledged key"),
            (lambda r: _set(r.failover, {"engine": "valkey"}, "promotion_s", 9.0),
             "both engines promote the replica within detection + 10 s and keep every acknowledged key"),
            (lambda r: _set(r.invalidation, {"engine": "valkey", "path": "pub/sub"}, "p99_spread_ms", 20.0),
             "invalidation by pub/sub and by stream reaches the key within 50 ms at p99 on both engines (as the Redis "
             "chapter's)"),
            (lambda r: _set(r.failover, {"engine": "valkey"}, "lost_deletes_found", 0),
             "both engines lose every DEL acknowledged after the replica was cut off"),
            (lambda r: _set(r.cluster, {"engine": "valkey"}, "hot_key_share", 0.5),
             "one hot key sends all its reads to one cluster node on both engines"),
            (lambda r: _set(r.item_bytes, {"engine": "valkey", "layout": "promo, 1 KB JSON"}, "bytes_per_item", 1e6),
             "Valkey stores every layout in no more memory than Redis 7.0 (within 1 %)"),
            (lambda r: _set(r.item_bytes, {"engine": "valkey", "layout": "reco, sorted set"}, "bytes_per_item",
                            float(r.item_bytes[(r.item_bytes.engine == "redis")
                                               & (r.item_bytes.layout == "reco, sorted set")].bytes_per_item.iloc[0])),
             "Valkey's sorted set is at least 20 % smaller than Redis 7.0's (the scores' text)"),
            (lambda r: _set(r.item_bytes, {"engine": "memcached", "layout": "product, 100 KB JSON"}, "overhead_pct", 20.0),
             "jemalloc's size classes cost a 100 KB value over 10 %, memcached's slab under 5 %"),
            (lambda r: _set(r.client_cache, {"engine": "valkey"}, "redis_py_cache_accepted", True),
             "redis-py's built-in client cache refuses Redis 7.0 and Valkey 8.0"),
            (lambda r: r.glide.update(change_seen_p50_ms=50.0),
             "glide's cache serves repeated reads locally and sees a change within 10 ms"),
            (lambda r: r.glide.update(stale_after_drop_s=0.0),
             "after a dropped link glide serves a change made meanwhile stale until the entry's TTL; the book's "
             "near cache does not"),
            (lambda r: r.item_bytes.__setitem__("bytes_per_item", r.item_bytes.bytes_per_item * 10),
             "the note's catalog fits a Redis OSS primary + replica for less than the note's $400 a month"),
            (lambda r: r.item_bytes.__setitem__("bytes_per_item", r.item_bytes.bytes_per_item * 20),
             "for the note's catalog and traffic, Serverless Valkey is the cheapest deployment"),
        ]


@pytest.mark.chapter_run
class TestChapterLive(TestChapter):
    """The same contract on a live run of the experiments."""

    @pytest.fixture(scope="class")
    def results(self, live):
        return live


def test_engines_report_who_they_are():
    for engine in ("redis", "valkey"):
        with RedisServer(engine=engine) as server, server.client() as client:
            identity = server_identity(client)
        assert identity["server_name"] == engine
    assert identity["redis_version"] == "7.2.4" and identity["version"].startswith("8.")


def test_an_unknown_engine_is_one_line():
    with pytest.raises(ParameterError, match="use one of redis, valkey"):
        engine_named("keydb")
    with pytest.raises(ParameterError, match="use one of redis, valkey"):
        RedisServer(engine="keydb")


def test_the_mass_insertion_commands_are_the_protocol_s_own():
    layout = itembytes.LAYOUTS[3]  # the sorted set: ZADD then EXPIRE per key
    commands = itembytes.load_commands(layout, range(2), 900)
    assert commands.count(b"ZADD") == 2 and commands.count(b"EXPIRE") == 2
    first = commands.split(b"*3\r\n$6\r\nEXPIRE")[0]
    assert first.startswith(b"*42\r\n$4\r\nZADD\r\n$24\r\nreco:u0000000:B08X1YRSTR\r\n")


def test_every_price_row_has_a_source_and_a_date():
    table = pricing.prices()
    assert table.source.str.len().gt(20).all() and table.read_on.str.match(r"\d{4}-\d{2}-\d{2}$").all()
    assert set(table.basis) <= {"recorded", "stated"}


def test_valkey_s_stated_discount_matches_every_recorded_node_pair():
    redis, valkey = (pricing.node_types(e).set_index("node_type") for e in ("redis", "valkey"))
    recorded = valkey[valkey.price == "recorded"].index
    assert len(recorded) >= 3
    for node in recorded:
        assert valkey.loc[node, "usd_per_hour"] == pytest.approx(0.8 * redis.loc[node, "usd_per_hour"], rel=1e-3)


def test_the_cheapest_cluster_holds_the_data_and_nothing_cheaper_does():
    cluster = pricing.cheapest_cluster("valkey", 4.0)
    assert cluster.usable_gib * cluster.shards * 2**30 >= 4e9
    cheaper = pricing.node_types("valkey").query("usd_per_hour < @cluster.usd_per_hour and not burstable")
    assert (cheaper.usable_gib * 2**30 < 4e9 / cluster.shards).all() or cluster.shards == 1
    assert pricing.cheapest_cluster("valkey", 1.0, burstable=True).node_type.startswith("cache.t")
    with pytest.raises(ParameterError):
        pricing.cheapest_cluster("valkey", 0)


def test_serverless_bills_the_minimum_storage_and_one_ecpu_per_kb():
    assert pricing.ecpus_per_command(0.2) == 1.0 and pricing.ecpus_per_command(3.2) == pytest.approx(3.2)
    tiny = pricing.serverless_per_month("valkey", ecpus_per_s=0, stored_gb=0.01)
    assert tiny["billed_gb"] == 0.1 and tiny["usd_per_month"] == pytest.approx(0.1 * 730 * 0.084)
    assert pricing.serverless_per_month("redis", ecpus_per_s=0, stored_gb=0.01)["billed_gb"] == 1.0
    month = pricing.serverless_per_month("valkey", ecpus_per_s=1000, stored_gb=1)
    assert month["ecpu_usd"] == pytest.approx(1000 * 3600 * 730 / 1e6 * 0.0023)


def test_serverless_storage_breaks_even_with_a_node_pair_at_a_few_gb():
    size = pricing.serverless_break_even_gb("valkey")
    pair = pricing.cheapest_cluster("valkey", size).usd_per_month
    assert 1 < size < 10
    assert pricing.serverless_per_month("valkey", ecpus_per_s=0, stored_gb=size)["usd_per_month"] > pair


def test_cross_az_transfer_is_priced_per_gb_crossing():
    assert pricing.cross_az_per_month(1e9 / 3600 / 730, cross_share=1.0) == pytest.approx(0.01)
    with pytest.raises(ParameterError):
        pricing.cross_az_per_month(1.0, cross_share=2)


def test_the_notebook_s_tables_and_chart_frames_read_only_declared_columns(results):
    """What the notebook draws from the results runs on the recorded run (whose tables hold exactly the declared
    columns), so a helper that read an undeclared column would fail here."""
    assert not chapter.noise_table(results.get_latency, results.invalidation).empty
    assert not chapter.costs(results.item_bytes).empty
    assert not chapter.reported(results).empty
    assert not chapter.bytes_chart_frame(results.item_bytes).empty
    assert len(chapter.threads_ratio(results.threads))
