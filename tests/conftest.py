"""Shared fixtures: real servers for the whole session, and a guard that no server outlives a test.

The guard counts redis-server / redis-sentinel / memcached processes before the session and after
it; any new one is a leak, which fails the run (and is then killed, so one leak does not poison the
next run).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from experiments.processes import server_processes
from experiments.servers import MemcachedServer, RedisServer


@pytest.fixture(scope="session", autouse=True)
def no_leaked_servers():
    before = set(server_processes())
    yield
    deadline = time.monotonic() + 5
    leaked = set(server_processes()) - before
    while leaked and time.monotonic() < deadline:
        time.sleep(0.1)
        leaked = set(server_processes()) - before
    for pid in leaked:
        os.kill(pid, signal.SIGKILL)
    assert not leaked, f"server processes outlived the test session: {sorted(leaked)}"


@pytest.fixture(autouse=True)
def results_in_tmp(tmp_path, monkeypatch):
    """Ledger rows and numbers written by tests go to a temporary folder, not _build/results."""
    monkeypatch.setenv("CACHE_BOOK_RESULTS", str(tmp_path / "results"))


@pytest.fixture(scope="session")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def memcached_server():
    with MemcachedServer() as server:
        yield server
