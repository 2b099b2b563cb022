"""`Supervisor`: the source's change paths in a rehearsal — the invalidator and the two writers of
`change_worker` — started, each restarted once after its planned crash (as a supervisor would), and stopped
after the invalidator has published everything the writers committed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

from experiments.errors import BookError
from experiments.lab.spawner import spawn_worker

CHANGE_INTERVAL_S = 0.5
"""A change every half second (as run) on each of the two paths."""
DRAIN_S = 5.0
"""The longest the invalidator is given, after the run, to publish what the writers committed."""


class Supervisor:
    """The invalidator and two writers on ``db`` and ``cache``, changing ``keys`` (per path) from ``start_at``; each
    path's process is killed at its change number ``crash_index``."""

    def __init__(self, db: str, cache: dict, keys: dict[str, list[str]], start_at: float, crash_index: int,
                 workdir: Path) -> None:
        self.db, self.cache, self.keys, self.start_at, self.workdir = db, cache, keys, start_at, workdir
        self.crash_index = crash_index
        self.procs: dict[str, subprocess.Popen] = {}
        self.crashes: dict[str, float] = {}
        self.errors: list[str] = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.stopped = False

    def _spawn(self, name: str, args: list[str]) -> None:
        old = self.procs.get(name)
        if old is not None:  # the crashed one: reaped, its pipes closed
            old.wait()
            old.stdin.close()
            old.stdout.close()
        proc = spawn_worker([sys.executable, "-m", "experiments.rehearse.change_worker", args[0], self.db,
                             self.cache["host"], str(self.cache["port"]), self.cache["password"], *args[1:]],
                            self.workdir / f"{name.replace(' ', '-')}.log", self.workdir)
        self.procs[name] = proc
        if not proc.stdout.readline():
            raise BookError(f"the {name} process exited at start; its log is in {self.workdir}")

    def _writer(self, path: str, first: int, crash_at: int) -> None:
        self._spawn(path, ["writer", path, str(CHANGE_INTERVAL_S), str(self.start_at + first * CHANGE_INTERVAL_S),
                           str(crash_at - first if crash_at >= 0 else -1), *self.keys[path][first:]])

    def start(self) -> "Supervisor":
        """Start the three processes (the writers wait for ``start_at``) and the watch that restarts them."""
        self._spawn("invalidator", ["invalidator", "crash"])
        self._writer("outbox", 0, self.crash_index)
        self._writer("dual write", 0, self.crash_index)
        self.thread.start()
        return self

    def _watch(self) -> None:
        while not self.stop_event.wait(0.02):
            for name, proc in list(self.procs.items()):
                if proc.poll() == -signal.SIGKILL and name not in self.crashes:
                    self.crashes[name] = time.time()
                    try:
                        if name == "dual write":
                            self._writer(name, self.crash_index + 1, -1)  # its next change on
                        else:
                            self._spawn(name, ["invalidator", "-"])
                    except Exception as exc:  # said when the run stops, not lost with this thread
                        self.errors.append(f"restarting the {name}: {exc}")

    def stop(self) -> None:
        """Stop the writers, let the invalidator publish what they committed (`DRAIN_S`), stop it; a restart that
        failed, or an outbox the invalidator could not drain, is a `BookError`. Once only."""
        if self.stopped:
            return
        self.stopped = True
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join()
        drained = True
        for name in ("outbox", "dual write", "invalidator"):
            if name == "invalidator" and self.procs:
                drained = self._drain()
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if self.errors or not drained:
            raise BookError("; ".join(self.errors) or f"the invalidator did not publish the outbox within {DRAIN_S:.0f} s")

    def _drain(self) -> bool:
        """Wait until the invalidator's offset reaches the last outbox row, at most `DRAIN_S`; whether it did."""
        deadline = time.monotonic() + DRAIN_S
        with closing(sqlite3.connect(self.db, timeout=10)) as db:
            while time.monotonic() < deadline:
                last = db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0]
                done = db.execute("SELECT COALESCE(MAX(seq), 0) FROM offsets WHERE name = 'invalidator'").fetchone()[0]
                if done >= last:
                    return True
                time.sleep(0.02)
        return False
