"""experiments.probes.partition: cache clients across a silent partition on the network lab, real servers."""

from __future__ import annotations

import pytest

from experiments.errors import ParameterError
from experiments.lab.netlab import NetLab
from experiments.lab.servers import RedisServer
from experiments.probes import partition


@pytest.fixture(scope="module")
def timeouts():
    return partition.client_timeouts(budget_timeout_s=0.25, cap_s=2.0).set_index(["client", "timeout_s", "retries"])


def test_default_timeouts_block_past_any_turn_budget(timeouts):
    defaults = timeouts[timeouts.index.get_level_values("timeout_s").isna()]
    assert defaults.still_blocked_at_cap.all() and (defaults.after_heal == "answered").all()


def test_redis_py_s_default_retries_outlast_its_timeout_and_none_keeps_the_budget(timeouts):
    assert timeouts.loc[("redis-py", 0.25, "default"), "still_blocked_at_cap"]  # 10 retries with backoff
    no_retry = timeouts.loc[("redis-py", 0.25, 0)]
    assert no_retry.ended == "TimeoutError" and 0.2 <= no_retry.blocked_s < 1.0


def test_pymemcache_with_a_timeout_fails_within_it(timeouts):
    row = timeouts.loc[("pymemcache", 0.25, "default")]
    assert row.ended == "TimeoutError" and 0.2 <= row.blocked_s < 1.0


def test_an_unknown_client_is_one_line():
    with NetLab(["cache", "app"]) as lab, pytest.raises(ParameterError, match="is not one of"):
        partition.blocked_call(lab, lab.place("cache", RedisServer), "aioredis", timeout_s=1, cap_s=1)


def test_a_flapping_memcached_node_returns_with_every_invalidated_key_stale():
    flap = partition.memcached_flap(keys=60, dead_timeout_s=1.5)
    assert flap["ejected"] and 1.0 < flap["ejected_after_s"] < 8.0  # pymemcache's 2 retries, 1 s apart
    assert 0 < flap["keys_on_flapping_node"] < 60
    assert flap["stale_reads_after_return"] == flap["keys_on_flapping_node"]


def test_bad_flap_sizes_are_one_line():
    with pytest.raises(ParameterError, match="must be positive"):
        partition.memcached_flap(keys=0, dead_timeout_s=1)


def test_a_capped_link_lets_through_the_gets_its_bandwidth_carries():
    link = partition.saturated_link(mbit=100, value_bytes=[102_400, 2_048], seconds=1.0).set_index("value_bytes")
    assert ((0.85 < link.link_share) & (link.link_share < 1.05)).all()  # the cap, not the client, sets the rate
    assert link.loc[2_048, "gets_per_s"] > 30 * link.loc[102_400, "gets_per_s"]  # a 2 KB projection: 50x the reads


def test_bad_link_sizes_are_one_line():
    with pytest.raises(ParameterError, match="must be positive"):
        partition.saturated_link(mbit=0, value_bytes=[1])
