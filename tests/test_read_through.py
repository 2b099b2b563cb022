"""The read-through chapter: each stampede protection on real Redis, the stampede across real processes
against its model, the XFetch model against its simulation, and the stale-set race and its fixes on
real Redis and Memcached. The race and the cross-process stampede are in `make soak`'s default set."""

from __future__ import annotations

import math
import threading
import time

import pandas as pd
import pytest
from chapter_contract import ChapterContract

from experiments.caches.readthrough import (
    DistributedLock,
    EarlyRecompute,
    LocalSingleFlight,
    NoProtection,
    ReadThrough,
    StaleWhileRevalidate,
)
from experiments.chapters import read_through as chapter
from experiments.errors import ParameterError
from experiments.lab.processes import running
from experiments.ledger import Ledger
from experiments.models import herd
from experiments.probes import staleset, stampede


class CountingOrigin:
    """A loader that takes ``delay_s`` and counts its calls (thread-safe)."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.delay_s, self.calls, self._lock = delay_s, 0, threading.Lock()

    def __call__(self, key: str) -> bytes:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay_s)
        return f"doc:{key}".encode()


def _herd(rt: ReadThrough, key: str, callers: int) -> list[str]:
    sources: list[str] = []
    start = threading.Barrier(callers)

    def call() -> None:
        start.wait()
        sources.append(rt.get(key)[1])

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sources


@pytest.mark.parametrize("protection, calls", [(NoProtection(), 24), (LocalSingleFlight(), 1), (DistributedLock(), 1),
                                               (StaleWhileRevalidate(), 1)])
def test_a_herd_of_threads_makes_the_expected_origin_calls(redis_server, protection, calls):
    client = redis_server.client()
    origin = CountingOrigin()
    rt = ReadThrough(client, origin, protection, ttl_ms=5000)
    key = f"test:herd:{protection.name}"
    try:
        sources = _herd(rt, key, 24)
        assert origin.calls == calls
        assert sources.count("origin") == calls and "error" not in sources
        assert rt.get(key) == (f"doc:{key}".encode(), "hit")
    finally:
        client.delete(key, "lock:" + key)
        client.close()


def test_a_lock_is_released_only_by_its_owner(redis_server):
    client = redis_server.client()
    rt = ReadThrough(client, CountingOrigin(), DistributedLock(), ttl_ms=1000)
    try:
        token = rt.try_lock("test:lock", 5000)
        assert token and rt.try_lock("test:lock", 5000) is None
        rt.unlock("test:lock", "someone-else")
        assert client.get("lock:test:lock") == token.encode()
        rt.unlock("test:lock", token)
        assert client.get("lock:test:lock") is None
    finally:
        client.delete("lock:test:lock")
        client.close()


def test_xfetch_recomputes_near_expiry_and_not_long_before(redis_server):
    client = redis_server.client()
    origin = CountingOrigin(delay_s=0.0)
    rt = ReadThrough(client, origin, EarlyRecompute(seed=1), ttl_ms=60_000)
    try:
        client.set("test:x", b"100.0|v", px=60_000)  # a 100 ms reload, a minute before expiry
        assert {rt.get("test:x")[1] for _ in range(200)} == {"hit"} and origin.calls == 0
        client.set("test:x", b"100.0|v", px=2)  # 2 ms before expiry: recomputed at once
        assert rt.get("test:x")[1] == "origin" and origin.calls == 1
    finally:
        client.delete("test:x")
        client.close()


def test_stale_while_revalidate_answers_at_once_and_refreshes_once(redis_server):
    client = redis_server.client()
    origin = CountingOrigin(delay_s=0.1)
    protection = StaleWhileRevalidate(grace_ms=5000)
    rt = ReadThrough(client, origin, protection, ttl_ms=60_000)
    try:
        rt.fill("test:swr")
        client.pexpire("test:swr", 4000)  # past the soft TTL, inside the grace period
        began = time.monotonic()
        sources = [rt.get("test:swr")[1] for _ in range(20)]
        assert time.monotonic() - began < 0.1 and set(sources) == {"stale"}
        time.sleep(0.3)
        assert rt.get("test:swr")[1] == "hit" and origin.calls == 2  # the fill above, and one refresh
    finally:
        client.delete("test:swr", "lock:test:swr")
        client.close()


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_xfetch_model_within_5_percent_of_its_simulation(beta):
    simulated = herd.xfetch_simulation(reads_per_s=2000, beta=beta, trials=2000, seed=3).mean()
    assert simulated == pytest.approx(math.exp(1 / beta), rel=0.05)


def test_the_sweep_grid_and_beta_table():
    grid = stampede.sweep_grid(160, 8)
    assert [t for p, _, t in grid if p == "single-flight per task"] == [1, 2, 4, 8]
    assert {(c, t) for p, c, t in grid if p == "none"} == {(40, 4), (160, 4)}
    table = herd.xfetch_betas(reads_per_s=2000, betas=[1.0, 2.0], trials=500, seed=1).set_index("beta")
    assert table.loc[2.0, "simulated_calls"] < table.loc[1.0, "simulated_calls"]  # larger beta: fewer duplicates
    assert table.loc[2.0, "first_recompute_before_expiry_ms"] > table.loc[1.0, "first_recompute_before_expiry_ms"]


def test_bad_shapes_and_names_are_one_line_errors():
    with pytest.raises(ParameterError, match="multiple of tasks"):
        stampede.Shape(callers=10, tasks=3)
    with pytest.raises(ParameterError, match="at most 32 task processes"):
        stampede.Shape(callers=2000, tasks=4)
    with pytest.raises(ParameterError, match="ttl_ms"):
        stampede.Shape(callers=8, tasks=2, ttl_ms=1000)
    with pytest.raises(ParameterError, match="is not one of"):
        herd.expected_origin_calls("coalesce", callers=1, tasks=1)


@pytest.fixture(scope="module")
def results(redis_server, memcached_server):
    shape = stampede.Shape(callers=16, tasks=2, after_ms=400)
    with stampede.Bench(redis_server, tasks=2, seed=1) as bench:
        pids = [bench.origin.process.pid, *bench.pool.pids]
        compared = stampede.compare(bench, shape)
        swept = stampede.sweep(bench, [("single-flight per task", 16, 1), ("none", 8, 2)], after_ms=400, progress=False)
        with pytest.raises(ParameterError, match="exceeds the 2 task processes"):
            bench.run("none", stampede.Shape(callers=16, tasks=4))
    assert not any(running(pid) for pid in pids), "a task or origin process outlived the bench"
    replay, stressed = staleset.run_all(redis_server, memcached_server, trials=300, seed=2)
    return chapter.ReadThroughResults(
        shape=shape, compare=compared, sweep=swept, replay=replay, stress=stressed,
        xfetch_simulated=herd.xfetch_simulation(reads_per_s=320, trials=1000, seed=1))


def test_stampede_across_processes_follows_the_model(results):
    rows = pd.concat([results.compare, results.sweep]).set_index(["protection", "callers", "tasks"]).origin_calls
    assert rows["none", 16, 2] >= 15 and rows["none", 8, 2] >= 7
    assert rows["single-flight per task", 16, 2] == 2 and rows["single-flight per task", 16, 1] == 1
    assert rows["distributed lock", 16, 2] <= 2 and rows["stale-while-revalidate", 16, 2] <= 2
    assert rows["early recomputation (XFetch)", 16, 2] <= 10


def test_the_stale_set_race_and_its_fixes(results):
    stale = results.stress.set_index("cache").stale_entries
    assert stale["Redis"] > 0 and stale["Memcached"] > 0
    assert stale["Redis, versioned set"] == 0 and stale["Memcached, lease"] == 0
    replay = results.replay.set_index("cache")
    assert replay.stale.to_dict() == {"Redis": True, "Redis, versioned set": False, "Memcached": True,
                                      "Memcached, lease": False}
    assert replay.loc["Redis", "stale_for_s"] > 290


class TestReadThroughChapter(ChapterContract):
    chapter = chapter

    def breakages(self):
        def stale_version(r): r.stress.loc[r.stress.cache == "Redis, versioned set", "stale_entries"] = 1
        def leaky_lock(r): r.compare.loc[r.compare.protection == "distributed lock", "origin_calls"] = 5
        return [(stale_version, "the versioned set and the lease left none"),
                (leaky_lock, "a distributed lock let at most 2 calls through, at every size tried")]

    def test_verdicts(self, results):
        assert len(chapter.record_claims(Ledger("read-through"), results)) == 12


def test_the_slow_share_grid_adds_valid_runs_for_any_callers():
    """Stale-while-revalidate at the sweep's XFetch points and both near half the callers: eight runs with the
    compared two at the chapter's 160 callers in 8 tasks, and never a point `Shape` would refuse."""
    from experiments.chapters import read_through

    assert len(read_through.slow_share_grid(160, 8)) == 4
    for callers, tasks in [(160, 8), (100, 8), (500, 8), (1, 1), (8, 8), (40, 4)]:
        for _name, c, t in read_through.slow_share_grid(callers, tasks):
            assert c >= t >= 1 and c % t == 0
