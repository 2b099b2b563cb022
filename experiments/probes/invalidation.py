"""Event-driven invalidation on Redis: a stand-in for the SNS event bus and the subscriber that
deletes what an event makes stale.

Three transports for the same invalidation events, each deleting through an `experiments.caches.adapters`
cache (so the same subscriber serves Redis and Memcached):

* `PubSubInvalidator` — Redis pub/sub, what the seed describes. Delivery is at-most-once: an event
  published while the subscriber is disconnected reaches nobody (``PUBLISH`` returns 0) and is gone.
* `StreamInvalidator` — a Redis Stream read through a consumer group. Events wait in the stream
  until the group reads and acknowledges them, so a subscriber that was away catches up.
* `QueueInvalidator` — an in-process queue standing in for SNS delivering to an SQS queue the
  subscriber polls: the cache needs no messaging of its own, only a delete.

Both run the subscriber in a thread of this process and record, for each event, the moment the
``DEL`` of the affected key was acknowledged, on the same clock as the publisher's timestamp.
"""

from __future__ import annotations

import json
import queue
import threading
import time

import numpy as np
import pandas as pd
import redis
from tqdm import tqdm

from experiments.caches.keydesign import load as load_key_design
from experiments.lab.quiet import quiet
from experiments.results import Table
from experiments.seed import figure


