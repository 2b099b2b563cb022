"""The read-through component and its stampede protections, over a real Redis.

`ReadThrough` is what the seed's proxy does: a caller asks for a key; on a miss the component calls
the origin, stores the answer with a TTL and returns it, so callers hold no miss logic. It is an
in-process component — a library each orchestrator task embeds — rather than a network service:
the seed's failure (single-flight inside each proxy instance, not across the 60 tasks) is exactly
what a per-task component does, and a shared proxy service is the same component with one task,
plus a network hop. Whether the component sits in a proxy or in the orchestrator (cache-aside) does
not change what reaches the origin; the protection does.

Protections (one class each, `PROTECTIONS` by name):

* `NoProtection` — every caller that misses calls the origin.
* `LocalSingleFlight` — one origin call per key per process; other threads of the process wait
  for it (Go's ``singleflight``).
* `DistributedLock` — ``SET lock NX PX`` with a random token; the winner loads, the others poll
  the cache; the lock is released only by its owner (compare-and-delete in Lua).
* `EarlyRecompute` — XFetch (Vattani, Chierichetti and Lowenstein, VLDB 2015): a reader recomputes
  before expiry with probability ``exp(-ttl_left / (beta * delta))``, delta being the last
  recomputation's duration, stored with the value.
* `StaleWhileRevalidate` — a soft TTL inside a longer hard TTL: past the soft TTL, readers get the
  stale value at once and one of them (``SET NX`` lock) refreshes it in the background.

This module needs only redis-py and the standard library: the stampede worker processes import it.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
import time
from collections.abc import Callable

import redis

RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
"""Lua: delete the lock only if it still holds our token (a lock that expired and was re-taken by
another caller must not be released by us)."""

SOURCES = ("hit", "origin", "waited", "stale", "error")
"""Where a caller's answer came from: the cache, its own origin call, another caller's origin call,
a stale entry (stale-while-revalidate), or nowhere (timeout)."""


class ReadThrough:
    """Read-through over a Redis client: `get` returns ``(value, source)``; values are stored as
    ``b"<load ms>|" + payload`` so that early recomputation knows how long a reload takes."""

    def __init__(self, cache: redis.Redis, load: Callable[[str], bytes], protection: "NoProtection", *,
                 ttl_ms: int) -> None:
        self.cache, self.load, self.protection, self.ttl_ms = cache, load, protection, ttl_ms
        self._release = cache.register_script(RELEASE_IF_OWNER)

    def get(self, key: str) -> tuple[bytes | None, str]:
        """The value for ``key`` and where it came from (one of `SOURCES`), as the protection decides."""
        return self.protection.get(self, key)

    def read(self, key: str) -> tuple[bytes, int, float] | None:
        """The payload, its remaining TTL (ms) and its load time (ms); None on a miss."""
        with self.cache.pipeline(transaction=False) as pipe:
            raw, pttl = pipe.get(key).pttl(key).execute()
        if raw is None:
            return None
        delta, _, payload = raw.partition(b"|")
        return payload, pttl, float(delta)

    def fill(self, key: str) -> bytes:
        """Call the origin and store its answer for ``ttl_ms`` plus the protection's grace period."""
        started = time.perf_counter()
        payload = self.load(key)
        delta_ms = 1000 * (time.perf_counter() - started)
        self.cache.set(key, b"%.1f|" % delta_ms + payload, px=self.ttl_ms + self.protection.grace_ms)
        return payload

    def try_lock(self, key: str, ttl_ms: int) -> str | None:
        """Take ``lock:<key>`` for ``ttl_ms``; the token to release it with, or None if taken."""
        token = secrets.token_hex(8)
        return token if self.cache.set("lock:" + key, token, nx=True, px=ttl_ms) else None

    def unlock(self, key: str, token: str) -> None:
        """Release ``lock:<key>`` only if it still holds ``token`` (`RELEASE_IF_OWNER`)."""
        self._release(keys=["lock:" + key], args=[token])


class NoProtection:
    """No protection: every caller that misses calls the origin. The other protections subclass it."""

    name = "none"
    grace_ms = 0

    def get(self, rt: ReadThrough, key: str) -> tuple[bytes | None, str]:
        """A hit, or on a miss this caller's own origin call."""
        entry = rt.read(key)
        if entry is not None:
            return entry[0], "hit"
        return rt.fill(key), "origin"



