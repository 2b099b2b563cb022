"""A durable invalidation log kept outside the cache, and the replay that applies it after a failover.

Redis replicates asynchronously, so a ``DEL`` the primary acknowledged can vanish with it when a
replica is promoted, and the promoted replica serves the stale entry until its TTL ends. A replay
closes that window only if its source survives the failover: in production the event source's own
durable log (DynamoDB Streams, a Kafka topic, an SQS queue per subscriber); here an append-only file
stands in for it. Every invalidation is appended and ``fsync``-ed *before* its ``DEL`` is sent, so
each ``DEL`` a client was told about has a record.

When a sentinel announces a new primary (``+switch-master``), `FailoverReplayer` applies again every
invalidation younger than the longest TTL of the invalidated families. That horizon needs no guess
about replication lag: a value cached before an older invalidation has expired by now anyway. ``DEL``
is idempotent, so replaying one that did survive costs at most one extra miss.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis


@dataclass(frozen=True)
class Entry:
    """One logged invalidation: its sequence number, when it was recorded (unix seconds) and its key."""
    seq: int
    at_s: float
    key: str


class InvalidationLog:
    """Append-only file of invalidations, one ``seq<TAB>unix-time<TAB>key`` line each, synced to disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seq = len(self.entries()) if self.path.exists() else 0

    def append(self, key: str) -> Entry:
        """Record one invalidation durably; returns it once it is on disk."""
        if "\t" in key or "\n" in key:
            raise ValueError(f"key {key!r}: a logged key may not contain a tab or a newline")
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            entry = Entry(self._seq, time.time(), key)
            out.write(f"{entry.seq}\t{entry.at_s:.6f}\t{entry.key}\n")
            out.flush()
            os.fsync(out.fileno())
            self._seq += 1
        return entry

    def entries(self) -> list[Entry]:
        """Every invalidation in the log, oldest first (none before the file exists)."""
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        return [Entry(int(seq), float(at), key) for seq, at, key in (line.split("\t", 2) for line in lines)]

    def since(self, at_s: float) -> list[Entry]:
        """The invalidations recorded at or after ``at_s`` (unix seconds), oldest first."""
        return [e for e in self.entries() if e.at_s >= at_s]


@dataclass
class Replay:
    """What one replay did: when it finished (``time.perf_counter``), what each re-sent ``DEL`` found."""
    finished_at: float
    replayed: int
    still_present: list[str] = field(default_factory=list)
    remaining_ttl_s: list[int] = field(default_factory=list)


class FailoverReplayer:
    """Re-applies the log's recent invalidations on each new primary a sentinel announces.

    ``sentinel`` is a client of one sentinel; ``connect(host, port)`` returns a client of a data node;
    ``horizon_s`` is the longest TTL of the invalidated families. Runs in a background thread between
    `start` and `stop` (a context manager).
    """

    def __init__(self, sentinel: redis.Redis, log: InvalidationLog, *, horizon_s: float,
                 connect: Callable[[str, int], redis.Redis]) -> None:
        self.sentinel, self.log, self.horizon_s, self.connect = sentinel, log, horizon_s, connect
        self.replays: list[Replay] = []
        self._stop = threading.Event()
        self._pubsub = sentinel.pubsub(ignore_subscribe_messages=True)
        self._thread = threading.Thread(target=self._watch, name="failover-replayer", daemon=True)

    def start(self) -> "FailoverReplayer":
        """Subscribe to the sentinel's ``+switch-master`` and start watching in the background."""
        self._pubsub.subscribe("+switch-master")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the watching thread (a replay under way finishes first, up to 5 s) and close the
        subscription."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()

    def __enter__(self) -> "FailoverReplayer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _watch(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.05)
            if message:  # "<master-name> <old-ip> <old-port> <new-ip> <new-port>"
                data = message["data"]
                _, _, _, host, port = (data.decode() if isinstance(data, bytes) else data).split()
                self.replays.append(self._replay_until_accepted(self.connect(host, int(port))))

    def _replay_until_accepted(self, primary: redis.Redis, give_up_s: float = 5.0) -> Replay:
        """`replay`, retried while the new primary still refuses writes (it may lag its announcement)."""
        deadline = time.monotonic() + give_up_s
        while True:
            try:
                return self.replay(primary)
            except (redis.RedisError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def replay(self, primary: redis.Redis) -> Replay:
        """``TTL`` then ``DEL`` for every invalidation within the horizon, in one pipeline."""
        keys = [e.key for e in self.log.since(time.time() - self.horizon_s)]
        with primary.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.ttl(key)
                pipe.delete(key)
            answers = pipe.execute()
        finished = time.perf_counter()
        found = [(key, ttl) for key, ttl, deleted in zip(keys, answers[::2], answers[1::2]) if deleted]
        return Replay(finished, len(keys), [k for k, _ in found], [int(t) for _, t in found])
