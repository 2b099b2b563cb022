"""What an orchestrator task reads when its shared cache cannot be reached: four degraded modes behind one
circuit breaker.

A cache read across a silent partition blocks until the client's timeout (`experiments.probes.partition`), so
every mode starts the same way: the turn budget's short timeout, no retries, and a `Breaker` that stops
asking the cache after a failure and asks again ``open_s`` later. What it reads instead is the mode:

* ``fail open`` — the origin (the catalog takes every read the cache took);
* ``fail fast`` — nothing: the turn answers without the product (the catalog takes none);
* ``in-process copy`` — a ``cachetools.TTLCache`` the task keeps beside the shared cache, filled on each read
  it does not hold (the note's ``TTLCache(5000, 300)``), served while the cache is away; what it lacks comes
  from the origin, one call per key at a time for the whole task. It is stale for up to its TTL, and no
  invalidation reaches it;
* ``gutter pool`` — a small second pool whose entries live a few seconds (Facebook's memcache, NSDI'13, §3.3:
  clients that get no reply from a server retry on the gutter pool, and a miss there is filled from the
  origin), so a hot key costs the origin one call per gutter TTL instead of one per read — per task: the
  task's threads share one fill of a key, as with the in-process copy; other tasks' fills are their own.

Each `DegradedReader.get` returns the value (or None) and where it came from, so an experiment counts sources.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cachetools import TTLCache

from experiments.errors import ParameterError

MODES = ("fail open", "fail fast", "in-process copy", "gutter pool")


class Breaker:
    """Open after ``failures`` consecutive failures; after ``open_s`` one caller may try again (half open)."""

    def __init__(self, *, failures: int = 1, open_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1 or not open_s > 0:
            raise ParameterError(f"failures={failures} must be ≥ 1 and open_s={open_s} positive")
        self.failures, self.open_s, self.clock = failures, open_s, clock
        self._count, self._opened_at, self._lock = 0, None, threading.Lock()

    def allow(self) -> bool:
        """Whether this call may use the cache (closed, or the single trial once ``open_s`` has passed)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self.clock() - self._opened_at >= self.open_s:
                self._opened_at = self.clock()  # this caller tries; the others keep skipping meanwhile
                return True
            return False

    def success(self) -> None:
        """The cache answered: close the breaker and reset the failure count."""
        with self._lock:
            self._count, self._opened_at = 0, None

    def failure(self) -> None:
        """The cache failed: count it, and open the breaker once ``failures`` calls in a row have
        failed (a failed half-open trial reopens it at once)."""
        with self._lock:
            self._count += 1
            if self._count >= self.failures:
                self._opened_at = self.clock()


class DegradedReader:
    """Cache-aside reads of product documents in one of `MODES`.

    ``cache`` is a redis-py client with short timeouts and no retries; ``origin`` loads a key's document
    (`experiments.caches.origin.OriginLink.load`); ``local`` (in-process copy) is a ``TTLCache``;
    ``gutter`` (gutter pool) is a pymemcache client factory — one client per thread, pymemcache's are not
    thread-safe. ``product_ttl_s`` is the shared cache's TTL for a fill.
    """

    def __init__(self, mode: str, *, cache, origin: Callable[[str], bytes], breaker: Breaker,
                 local: TTLCache | None = None, gutter: Callable[[], object] | None = None,
                 gutter_ttl_s: int = 10, product_ttl_s: int = 300) -> None:
        if mode not in MODES:
            raise ParameterError(f"mode={mode!r} is not one of {', '.join(MODES)}")
        if (mode == "in-process copy") != (local is not None) or (mode == "gutter pool") != (gutter is not None):
            raise ParameterError(f"mode={mode!r}: give `local` for the in-process copy and `gutter` for the gutter pool")
        self.mode, self.cache, self.origin, self.breaker = mode, cache, origin, breaker
        self.local, self.gutter_ttl_s, self.product_ttl_s = local, gutter_ttl_s, product_ttl_s
        self._gutter, self._threads, self._local_lock = gutter, threading.local(), threading.Lock()
        self._fills = [threading.Lock() for _ in range(64)]  # one origin call per key at a time (per task)

    def get(self, key: str) -> tuple[bytes | None, str]:
        """The document and its source: ``cache``, ``origin``, ``local copy``, ``gutter`` or ``none``."""
        if self.breaker.allow():
            try:
                value = self.cache.get(key)
                self.breaker.success()
            except Exception:  # any failure of the cache sends the read down the degraded path
                self.breaker.failure()
            else:
                if value is None:
                    value = self.origin(key)
                    self.cache.set(key, value, ex=self.product_ttl_s)
                    self._keep(key, value)
                    return value, "origin"
                self._keep(key, value)
                return value, "cache"
        return self._degraded(key)

    def _keep(self, key: str, value: bytes) -> None:
        if self.local is not None:
            with self._local_lock:
                if key not in self.local:
                    self.local[key] = value

    def _degraded(self, key: str) -> tuple[bytes | None, str]:
        if self.mode == "fail fast":
            return None, "none"
        if self.mode == "in-process copy":
            with self._fills[hash(key) % len(self._fills)]:  # the task's threads share one fill of a key
                with self._local_lock:
                    value = self.local.get(key)
                if value is not None:
                    return value, "local copy"
                value = self.origin(key)
                self._keep(key, value)
                return value, "origin"
        if self.mode == "gutter pool":
            gutter = getattr(self._threads, "gutter", None) or self._thread_gutter()
            with self._fills[hash(key) % len(self._fills)]:
                value = gutter.get(key)
                if value is not None:
                    return value, "gutter"
                value = self.origin(key)
                gutter.set(key, value, expire=self.gutter_ttl_s)
                return value, "origin"
        return self.origin(key), "origin"

    def _thread_gutter(self):
        self._threads.gutter = self._gutter()
        return self._threads.gutter
