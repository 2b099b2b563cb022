"""An orchestrator task for the stampede experiments: a process whose threads are the callers.

Run as ``python -m experiments.probes.stampede_worker REDIS_HOST REDIS_PORT PASSWORD ORIGIN_PORT``; it
answers one JSON command per stdin line with one JSON line on stdout and ends when stdin closes.
A ``run`` command names a protection of `experiments.caches.readthrough`, a key and a time window on the
machine's monotonic clock: each of ``threads`` callers reads the key every ``period_ms`` (random
phase) through one shared `ReadThrough`, as tasks' request handlers share their process's proxy
component. The reply lists each call's start, latency and source.
"""

from __future__ import annotations

import inspect
import json
import random
import sys
import threading
import time

import redis

from experiments.caches.origin import OriginLink
from experiments.caches.readthrough import PROTECTIONS, ReadThrough


def _caller(rt: ReadThrough, link: OriginLink, command: dict, rng: random.Random, out: list) -> None:
    key, start, stop, period = command["key"], command["start_at"], command["stop_at"], command["period_ms"] / 1000
    due = start + rng.uniform(0, period)
    try:
        while due < stop:
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            began = time.monotonic()
            try:
                source = rt.get(key)[1]
            except (redis.RedisError, OSError):
                source = "error"
            out.append((round(began - start, 4), round(1000 * (time.monotonic() - began), 3), source))
            due = max(due + period, time.monotonic())
    finally:
        link.close()


def run(cache: redis.Redis, origin_port: int, command: dict) -> dict:
    """One experiment window in this task: start the callers, wait for them, report their calls."""
    kind = PROTECTIONS[command["protection"]]
    params = dict(command.get("params", {}))
    if "seed" in inspect.signature(kind).parameters:
        params.setdefault("seed", command["seed"])  # each task its own random stream
    protection = kind(**params)
    link = OriginLink(origin_port, command["timeout_s"])
    rt = ReadThrough(cache, link.load, protection, ttl_ms=command["ttl_ms"])
    calls: list[list] = [[] for _ in range(command["threads"])]
    threads = [threading.Thread(target=_caller, args=(rt, link, command, random.Random(command["seed"] * 1000 + i), out))
               for i, out in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"calls": [call for out in calls for call in out]}


def main(host: str, port: str, password: str, origin_port: str) -> None:
    """Say ready, then answer each ``run`` command on stdin with one JSON line until stdin closes; an
    exception is reported as ``{"error": …}`` and the worker goes on."""
    # one connection per caller thread at most (a run has at most 1,000 callers; redis-py's default pool is smaller)
    cache = redis.Redis(host=host, port=int(port), password=password, protocol=2, socket_timeout=5,
                        max_connections=1024)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        try:
            reply = run(cache, int(origin_port), json.loads(line))
        except Exception as exc:  # reported to the parent, which raises a one-line BookError
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
