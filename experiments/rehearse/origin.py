"""`RateOrigin`: the rehearsal's origin process (`origin_worker`) started, asked for its count, and stopped."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys

from experiments.errors import BookError
from experiments.lab.spawner import LOOPBACK, make_workdir, spawn_worker


class RateOrigin:
    """An origin of ``capacity_per_s`` calls a second with a median ``latency_ms`` (log-normal, ``sigma``), in its
    own process; ``with`` starts it, leaving stops it and removes its directory."""

    def __init__(self, capacity_per_s: float, latency_ms: float, sigma: float, seed: int) -> None:
        if not (capacity_per_s > 0 and latency_ms > 0 and sigma >= 0):
            raise BookError(f"an origin needs a positive capacity ({capacity_per_s}) and latency ({latency_ms} ms)")
        self.args = [str(capacity_per_s), str(latency_ms), str(sigma), str(seed)]
        self.process: subprocess.Popen | None = None
        self.workdir = None
        self.port: int | None = None

    def __enter__(self) -> "RateOrigin":
        self.workdir = make_workdir("rehearse-origin")
        try:
            self.process = spawn_worker([sys.executable, "-m", "experiments.rehearse.origin_worker", *self.args],
                                        self.workdir / "origin.log", self.workdir)
            line = self.process.stdout.readline()
            if not line:
                raise BookError(f"the rehearsal's origin exited at start; log: {self.workdir / 'origin.log'}")
            self.port = json.loads(line)["port"]
        except BaseException:
            self.__exit__()
            raise
        return self

    def _ask(self, line: str) -> dict:
        with socket.create_connection((LOOPBACK, self.port), timeout=5) as conn:
            conn.sendall(line.encode() + b"\n")
            return json.loads(conn.makefile("rb").readline())

    def calls(self) -> int:
        """The calls the origin has received so far."""
        return int(self._ask("STATS")["calls"])

    def counts(self, start: float, seconds: int) -> list[int]:
        """The calls that arrived in each second from the wall-clock time ``start``, by the origin's own count."""
        return [int(n) for n in self._ask(f"COUNTS {start} {seconds}")["counts"]]

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
            self.process.stdout.close()
            self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
