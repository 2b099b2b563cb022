"""Evictions you can see: Redis counts them and can name every evicted key.

With ``maxmemory`` and ``allkeys-lru``, Redis evicts keys to make room and counts them in
``INFO stats`` (``evicted_keys``); with ``notify-keyspace-events Ee`` it also publishes the name of
each evicted key on ``__keyevent@<db>__:evicted``. `watch_evictions` fills a small server past its
limit and compares the two. (A subscriber's output buffer counts toward used memory, so evictions
go on briefly after the writes stop; the count is read once it is quiet.)
"""

from __future__ import annotations

import threading
import time

from experiments.servers import RedisServer

EVICTION_ARGS = ("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru", "--notify-keyspace-events", "Ee")


def eviction_server() -> RedisServer:
    """A Redis with a 2 MB limit, LRU eviction over all keys and eviction notifications on."""
    return RedisServer(name="redis-evicting", extra_args=EVICTION_ARGS)


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
    return {"keys_written": keys, "keys_left": client.dbsize(), "evicted_keys_counter": evicted,
            "eviction_notifications": len(names), "first_evicted": names[:3]}
