"""Degraded modes: the breaker, the reader's four modes against a real Redis, memcached and a cache that does not
answer; the fleet model and its exact checks; the lab run's refusal of bad sizes."""

from __future__ import annotations

import numpy as np
import pytest
import redis
from cachetools import TTLCache
from redis.backoff import NoBackoff
from redis.retry import Retry

from experiments.caches.degraded import MODES, Breaker, DegradedReader
from experiments.errors import ParameterError
from experiments.lab.spawner import free_port
from experiments.models import degraded as model
from experiments.models.taskcache import TaskTraffic, predict, requests
from experiments.probes import degraded


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_on_failure_and_lets_one_caller_try_after_open_s():
    clock = Clock()
    breaker = Breaker(failures=2, open_s=5, clock=clock)
    breaker.failure()
    assert breaker.allow()  # one failure of two
    breaker.failure()
    assert not breaker.allow()
    clock.now = 5.0
    assert breaker.allow() and not breaker.allow()  # the trial, then the others keep skipping
    breaker.success()
    assert breaker.allow()


def test_bad_breakers_and_modes_are_one_line(redis_server):
    with pytest.raises(ParameterError, match="failures=0"):
        Breaker(failures=0)
    with pytest.raises(ParameterError, match="is not one of"):
        DegradedReader("retry forever", cache=None, origin=str, breaker=Breaker())
    with pytest.raises(ParameterError, match="give `local`"):
        DegradedReader("in-process copy", cache=None, origin=str, breaker=Breaker())


@pytest.fixture
def unreachable():
    """A client of a port nothing listens on: a real connection refusal, at once."""
    return redis.Redis(port=free_port(), socket_timeout=0.25, socket_connect_timeout=0.25, retry=Retry(NoBackoff(), 0))


def _origin(calls: list):
    def load(key: str) -> bytes:
        calls.append(key)
        return f"doc:{key}".encode()
    return load


def test_a_reachable_cache_serves_and_fills(redis_server):
    calls: list = []
    with redis_server.client() as client:
        client.delete("product:B1")
        reader = DegradedReader("fail open", cache=client, origin=_origin(calls), breaker=Breaker())
        assert reader.get("product:B1") == (b"doc:product:B1", "origin")
        assert reader.get("product:B1") == (b"doc:product:B1", "cache") and calls == ["product:B1"]
        client.delete("product:B1")


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_when_the_cache_is_away(mode, unreachable, memcached_server):
    calls: list = []
    local = TTLCache(10, 300)
    local["product:B1"] = b"kept"
    reader = DegradedReader(mode, cache=unreachable, origin=_origin(calls), breaker=Breaker(open_s=60),
                            local=local if mode == "in-process copy" else None,
                            gutter=(lambda: memcached_server.client()) if mode == "gutter pool" else None)
    first, second = reader.get("product:B1"), reader.get("product:B1")
    expected = {"fail open": [(b"doc:product:B1", "origin")] * 2, "fail fast": [(None, "none")] * 2,
                "in-process copy": [(b"kept", "local copy")] * 2,
                "gutter pool": [(b"doc:product:B1", "origin"), (b"doc:product:B1", "gutter")]}[mode]
    assert [first, second] == expected
    assert len(calls) == {"fail open": 2, "fail fast": 0, "in-process copy": 0, "gutter pool": 1}[mode]
    if mode == "gutter pool":
        memcached_server.client().delete("product:B1")


def test_the_fleet_model_orders_the_modes_and_needs_the_product_ttl_in_the_gutter():
    shares = {mode: model.origin_share(mode) for mode in MODES}
    assert shares["fail open"] == 1 and shares["fail fast"] == 0
    assert 0 < shares["gutter pool"] < shares["in-process copy"] < 1
    rate = model.traffic().reads_per_s
    ttl = model.gutter_ttl_for(rate * 0.05)  # the planned 95 % is the product TTL's hit rate
    assert ttl == pytest.approx(300, rel=0.01)
    with pytest.raises(ParameterError, match="no gutter TTL"):
        model.gutter_ttl_for(0.0)


def test_the_exact_replay_agrees_with_the_per_task_model_on_a_long_stream():
    fleet = model.traffic()
    task = TaskTraffic(catalog=fleet.catalog, alpha=fleet.alpha, reads_per_s=fleet.reads_per_s / 60)
    items, times = requests(task, 60_000, 1)
    replayed = model.local_copy_replay(items, times, warm=6_667, entries=5_000, ttl_s=300)
    assert replayed == pytest.approx(predict(task, tasks=1, maxsize=5_000, ttl_s=300)["hit_rate"], abs=0.01)
    with pytest.raises(ParameterError, match="warm="):
        model.local_copy_replay(items[:5], times[:5], warm=5, entries=5, ttl_s=1)


def test_bad_outage_sizes_are_one_line():
    with pytest.raises(ParameterError, match="must be positive"):
        degraded.outage(reads=0, fleet_reads=10)
    with pytest.raises(ParameterError, match="timeout_s within the budget"):
        degraded.outage(reads=10, fleet_reads=10, timeout_s=3.0)


def test_a_gutter_filled_on_a_miss_starts_with_the_fail_open_load():
    """At the outage's start the gutter is empty: the catalog gets every read, then each key's reads until its
    first fill (Σ λ·e^(−λt)); the closed form matches a direct sum, and the load falls below the capacity later
    than a minute at the note's rate."""
    fleet = model.traffic()
    start, later = model.gutter_fill_load([0.0, 60.0])
    assert start == pytest.approx(fleet.reads_per_s)
    rates = fleet.reads_per_s * fleet.popularity()
    assert later == pytest.approx(float((rates * np.exp(-rates * 60)).sum()), rel=0.01)
    capacity = 2000 / 60
    assert 60 < model.gutter_over_capacity_s(capacity) < 300
    ttl = model.gutter_ttl_for(capacity)
    assert 0.9 < model.gutter_cold_answered(capacity, gutter_ttl_s=ttl) < 0.99
    with pytest.raises(ParameterError, match="would drain"):
        model.gutter_cold_answered(capacity, gutter_ttl_s=10 * ttl)
