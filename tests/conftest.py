"""Shared fixtures: real servers for the whole session, and a guard that no server outlives a test.

The guard marks the session in the environment (every server started by the tests, their
subprocesses and kernels inherits the mark) and at the end looks for marked redis-server /
redis-sentinel / memcached processes: any one is a leak, which fails the run and is then killed.
Servers of a concurrent run (another test session, a book build) carry another mark and are left alone.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import nullcontext

import pytest

from experiments.lab import quiet
from experiments.lab.netlab import lab_namespaces
from experiments.lab.processes import SESSION_ENV, server_processes
from experiments.lab.servers import MemcachedServer, RedisServer

LIVE_FIXTURE = "live"
"""The fixture that re-runs a chapter's failover, cluster and cold-node experiments (`tests/recorded.py`)."""


def pytest_collection_modifyitems(items):
    """Mark the tests that need a chapter's experiments re-run (`chapter_run`): in `make test` the
    chapter itself runs them under nbval and asserts the same findings, and its contract runs on a recorded
    run, so only `make soak` runs these."""
    for item in items:
        if LIVE_FIXTURE in getattr(item, "fixturenames", ()):  # a notebook cell (nbval) has none
            item.add_marker(pytest.mark.chapter_run)


@pytest.fixture(scope="session", autouse=True)
def no_leaked_servers():
    """Servers started by this session (marked through the environment) must all be gone at its end."""
    session = os.environ.setdefault(SESSION_ENV, f"pytest-{os.getpid()}")
    yield
    deadline = time.monotonic() + 5
    leaked = set(server_processes(session))
    while leaked and time.monotonic() < deadline:
        time.sleep(0.1)
        leaked = set(server_processes(session))
    for pid in leaked:
        os.kill(pid, signal.SIGKILL)
    assert not leaked, f"server processes outlived the test session: {sorted(leaked)}"
    left = lab_namespaces(os.getpid())
    assert not left, f"network-lab namespaces outlived the test session: {left}"


def _hold(item):
    """What a test item holds of the machine-wide lock (`experiments.lab.quiet`) in each of its phases.

    Every phase is load for whatever runs beside it (the other test worker, a chapter): a package test's
    fixtures of any scope (a session's servers, a module's simulations or book build) are set up and torn down
    in its setup and teardown phases, and a notebook's kernel starts in its first cell's setup. A package test
    holds a foreground section, so what it starts runs under its hold and a timing it asserts waits for a quiet
    machine like a chapter's does. A notebook cell's phases hold a plain busy section: its kernel must not run
    under this process's hold, since the kernel takes its own sections for its cells (so a cell's call phase
    holds nothing here). The lock's own tests, and a test that runs a chapter whose findings it asserts
    (`holds_no_lock`), hold nothing: they, or the chapter's kernel, take its sections themselves.
    """
    if item.get_closest_marker("holds_no_lock"):
        return nullcontext()
    return quiet.foreground() if isinstance(item, pytest.Function) else quiet.busy()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """Fixture set-up of every scope (and a notebook's kernel start) holds the lock (`_hold`)."""
    with _hold(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A package test's body holds the lock (`_hold`); a notebook cell's kernel holds its own."""
    with _hold(item) if isinstance(item, pytest.Function) else nullcontext():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Fixture teardown of every scope (and a notebook's kernel stop) holds the lock (`_hold`)."""
    with _hold(item):
        return (yield)


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