class _Invalidator:
    """A subscriber thread that deletes the key named in each event and reports when it did."""

    def __init__(self, cache) -> None:
        self.cache = cache
        self.done: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "_Invalidator":
        self._stop.clear()
        self._connect()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Disconnect, as a crashed or redeployed subscriber would."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._disconnect()

    def _apply(self, event: dict) -> None:
        self.cache.delete(event["key"])
        self.done.put((event["seq"], time.perf_counter_ns()))

    def wait_for(self, seq: int, timeout_s: float) -> int | None:
        """The completion time (ns) of event ``seq``, or None if it did not arrive in time."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                got, at = self.done.get(timeout=left)
            except queue.Empty:
                return None
            if got == seq:
                return at
        return None

    def _connect(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _disconnect(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _run(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class PubSubInvalidator(_Invalidator):
    """Invalidation over Redis pub/sub (at-most-once)."""

    def __init__(self, cache) -> None:
        super().__init__(cache)
        self.channel = cache.target.namespace + "events:catalog"
        self._pubsub = None

    def _connect(self) -> None:
        self._pubsub = self.cache.client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(self.channel)

    def _disconnect(self) -> None:
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.05)
            if message and message["type"] == "message":
                self._apply(json.loads(message["data"]))

    def publish(self, seq: int, key: str) -> int:
        """Publish an invalidation; returns how many subscribers received it."""
        return self.cache.client.publish(self.channel, json.dumps({"seq": seq, "key": key}))


class StreamInvalidator(_Invalidator):
    """Invalidation over a Redis Stream with a consumer group (at-least-once, catches up)."""

    GROUP = "invalidators"

    def __init__(self, cache) -> None:
        super().__init__(cache)
        self.stream = cache.target.namespace + "events:catalog:stream"
        cache.target.written.add("events:catalog:stream")
        try:
            cache.client.xgroup_create(self.stream, self.GROUP, id="$", mkstream=True)
        except redis.ResponseError as exc:  # the group exists already
            if "BUSYGROUP" not in str(exc):
                raise

    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass

    def _run(self) -> None:
        client = self.cache.client
        while not self._stop.is_set():
            replies = client.xreadgroup(self.GROUP, "invalidator-1", {self.stream: ">"}, count=100, block=50)
            for _, entries in replies or []:
                for entry_id, fields in entries:
                    self._apply(json.loads(fields[b"event"]))
                    client.xack(self.stream, self.GROUP, entry_id)

    def publish(self, seq: int, key: str) -> bytes:
        """Append an invalidation to the stream (kept until the group acknowledges it)."""
        return self.cache.client.xadd(self.stream, {"event": json.dumps({"seq": seq, "key": key})},
                                       maxlen=10_000, approximate=True)


class QueueInvalidator(_Invalidator):
    """Invalidation through a queue the subscriber drains (SNS → SQS stand-in); events wait while it is away."""

    def __init__(self, cache) -> None:
        super().__init__(cache)
        self.bus: queue.Queue = queue.Queue()

    def _connect(self) -> None:
        pass

    def _disconnect(self) -> None:
        pass

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                event = self.bus.get(timeout=0.05)
            except queue.Empty:
                continue
            self._apply(event)

    def publish(self, seq: int, key: str) -> int:
        """Enqueue an invalidation (kept until the subscriber takes it)."""
        self.bus.put({"seq": seq, "key": key})
        return 1


def event_to_gone_ms(invalidator: _Invalidator, events: int, *, progress: bool = True) -> np.ndarray:
    """Latency from publishing an event to the affected key's delete being acknowledged, per event, in time
    order (a quiet section: no other chapter's load beside it)."""
    latencies = np.empty(events)
    sections, ttl_s = int(figure("promo_categories")), int(load_key_design()["promo"].ttl_s)
    with quiet(f"event to key gone ({type(invalidator).__name__})"):
        for seq in tqdm(range(events), desc=type(invalidator).__name__, disable=not progress, mininterval=1):
            key = f"promo:section-{seq % sections}"
            invalidator.cache.set(key, b"old promotion", ttl_s)
            start = time.perf_counter_ns()
            invalidator.publish(seq, key)
            finished = invalidator.wait_for(seq, timeout_s=5)
            if finished is None:
                raise TimeoutError(f"invalidation {seq} did not arrive within 5 s")
            latencies[seq] = (finished - start) / 1e6
    return latencies


TTL_ONLY = Table("invalidation.TTL_ONLY", ("family", "pattern", "ttl_s", "mean_stale_s", "max_stale_s", "invalidated_by"))
"""`ttl_only_staleness`: one row per cacheable key family."""

MISSED = Table("invalidation.MISSED", ("transport", "delivered_at_publish", "caught_up", "stale_after_restart",
                                       "stale_window_s", "downtime_s"))
"""`missed_event`'s record (``transport``: ``PubSub``, ``Stream`` or ``Queue``)."""


def ttl_only_staleness() -> pd.DataFrame:
    """Staleness if only TTLs expire entries: a change lands at a uniform moment of the entry's life,
    so it is served stale for TTL/2 on average and up to the full TTL."""
    rows = [{"family": f.name, "pattern": f.pattern, "ttl_s": f.ttl_s, "mean_stale_s": f.ttl_s / 2,
             "max_stale_s": f.ttl_s, "invalidated_by": f.invalidated_by}
            for f in load_key_design().families.values() if f.cacheable]
    return TTL_ONLY.frame(rows)


def missed_event(invalidator: _Invalidator, *, downtime_s: float, ttl_s: int | None = None,
                 wait_s: float = 2.0) -> dict:
    """Stop the subscriber, publish one invalidation, restart it ``downtime_s`` later.

    An event not applied within ``wait_s`` of the restart counts as lost. Returns how many subscribers
    the event reached at publish time, whether the key was still
    stale after the subscriber came back, and the stale window: until the ``DEL`` if the event was
    caught up, else until the TTL expires (the key's remaining TTL).
    """
    cache = invalidator.cache
    key = "promo:manga-home"
    ttl_s = int(load_key_design()["promo"].ttl_s) if ttl_s is None else ttl_s  # a promotion's 15 minutes
    cache.set(key, b"yesterday's 20%-off coupon", ttl_s)
    with quiet(f"an event missed while the {type(invalidator).__name__} is away"):
        invalidator.stop()
        start = time.perf_counter_ns()
        reached = invalidator.publish(10**9, key)
        time.sleep(downtime_s)  # the subscriber is away (a real stop, not a stand-in for a network)
        invalidator.start()
        finished = invalidator.wait_for(10**9, timeout_s=wait_s)
    stale_now = cache.get(key) is not None
    if finished is not None:
        window_s = (finished - start) / 1e9
    else:  # nothing will delete it: stale until the TTL set above runs out
        window_s = ttl_s
    return MISSED.record({"transport": type(invalidator).__name__.replace("Invalidator", ""),
                          "delivered_at_publish": int(reached) if isinstance(reached, int) else 0,
                          "caught_up": finished is not None, "stale_after_restart": stale_now,
                          "stale_window_s": window_s, "downtime_s": downtime_s})
