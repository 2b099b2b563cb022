"""The stale-set race of cache-aside (and of read-through: same steps), reproduced and fixed on real servers.

A reader misses, reads the database, and — before it writes the value to the cache — a writer
updates the database and deletes the cache entry. The reader's write then lands after the
invalidation: the cache holds the old value until its TTL runs out (Nishtala et al., NSDI 2013,
§3.2.1, who fix it with leases). Four caches run the same steps:

* ``Redis`` / ``Memcached`` — plain cache-aside: GET, SET, DEL;
* ``Redis, versioned set`` — the writer bumps a per-key version and deletes the entry in one Lua
  script; the reader notes the version when it misses and stores only if it is unchanged (Lua);
* ``Memcached, lease`` — memcached's meta protocol does leases natively: ``mg key v c N<ttl>`` on a
  miss creates an empty placeholder and hands this reader a win flag and a CAS token; ``ms … C<cas>``
  stores only if the placeholder is untouched, and the writer's ``md`` removes it, so a late store
  answers NF and stores nothing.

`interleave` runs the race's steps in the fatal order, one after the other, so the outcome is
deterministic; `stress` runs reader and writer in two threads with random delays for many trials.
"""

from __future__ import annotations

import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass

import pandas as pd

from experiments.caches.keydesign import load as load_key_design
from experiments.errors import BookError
from experiments.results import Table

TTL_S = int(load_key_design()["product"].ttl_s)
"""The product family's TTL (the key design's): how long a stale entry would be served."""

GUARDED_SET = """
local version = redis.call('GET', KEYS[2]) or '0'
if version ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""
BUMP_AND_DELETE = """
redis.call('INCR', KEYS[2])
return redis.call('DEL', KEYS[1])
"""


class Database:
    """The source of truth: one value per key, read and written atomically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, str] = {}

    def read(self, key: str) -> str:
        """The key's current value (``v0`` if it was never written)."""
        with self._lock:
            return self._rows.get(key, "v0")

    def write(self, key: str, value: str) -> None:
        """Replace the key's value."""
        with self._lock:
            self._rows[key] = value


class RedisAside:
    """Plain cache-aside on Redis. ``miss`` returns the token `fill` needs (none here)."""

    name = "Redis"

    def __init__(self, client, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}{{{key}}}"  # the hash tag keeps a key and its version in one cluster slot

    def get(self, key: str) -> str | None:
        """``GET``: the cached value, or None on a miss."""
        value = self.client.get(self._key(key))
        return None if value is None else value.decode()

    def miss(self, key: str) -> object:
        """Nothing to note on a miss: a plain fill is unconditional."""
        return None

    def fill(self, key: str, value: str, token: object) -> bool:
        """``SET … EX`` `TTL_S` of what the reader read, however late it comes; always True."""
        self.client.set(self._key(key), value, ex=TTL_S)
        return True

    def invalidate(self, key: str) -> None:
        """``DEL`` of the entry."""
        self.client.delete(self._key(key))

    def ttl_s(self, key: str) -> float:
        """The entry's remaining TTL in seconds (``PTTL``; negative if it is absent or has none)."""
        return self.client.pttl(self._key(key)) / 1000


class RedisVersioned(RedisAside):
    """Cache-aside on Redis with a version-guarded set: a fill after an invalidation is refused."""

    name = "Redis, versioned set"

    def __init__(self, client, prefix: str) -> None:
        super().__init__(client, prefix)
        self._set = client.register_script(GUARDED_SET)
        self._bump = client.register_script(BUMP_AND_DELETE)

    def miss(self, key: str) -> object:
        """The key's version as the miss saw it (``0`` before any invalidation): the fill's token."""
        version = self.client.get(self._key(key) + ":version")
        return b"0" if version is None else version

    def fill(self, key: str, value: str, token: object) -> bool:
        """Store only if the version is still the one the miss saw (`GUARDED_SET`); whether it stored."""
        return bool(self._set(keys=[self._key(key), self._key(key) + ":version"], args=[value, token, TTL_S]))

    def invalidate(self, key: str) -> None:
        """Bump the key's version and delete the entry, atomically (`BUMP_AND_DELETE`)."""
        self._bump(keys=[self._key(key), self._key(key) + ":version"])


