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
