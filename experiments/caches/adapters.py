"""Three caches behind one small interface: real Redis, real Memcached, and an in-process dict.

`get`, `set` with a TTL in seconds, `delete`, and `items` (every key/value this cache holds for the
run, used by tests that inspect what was stored). Keys are the key design's keys; the Redis and
Memcached caches put them under their endpoint's per-run namespace.
"""

from __future__ import annotations

import time

from cachetools import TLRUCache

from experiments.lab.endpoints import MemcachedTarget, RedisTarget


class RedisCache:
    """Cache on a Redis endpoint: ``SET key value EX ttl``."""

    name = "Redis"

    def __init__(self, target: RedisTarget) -> None:
        self.target, self.client = target, target.client

    def get(self, key: str) -> bytes | None:
        """``GET`` of the namespaced key: the value, or None on a miss (absent or expired)."""
        return self.client.get(self.target.namespace + key)

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """``SET key value EX ttl_s`` (seconds); the key is recorded as written by this run (`Target.key`)."""
        self.client.set(self.target.key(key), value, ex=ttl_s)

    def delete(self, key: str) -> None:
        """``DEL`` of the namespaced key; deleting an absent key is not an error."""
        self.client.delete(self.target.namespace + key)

    def items(self) -> dict[str, bytes]:
        """Every key of this run's namespace (``SCAN``, then ``MGET``), without the namespace, with its value;
        a key that expires between the two is left out."""
        ns = self.target.namespace
        keys = list(self.client.scan_iter(match=ns + "*", count=1000))
        values = self.client.mget(keys) if keys else []
        return {k.decode()[len(ns):]: v for k, v in zip(keys, values) if v is not None}


class MemcachedCache:
    """Cache on a memcached endpoint: ``set key 0 ttl``; ``items`` reads the written keys back."""

    name = "Memcached"

    def __init__(self, target: MemcachedTarget) -> None:
        self.target, self.client = target, target.client

    def get(self, key: str) -> bytes | None:
        """``get`` of the namespaced key: the value, or None on a miss (absent or expired)."""
        return self.client.get(self.target.namespace + key)

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """``set`` with ``expire=ttl_s`` (seconds), waiting for the reply (no ``noreply``), so a server error
        is raised here rather than lost; the key is recorded as written by this run."""
        self.client.set(self.target.key(key), value, expire=ttl_s, noreply=False)

    def delete(self, key: str) -> None:
        """``delete`` of the namespaced key, waiting for the reply; deleting an absent key is not an error."""
        self.client.delete(self.target.namespace + key, noreply=False)

    def items(self) -> dict[str, bytes]:
        """The keys this run wrote that are still held, with their values: memcached cannot list its keys,
        so each written key is read back."""
        found = {}
        for key in sorted(self.target.written):
            value = self.client.get(self.target.namespace + key)
            if value is not None:
                found[key] = value
        return found


class LocalCache:
    """In-process cache (cachetools `TLRUCache`), with a per-entry TTL like the servers'."""

    name = "in-process"

    def __init__(self, maxsize: int = 100_000) -> None:
        self._cache = TLRUCache(maxsize=maxsize, ttu=lambda _k, v, now: now + v[1], timer=time.monotonic)

    def get(self, key: str) -> bytes | None:
        """The value, or None on a miss or once its TTL has passed."""
        entry = self._cache.get(key)
        return None if entry is None else entry[0]

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """Store ``value`` for ``ttl_s`` seconds of `time.monotonic`; when full, expired entries go first,
        then the least recently used."""
        self._cache[key] = (value, ttl_s)

    def delete(self, key: str) -> None:
        """Drop ``key`` if it is held."""
        self._cache.pop(key, None)

    def items(self) -> dict[str, bytes]:
        """Every entry not yet expired, with its value."""
        return {k: v[0] for k, v in self._cache.items()}
