"""A near-cache task: the child process of `experiments.caches.nearcache`, kept light (redis-py and the stdlib).

Run as ``python -m experiments.caches.nearcache_worker HOST PORT PASSWORD PREFIX MODE TTL_S``; it answers
one JSON command per stdin line with one JSON line on stdout. See `experiments.caches.nearcache` for what
the modes mean and how the parent uses it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import redis

MODES = ("tracking", "naive", "ttl")
RECONNECT_DELAY_S = 0.2
"""How long a worker waits before re-opening a broken invalidation connection."""


class _NearCache:
    def __init__(self, host: str, port: int, password: str, prefix: str, mode: str, ttl_s: float) -> None:
        self.address = dict(host=host, port=port, password=password)
        self.prefix, self.mode, self.ttl_s = prefix, mode, ttl_s
        self.data = redis.Redis(**self.address, protocol=2, single_connection_client=True, socket_timeout=5)
        self.l1: dict[str, tuple[bytes, float]] = {}
        self.epoch: dict[str, int] = {}
        self.lock = threading.Lock()
        self.link_up = mode == "ttl"
        self.stats = {"hits": 0, "misses": 0, "invalidations": 0, "flushes": 0, "link_drops": 0}
        self.drops: list[tuple[str, float]] = []
        self.listener_id: int | None = None
        if mode != "ttl":
            self._connect_listener()
            threading.Thread(target=self._listen, daemon=True).start()

    def _connect_listener(self) -> None:
        conn = redis.Connection(**self.address, protocol=2, socket_timeout=5)
        conn.send_command("CLIENT", "ID")
        self.listener_id = int(conn.read_response())
        conn.send_command("SUBSCRIBE", "__redis__:invalidate")
        conn.read_response()
        self.data.execute_command("CLIENT", "TRACKING", "OFF")
        self.data.execute_command("CLIENT", "TRACKING", "ON", "REDIRECT", self.listener_id, "BCAST",
                                  "PREFIX", self.prefix)
        self.listener = conn
        with self.lock:
            if self.mode == "tracking":
                self.l1.clear()  # what changed while the link was down was never announced
                self.stats["flushes"] += 1
            self.link_up = True

    def _listen(self) -> None:
        while True:
            try:
                if not self.listener.can_read(timeout=0.5):
                    continue
                message = self.listener.read_response()
            except (redis.ConnectionError, OSError):
                with self.lock:
                    self.link_up = False
                    self.stats["link_drops"] += 1
                time.sleep(RECONNECT_DELAY_S)
                while True:
                    try:
                        self._connect_listener()
                        break
                    except (redis.ConnectionError, OSError):
                        time.sleep(RECONNECT_DELAY_S)
                continue
            if isinstance(message, list) and message[0] == b"message":
                keys = message[2] or list(self.l1)  # a nil payload means every key (FLUSHALL)
                now = time.monotonic()
                with self.lock:
                    for key in keys:
                        key = key.decode() if isinstance(key, bytes) else key
                        self.epoch[key] = self.epoch.get(key, 0) + 1
                        self.l1.pop(key, None)
                        self.drops.append((key, now))
                        self.stats["invalidations"] += 1

    def _usable(self, cached_at: float) -> bool:
        if self.mode == "ttl":
            return time.monotonic() - cached_at < self.ttl_s
        return self.link_up or self.mode == "naive"

    def read(self, key: str) -> bytes | None:
        with self.lock:
            entry = self.l1.get(key)
            if entry is not None and self._usable(entry[1]):
                self.stats["hits"] += 1
                return entry[0]
            epoch = self.epoch.get(key, 0)
        value = self.data.get(key)
        with self.lock:
            self.stats["misses"] += 1
            if self.epoch.get(key, 0) == epoch and (self.link_up or self.mode != "tracking"):
                self.l1[key] = (value, time.monotonic())
        return value

    def status(self) -> dict:
        with self.lock:
            held = {k: {"value": v.decode() if v else None, "age_s": time.monotonic() - at}
                    for k, (v, at) in self.l1.items()}
            return {"pid": os.getpid(), "mode": self.mode, "link_up": self.link_up, "listener_id": self.listener_id,
                    "held": held, **self.stats}

    def handle(self, command: dict) -> dict:
        op = command["op"]
        if op == "read":
            values = [self.read(command["key"]) for _ in range(command.get("times", 1))]
            return {"values": [v.decode() if v else None for v in values]}
        if op == "status":
            return self.status()
        if op == "drops":
            with self.lock:
                drops, self.drops = self.drops, []
            return {"drops": drops}
        raise ValueError(f"unknown op {op!r}")


def _serve(argv: list[str]) -> None:
    host, port, password, prefix, mode, ttl_s = argv[0], int(argv[1]), argv[2], argv[3], argv[4], float(argv[5])
    cache = _NearCache(host, port, password, prefix, mode, ttl_s)
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "stop":
            break
        print(json.dumps(cache.handle(command)), flush=True)


if __name__ == "__main__":
    _serve(sys.argv[1:])
