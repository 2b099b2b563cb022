"""Helper processes that answer JSON commands: the near-cache tasks and the stampede tasks.

Each worker is started by the servers' spawner (it dies with this process), prints one JSON line
when it is ready, then answers each JSON line on its stdin with one JSON line on its stdout, and
exits when its stdin closes. `WorkerPool` starts them in parallel, sends commands (to one, or to
several at once so their work overlaps) and stops them, leaving no process or directory behind.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from experiments.errors import BookError
from experiments.lab.spawner import make_workdir, spawn_worker


class WorkerPool:
    """``python -m <module> *args`` once per entry of ``args_per_worker``."""

    def __init__(self, label: str, module: str, args_per_worker: list[list[str]]) -> None:
        self.label, self.module, self.args_per_worker = label, module, args_per_worker
        self.workers = []
        self.workdir: Path | None = None

    def start(self) -> "WorkerPool":
        """Start every worker, then wait for each to say it is ready (they start in parallel)."""
        self.workdir = make_workdir(self.label)
        try:
            for i, args in enumerate(self.args_per_worker):
                argv = [sys.executable, "-m", self.module, *args]
                self.workers.append(spawn_worker(argv, self.workdir / f"worker{i}.log", self.workdir))
            for i, worker in enumerate(self.workers):
                if not worker.stdout.readline():
                    log = (self.workdir / f"worker{i}.log").read_text(errors="replace").strip().splitlines()[-1:]
                    raise BookError(f"{self.label} worker {i} exited at start: {' '.join(log) or 'no output'}")
        except BaseException:
            self.stop()
            raise
        return self

    def send(self, index: int, command: dict) -> None:
        """Write one JSON command to a worker's stdin without waiting for its answer (`receive` reads it)."""
        worker = self.workers[index]
        worker.stdin.write(json.dumps(command) + "\n")
        worker.stdin.flush()

    def receive(self, index: int) -> dict:
        """A worker's next JSON answer; a worker that died, or answered ``error``, raises `BookError`."""
        worker = self.workers[index]
        line = worker.stdout.readline()
        if not line:
            raise BookError(f"{self.label} worker {index} (pid {worker.pid}) died; log in {self.workdir}")
        reply = json.loads(line)
        if "error" in reply:
            raise BookError(f"{self.label} worker {index} failed: {reply['error']}")
        return reply

    def call(self, index: int, command: dict) -> dict:
        """Send one command to one worker and wait for its answer."""
        self.send(index, command)
        return self.receive(index)

    def call_many(self, commands: dict[int, dict]) -> dict[int, dict]:
        """Send each worker its command first, then collect the answers: the workers run together."""
        for index, command in commands.items():
            self.send(index, command)
        return {index: self.receive(index) for index in commands}

    def __len__(self) -> int:
        return len(self.workers)

    @property
    def pids(self) -> list[int]:
        """The workers' process ids, in order."""
        return [w.pid for w in self.workers]

    def stop(self) -> None:
        """Close every worker's stdin (its signal to exit), reap it, remove the directory."""
        for worker in self.workers:
            try:
                worker.stdin.close()
            except OSError:
                pass
        for worker in self.workers:
            try:
                worker.wait(timeout=5)
            except Exception:
                worker.kill()
                worker.wait()
            worker.stdout.close()
        self.workers = []
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> "WorkerPool":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