class LocalSingleFlight(NoProtection):
    """One origin call per key per process; the process's other callers wait for its result."""

    name = "single-flight per task"

    def __init__(self, wait_ms: int = 2000) -> None:
        self.wait_ms = wait_ms
        self._lock = threading.Lock()
        self._flights: dict[str, dict] = {}

    def get(self, rt: ReadThrough, key: str) -> tuple[bytes | None, str]:
        """A hit; on a miss the process's first caller for the key loads, the others wait up to ``wait_ms``
        for its value (``error`` if it does not come)."""
        entry = rt.read(key)
        if entry is not None:
            return entry[0], "hit"
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = {"done": threading.Event(), "value": None}
        if not leader:
            if flight["done"].wait(self.wait_ms / 1000) and flight["value"] is not None:
                return flight["value"], "waited"
            return None, "error"
        try:
            flight["value"] = rt.fill(key)
            return flight["value"], "origin"
        finally:
            with self._lock:
                del self._flights[key]
            flight["done"].set()


class DistributedLock(NoProtection):
    """``SET lock NX PX`` across all processes; losers poll the cache until the winner has filled it."""

    name = "distributed lock"

    def __init__(self, lock_ttl_ms: int = 3000, poll_ms: int = 10, wait_ms: int = 2000) -> None:
        self.lock_ttl_ms, self.poll_ms, self.wait_ms = lock_ttl_ms, poll_ms, wait_ms

    def get(self, rt: ReadThrough, key: str) -> tuple[bytes | None, str]:
        """A hit, or `load_once` on a miss."""
        entry = rt.read(key)
        if entry is not None:
            return entry[0], "hit"
        return self.load_once(rt, key)

    def load_once(self, rt: ReadThrough, key: str) -> tuple[bytes | None, str]:
        """Fill ``key`` if we win the lock, else wait for the winner's fill (up to ``wait_ms``)."""
        deadline = time.monotonic() + self.wait_ms / 1000
        while True:
            token = rt.try_lock(key, self.lock_ttl_ms)
            if token is not None:
                try:
                    entry = rt.read(key)  # filled while we were taking the lock
                    return (entry[0], "waited") if entry is not None else (rt.fill(key), "origin")
                finally:
                    rt.unlock(key, token)
            time.sleep(self.poll_ms / 1000)
            entry = rt.read(key)
            if entry is not None:
                return entry[0], "waited"
            if time.monotonic() > deadline:
                return None, "error"


class EarlyRecompute(NoProtection):
    """XFetch: recompute early with probability ``exp(-ttl_left / (beta * delta))`` per read."""

    name = "early recomputation (XFetch)"

    def __init__(self, beta: float = 1.0, seed: int = 0) -> None:
        self.beta = beta
        self._rng = random.Random(seed)

    def get(self, rt: ReadThrough, key: str) -> tuple[bytes | None, str]:
        """A hit, unless this read draws an early recomputation (or misses): then this caller calls the
        origin itself, with no lock."""
        entry = rt.read(key)
        if entry is not None:
            payload, ttl_left_ms, delta_ms = entry
            if -delta_ms * self.beta * math.log(1.0 - self._rng.random()) < ttl_left_ms:
                return payload, "hit"
        return rt.fill(key), "origin"


class StaleWhileRevalidate(NoProtection):
    """Entries live ``grace_ms`` past their soft TTL; a stale read is answered at once while one
    caller (``SET NX`` lock) refreshes the entry in a background thread. A hard miss (the entry is
    gone) falls back to the distributed lock."""

    name = "stale-while-revalidate"

    def __init__(self, grace_ms: int = 10_000, lock_ttl_ms: int = 3000) -> None:
        self.grace_ms, self.lock_ttl_ms = grace_ms, lock_ttl_ms
        self._hard_miss = DistributedLock(lock_ttl_ms=lock_ttl_ms)

    def get(self, rt: ReadThrough, key: str) -> tuple[bytes | None, str]:
        """A fresh hit; past the soft TTL the stale value at once, while the caller that takes the lock
        refreshes it in the background; a hard miss goes through the distributed lock."""
        entry = rt.read(key)
        if entry is None:
            return self._hard_miss.load_once(rt, key)
        payload, ttl_left_ms, _ = entry
        if ttl_left_ms > self.grace_ms:
            return payload, "hit"
        token = rt.try_lock(key, self.lock_ttl_ms)
        if token is not None:
            threading.Thread(target=self._refresh, args=(rt, key, token), daemon=True).start()
        return payload, "stale"

    def _refresh(self, rt: ReadThrough, key: str, token: str) -> None:
        try:
            entry = rt.read(key)  # a refresh that finished just before we took the lock
            if entry is None or entry[1] <= self.grace_ms:
                rt.fill(key)
        except (redis.RedisError, OSError):
            pass  # the next stale read retries once the lock expires
        finally:
            rt.unlock(key, token)


PROTECTIONS: dict[str, Callable[..., NoProtection]] = {
    cls.name: cls for cls in (NoProtection, LocalSingleFlight, DistributedLock, EarlyRecompute, StaleWhileRevalidate)
}
"""Every protection by its name in the chapter's tables."""