class MetaClient:
    """The few memcached meta commands the race needs, over one socket (pymemcache has none)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.reader = self.sock.makefile("rb")

    def command(self, line: str, data: bytes | None = None) -> tuple[list[str], bytes | None]:
        """Send one command; the response line's words and, for ``VA``, the value."""
        self.sock.sendall(line.encode() + b"\r\n" + (b"" if data is None else data + b"\r\n"))
        words = self.reader.readline().decode().split()
        if not words:
            raise BookError(f"memcached closed the connection during {line.split()[0]!r}")
        if words[0] == "VA":
            return words, self.reader.read(int(words[1]) + 2)[:-2]
        return words, None

    def close(self) -> None:
        """Close the connection."""
        self.reader.close()
        self.sock.close()


class MemcachedAside:
    """Plain cache-aside on memcached (meta commands without tokens)."""

    name = "Memcached"

    def __init__(self, client: MetaClient, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    def get(self, key: str) -> str | None:
        """``mg <key> v``: the cached value, or None on a miss (``EN``) or an empty lease placeholder."""
        words, value = self.client.command(f"mg {self.prefix}{key} v")
        return value.decode() if words[0] == "VA" and value else None

    def miss(self, key: str) -> object:
        """Nothing to note on a miss: a plain fill is unconditional."""
        return None

    def fill(self, key: str, value: str, token: object) -> bool:
        """``ms <key> <size> T<TTL_S>``, unconditional; whether memcached stored it (``HD``)."""
        data = value.encode()
        return self.client.command(f"ms {self.prefix}{key} {len(data)} T{TTL_S}", data)[0][0] == "HD"

    def invalidate(self, key: str) -> None:
        """``md <key>``: delete the entry (or a lease's placeholder)."""
        self.client.command(f"md {self.prefix}{key}")

    def ttl_s(self, key: str) -> float:
        """``mg <key> t``: the entry's remaining TTL in seconds (-1 if it has none, NaN on a miss)."""
        words, _ = self.client.command(f"mg {self.prefix}{key} t")
        return float(next((w[1:] for w in words[1:] if w.startswith("t")), "nan"))


class MemcachedLease(MemcachedAside):
    """Cache-aside on memcached with a lease: the miss takes a token, a stale fill is refused."""

    name = "Memcached, lease"

    def miss(self, key: str) -> object:
        """``mg <key> v c N30``: a miss leaves a placeholder for 30 s; the CAS token if this reader won
        the lease, else None."""
        words, _ = self.client.command(f"mg {self.prefix}{key} v c N30")
        flags = {w[0]: w[1:] for w in words[1:]}
        return flags["c"] if "W" in flags else None  # no win: another reader holds the lease

    def fill(self, key: str, value: str, token: object) -> bool:
        """``ms … C<cas>``: stored only if the placeholder is untouched since the lease (an invalidation
        removes it); a reader without the lease stores nothing."""
        if token is None:
            return False
        data = value.encode()
        return self.client.command(f"ms {self.prefix}{key} {len(data)} T{TTL_S} C{token}", data)[0][0] == "HD"


@dataclass
class Actors:
    """One reader's and one writer's connection to the same cache (so their commands truly interleave)."""

    reader: object
    writer: object
    close: object


REPLAY = Table("staleset.REPLAY", ("cache", "reader_read", "database", "fill_stored", "cached_after", "stale",
                                   "stale_for_s"))
"""`interleave`'s record, and `run_all`'s first table (one row per cache and guard)."""

STRESS = Table("staleset.STRESS", ("cache", "trials", "stale_entries", "fills_refused"))
"""`stress`'s record, and `run_all`'s second table."""


def interleave(actors: Actors, db: Database, key: str) -> dict:
    """The race in its fatal order, step by step: miss, read v0, update to v1, invalidate, fill v0."""
    reader, writer = actors.reader, actors.writer
    assert reader.get(key) is None, "the race starts from a miss"
    token = reader.miss(key)
    seen = db.read(key)
    db.write(key, "v1")
    writer.invalidate(key)
    stored = reader.fill(key, seen, token)
    cached = reader.get(key)
    return REPLAY.record({"cache": reader.name, "reader_read": seen, "database": db.read(key), "fill_stored": stored,
                          "cached_after": cached, "stale": cached is not None and cached != db.read(key),
                          "stale_for_s": reader.ttl_s(key) if cached is not None and cached != db.read(key) else 0.0})


def stress(actors: Actors, db: Database, *, trials: int, seed: int, prefix: str) -> dict:
    """``trials`` races with random delays in two threads; how many left a stale entry behind."""
    rng = random.Random(seed)
    plans = [(rng.uniform(0, 300e-6), rng.uniform(0, 300e-6), rng.uniform(0, 500e-6), rng.uniform(0, 200e-6))
             for _ in range(trials)]
    start = threading.Barrier(2)
    refused = [0]

    def read_side() -> None:
        for i, (db_wait, fill_wait, _, _) in enumerate(plans):
            key = f"{prefix}{i}"
            start.wait()
            if actors.reader.get(key) is None:
                token = actors.reader.miss(key)
                time.sleep(db_wait)
                seen = db.read(key)
                time.sleep(fill_wait)
                refused[0] += not actors.reader.fill(key, seen, token)
            start.wait()

    def write_side() -> None:
        for i, (_, _, write_wait, invalidate_wait) in enumerate(plans):
            key = f"{prefix}{i}"
            start.wait()
            time.sleep(write_wait)
            db.write(key, f"v{i + 1}")
            time.sleep(invalidate_wait)
            actors.writer.invalidate(key)
            start.wait()

    threads = [threading.Thread(target=read_side), threading.Thread(target=write_side)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stale = sum(1 for i in range(trials)
                if (cached := actors.reader.get(f"{prefix}{i}")) is not None and cached != db.read(f"{prefix}{i}"))
    return STRESS.record({"cache": actors.reader.name, "trials": trials, "stale_entries": stale,
                          "fills_refused": refused[0]})


def redis_actors(server, *, guarded: bool) -> Actors:
    """A reader and a writer on two connections to ``server``; ``guarded``: the versioned set, else
    plain cache-aside."""
    kind = RedisVersioned if guarded else RedisAside
    clients = [server.client(), server.client()]
    return Actors(kind(clients[0], "cachebook:race:"), kind(clients[1], "cachebook:race:"),
                  lambda: [c.close() for c in clients])


def memcached_actors(server, *, guarded: bool) -> Actors:
    """A reader and a writer on two meta-protocol connections to ``server``; ``guarded``: leases, else
    plain cache-aside."""
    kind = MemcachedLease if guarded else MemcachedAside
    clients = [MetaClient(server.host, server.port), MetaClient(server.host, server.port)]
    return Actors(kind(clients[0], "cachebook:race:"), kind(clients[1], "cachebook:race:"),
                  lambda: [c.close() for c in clients])


def run_all(redis_server, memcached_server, *, trials: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The deterministic interleaving and the randomized stress, for the four caches."""
    replays, stresses = [], []
    run = secrets.token_hex(4)  # fresh keys each run: a re-run must not start from the last run's entries
    for number, (make, server) in enumerate([(redis_actors, redis_server), (memcached_actors, memcached_server)]):
        for guarded in (False, True):
            actors = make(server, guarded=guarded)
            try:
                replays.append(interleave(actors, Database(), f"{run}:replay:{number}:{guarded}:product:B08X1YRSTR"))
                stresses.append(stress(actors, Database(), trials=trials, seed=seed,
                                       prefix=f"{run}:stress:{number}:{guarded}:product:"))
            finally:
                actors.close()
    return REPLAY.frame(replays), STRESS.frame(stresses)
