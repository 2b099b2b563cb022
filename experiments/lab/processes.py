"""Which server processes are running on this machine, read from /proc.

Used by the book runner and the tests to prove that nothing outlived its owner. A zombie (a process
that has exited but is not yet reaped by its new parent) is not running and is not counted.
"""

from __future__ import annotations

import os
from pathlib import Path

SERVER_NAMES = ("redis-server", "redis-sentinel", "valkey-server", "valkey-sentinel", "memcached")
WORKER_MODULES = ("experiments.caches.nearcache_worker", "experiments.caches.origin_server", "experiments.probes.stampede_worker",
                  "experiments.rehearse.task_worker", "experiments.rehearse.change_worker", "experiments.rehearse.origin_worker")
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


TEMP_PREFIX = "cachebook-"
"""The start of every server's temporary working directory: ``cachebook-<owner pid>-<session mark><name>-…``."""


def session_mark(session: str) -> str:
    """The session's part of a working directory's name (empty outside a marked run)."""
    return f"s={session}=" if session else ""


def in_session(pid: int, session: str) -> bool:
    """True if ``pid`` belongs to this run: it carries the run's ``CACHEBOOK_SESSION`` in its environment, or
    it works in a directory marked with the session. Redis and Valkey rewrite their process title over the
    memory ``/proc/<pid>/environ`` shows, so for them only the working directory tells."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    if f"{SESSION_ENV}={session}".encode() in environ:
        return True
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return Path(cwd).name.startswith(TEMP_PREFIX) and session_mark(session) in Path(cwd).name


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
