"""Which server processes are running on this machine, read from /proc.

Used by the book runner and the tests to prove that nothing outlived its owner. A zombie (a process
that has exited but is not yet reaped by its new parent) is not running and is not counted.
"""

from __future__ import annotations

import os
from pathlib import Path

SERVER_NAMES = ("redis-server", "redis-sentinel", "valkey-server", "valkey-sentinel", "memcached")
WORKER_MODULES = ("experiments.caches.nearcache_worker", "experiments.caches.origin_server", "experiments.probes.stampede_worker")
"""Python modules the book runs as helper processes; they must not outlive their owner either."""


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` (R, S, Z, …), or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    state = process_state(pid)
    return state is not None and state != "Z"


def descendants(pid: int) -> list[int]:
    """Every running process below ``pid`` in the process tree (children, their children, …)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, frontier = [], [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found.extend(children)
        frontier.extend(children)
    return found


SESSION_ENV = "CACHEBOOK_SESSION"
"""Environment variable that marks every process of one run (a test session, a book build); servers
inherit it from whoever started them, so a run can tell its servers from those of a concurrent run."""


def in_session(pid: int, session: str) -> bool:
    """True if ``pid`` carries this run's ``CACHEBOOK_SESSION`` marker."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{SESSION_ENV}={session}".encode() in environ


def _is_worker(pid: str) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(module.encode() in argv for module in WORKER_MODULES)


def server_processes(session: str | None = None) -> list[int]:
    """PIDs of running Redis, Valkey (servers and sentinels) and memcached processes and of the book's worker
    processes — of one run's session if ``session`` is given, else of any owner."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            name = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        candidate = (name in SERVER_NAMES or _is_worker(entry)) and running(int(entry))
        if candidate and (session is None or in_session(int(entry), session)):
            found.append(int(entry))
    return sorted(found)
