"""experiments.probes.partition: cache clients across a silent partition on the network lab, real servers.

The tests that re-run the network chapter's experiments are marked `chapter_run`: in `make test` nbval runs
the chapter, which asserts the same facts; `make soak` runs these 20 times."""

from __future__ import annotations

import pytest

from experiments.errors import ParameterError
from experiments.lab.netlab import NetLab
from experiments.lab.servers import RedisServer
from experiments.probes import partition


@pytest.fixture(scope="module")
def timeouts():
    return partition.client_timeouts(budget_timeout_s=0.25, cap_s=2.0).set_index(["client", "timeout_s", "retries"])


@pytest.mark.chapter_run
def test_default_timeouts_block_past_any_turn_budget(timeouts):
    defaults = timeouts[timeouts.index.get_level_values("timeout_s").isna()]
    assert defaults.still_blocked_at_cap.all() and (defaults.after_heal == "answered").all()


@pytest.mark.chapter_run
def test_redis_py_s_default_retries_outlast_its_timeout_and_none_keeps_the_budget(timeouts):
    assert timeouts.loc[("redis-py", 0.25, "default"), "still_blocked_at_cap"]  # 10 retries with backoff
    no_retry = timeouts.loc[("redis-py", 0.25, 0)]
    assert no_retry.ended == "TimeoutError" and 0.2 <= no_retry.blocked_s < 1.0


@pytest.mark.chapter_run
def test_pymemcache_with_a_timeout_fails_within_it(timeouts):
    row = timeouts.loc[("pymemcache", 0.25, "default")]
    assert row.ended == "TimeoutError" and 0.2 <= row.blocked_s < 1.0


def test_an_unknown_client_is_one_line():
    with NetLab(["cache", "app"]) as lab, pytest.raises(ParameterError, match="is not one of"):
        partition.blocked_call(lab, lab.place("cache", RedisServer), "aioredis", timeout_s=1, cap_s=1)


@pytest.mark.chapter_run
def test_a_flapping_node_returns_stale_and_a_replaced_one_empty():
    runs = partition.memcached_flaps(keys=60, dead_timeout_s=1.5).set_index("replaced")
    assert runs.ejected.all() and ((1.0 < runs.ejected_after_s) & (runs.ejected_after_s < 8.0)).all()  # 2 tries, 1 s apart
    flap, replaced = runs.loc[False], runs.loc[True]
    assert 0 < flap.keys_on_node < 60 and flap.misses_while_out == flap.keys_on_node
    assert flap.stale_reads_after_return == flap.keys_on_node and flap.misses_after_return == 0
    assert replaced.stale_reads_after_return == 0 and replaced.misses_after_return == replaced.keys_on_node
    assert (runs.ttl_s == 300).all()  # entries carry the product TTL: how long a stale one can stay


def test_bad_flap_sizes_are_one_line():
    with pytest.raises(ParameterError, match="must be positive"):
        partition.memcached_flap(keys=0, dead_timeout_s=1)


def test_the_hot_product_three_ways():
    values = partition.hot_product_values()
    assert len(values["100 KB JSON"]) == 102_400 and len(values["2 KB item"]) == 2_048
    assert 1.2 < len(values["100 KB JSON"]) / len(values["100 KB JSON, zstd"]) < 3  # random-letter filler


@pytest.mark.chapter_run
def test_a_capped_link_lets_through_the_gets_its_bandwidth_carries():
    values = partition.hot_product_values()
    link = partition.saturated_link(mbit=100, values={k: values[k] for k in ("100 KB JSON", "2 KB item")},
                                    seconds=5.0).set_index("value")  # rounds of ~120 100 KB GETs at 100 Mbit/s
    assert ((0.85 < link.link_share) & (link.link_share < 1.05)).all()  # the cap, not the client, sets the rate
    assert link.loc["2 KB item", "gets_per_s"] > 30 * link.loc["100 KB JSON", "gets_per_s"]  # 50x the reads


def test_bad_link_sizes_are_one_line():
    with pytest.raises(ParameterError, match="must be positive"):
        partition.saturated_link(mbit=0, values={"x": b"1"})

