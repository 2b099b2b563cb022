"""Evictions you can see: what Redis and Memcached tell an operator when memory runs out.

Redis: with ``maxmemory`` and ``allkeys-lru``, Redis evicts keys to make room and counts them in
``INFO stats`` (``evicted_keys``); with ``notify-keyspace-events Ee`` it also publishes the name of
each evicted key on ``__keyevent@<db>__:evicted``. `watch_evictions` fills a small server past its
limit and compares the two. (A subscriber's output buffer counts toward used memory, so evictions
go on briefly after the writes stop; the count is read once it is quiet.)

Memcached: ``stats`` counts ``evictions`` (and ``evicted_unfetched``, ``evicted_active``), and the
``watch evictions`` command (memcached 1.6 here) streams one line per evicted key to a connected
watcher, with a ``skipped`` line when the watcher falls behind.
`watch_memcached_evictions` does the same fill on a 2 MB memcached. Neither server keeps a history:
a key evicted while nobody watched is only a number.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote

from experiments.lab.servers import MemcachedServer, RedisServer
from experiments.results import Table

if TYPE_CHECKING:  # pandas is imported lazily: these modules load in worker processes too
    import pandas as pd

EVICTION_ARGS = ("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru", "--notify-keyspace-events", "Ee")


def eviction_server() -> RedisServer:
    """A Redis with a 2 MB limit, LRU eviction over all keys and eviction notifications on."""
    return RedisServer(name="redis-evicting", extra_args=EVICTION_ARGS)


WATCH = Table("evictions.WATCH", ("keys_written", "keys_left", "evictions_counted", "evictions_named", "first_evicted"))
"""`watch_evictions` and `watch_memcached_evictions`: one record each."""


def watch_evictions(server: RedisServer, *, keys: int, value_bytes: int = 1024) -> dict:
    """Write ``keys`` values into ``server``; count evictions by INFO and by notification."""
    client = server.client()
    names: list[str] = []
    pubsub = server.client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("__keyevent@0__:evicted")
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            message = pubsub.get_message(timeout=0.05)
            if message:
                names.append(message["data"].decode())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    for i in range(keys):
        client.set(f"product:B{i:09d}", b"x" * value_bytes)
    previous, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < 0.5:  # until neither count moves for 0.5 s
        current = (int(client.info("stats")["evicted_keys"]), len(names))
        if current != previous:
            previous, quiet_since = current, time.monotonic()
        time.sleep(0.05)
    stop.set()
    listener.join()
    pubsub.close()
    evicted = int(client.info("stats")["evicted_keys"])
    return WATCH.record({"keys_written": keys, "keys_left": client.dbsize(), "evictions_counted": evicted,
                         "evictions_named": len(names), "first_evicted": names[:3]})


def memcached_eviction_server() -> MemcachedServer:
    """A memcached with 2 MB of memory (and 512 KB items, since memory must be at least twice that)."""
    return MemcachedServer(name="memcached-evicting", memory_mb=2, max_item_kb=512)


def watch_memcached_evictions(server: MemcachedServer, *, keys: int, value_bytes: int = 1024) -> dict:
    """Write ``keys`` values; count evictions by ``stats`` and by a ``watch evictions`` connection."""
    watcher = socket.create_connection((server.host, server.port), timeout=2)
    watcher.sendall(b"watch evictions\r\n")
    if not watcher.recv(16).startswith(b"OK"):
        raise RuntimeError("memcached refused `watch evictions`")
    client = server.client()
    for i in range(keys):
        client.set(f"product:B{i:09d}", b"x" * value_bytes, noreply=False)
    stream, quiet_since = b"", time.monotonic()
    watcher.settimeout(0.1)
    while time.monotonic() - quiet_since < 0.5:
        try:
            chunk = watcher.recv(1 << 16)
        except TimeoutError:
            continue
        if not chunk:
            break
        stream, quiet_since = stream + chunk, time.monotonic()
    watcher.close()
    names = [unquote(part[4:]) for line in stream.decode().splitlines() for part in line.split()
             if part.startswith("key=")]
    stats = {k.decode(): v for k, v in client.stats().items()}
    client.close()
    return WATCH.record({"keys_written": keys, "keys_left": int(stats["curr_items"]),
                         "evictions_counted": int(stats["evictions"]), "evictions_named": len(names),
                         "first_evicted": names[:3]})


def observability() -> "pd.DataFrame":
    """What each server lets an operator answer about evictions (facts shown by the two functions above)."""
    import pandas as pd

    rows = [
        ("How many keys were evicted?", "INFO stats evicted_keys", "stats evictions (+ unfetched / active)"),
        ("Which keys, as they are evicted?", "keyspace notifications (pub/sub, per key)", "watch evictions (stream, per key)"),
        ("Which promotion keys were evicted in the last minute?",
         "only if a subscriber was connected and logged them", "only if a watcher was connected and logged them"),
        ("Is a lost notification noticed?", "no: pub/sub is at-most-once", "the watcher sees a 'skipped' line"),
    ]
    return pd.DataFrame(rows, columns=["question", "Redis", "Memcached"])
