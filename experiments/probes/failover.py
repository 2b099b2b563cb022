"""Failover of a Redis primary under Sentinel: how long reads stop, what survives, what comes back.

The seed counts on replication: "the promoted replica already has all keys", and rates Redis
"strong" consistency. Two experiments on a real primary + replica + 3 sentinels:

* `run_failover` — SIGKILL the primary; time until a sentinel names the new primary, time until a
  client that only knows the sentinels reads again, and how many keys the new primary holds.
* `lost_invalidation` — the replica is cut off, an invalidation (``DEL``) is acknowledged by the
  primary but never replicated, the primary dies: the promoted replica serves the stale promotion
  until its TTL expires. Replication in Redis is asynchronous; an acknowledgement is not a promise.

Both refuse to run on anything but servers the book started (`SentinelSet`).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from experiments.lab.topologies import SentinelSet

POLL_S = 0.01
KEY = "promo:manga-home"


class ParallelSets:
    """Several `SentinelSet` groups started at once (each needs seconds of gossip before it is ready)."""

    def __init__(self, down_after_ms: list[int]) -> None:
        self.groups = [SentinelSet(down_after_ms=ms, failover_timeout_ms=max(3000, 3 * ms)) for ms in down_after_ms]

    def start(self) -> "ParallelSets":
        with ThreadPoolExecutor(len(self.groups)) as pool:
            futures = [pool.submit(g.start) for g in self.groups]
        try:
            for future in futures:
                future.result()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for group in self.groups:
            group.stop()

    def __enter__(self) -> "ParallelSets":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _master_port(group: SentinelSet) -> int | None:
    for sentinel in group.sentinels:
        try:
            with sentinel.client() as c:
                return int(c.sentinel_get_master_addr_by_name(group.master_name)[1])
        except (redis.RedisError, OSError, TypeError):
            continue
    return None


@dataclass
class FailoverResult:
    down_after_ms: int
    promotion_s: float
    first_read_s: float
    keys_before: int
    keys_after: int


def fill(group: SentinelSet, keys: int) -> int:
    """Write ``keys`` product entries and wait until the replica has them all (``WAIT``)."""
    client = group.primary.client()
    with client.pipeline(transaction=False) as pipe:
        for i in range(keys):
            pipe.set(f"product:B{i:09d}", b"x" * 100, ex=300)
        pipe.execute()
    replicated = client.wait(len(group.replicas), 5000)
    if replicated < len(group.replicas):
        raise RuntimeError(f"only {replicated} replicas acknowledged the writes")
    return client.dbsize()


def run_failover(group: SentinelSet, keys: int) -> FailoverResult:
    """SIGKILL the primary; time the promotion and the first successful read through Sentinel."""
    before = fill(group, keys)
    old_port = group.primary.port
    reader = group.sentinel_client().master_for(group.master_name, socket_timeout=0.2,
                                                socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    start = time.perf_counter()
    group.primary.kill()
    promotion = first_read = None
    while promotion is None or first_read is None:
        now = time.perf_counter() - start
        if now > 30:
            raise TimeoutError(f"no failover within 30 s (down-after {group.down_after_ms} ms)")
        if promotion is None and _master_port(group) not in (None, old_port):
            promotion = now
        if first_read is None:
            try:
                if reader.get("product:B000000000") is not None:
                    first_read = time.perf_counter() - start
            except (redis.RedisError, OSError):
                reader.connection_pool.disconnect()
        time.sleep(POLL_S)
    new_primary = next(r for r in group.replicas if r.port == _master_port(group))
    return FailoverResult(group.down_after_ms, promotion, first_read, before, new_primary.client().dbsize())


def failover_sweep(groups: list[SentinelSet], keys: int) -> pd.DataFrame:
    """`run_failover` on each group (one per failure-detection time)."""
    return pd.DataFrame([run_failover(g, keys).__dict__ for g in groups])


def lost_invalidation(group: SentinelSet, *, ttl_s: int = 900) -> dict:
    """An acknowledged ``DEL`` that the failover loses (deterministic recipe, FIELD-NOTES).

    1. the promotion is cached and replicated (``WAIT`` confirms);
    2. the replica loses its link and cannot re-authenticate (the primary's password changes);
    3. the invalidation ``DEL`` is acknowledged by the primary (``WAIT`` now returns 0);
    4. the primary is SIGKILLed; Sentinel promotes the replica, which still holds the promotion.
    """
    primary = group.primary.client()
    primary.set(KEY, b"yesterday's 20%-off coupon", ex=ttl_s)
    synced_before = primary.wait(1, 2000)
    primary.config_set("requirepass", "rotated-password")
    primary.client_kill_filter(_type="replica")
    deleted = primary.delete(KEY)
    synced_after = primary.wait(1, 100)
    old_port = group.primary.port
    start = time.perf_counter()
    group.primary.kill()
    while _master_port(group) in (None, old_port):
        if time.perf_counter() - start > 30:
            raise TimeoutError("no failover within 30 s")
        time.sleep(POLL_S)
    promotion_s = time.perf_counter() - start
    new_primary = next(r for r in group.replicas if r.port == _master_port(group)).client()
    served = new_primary.get(KEY)
    remaining_ttl = new_primary.ttl(KEY)
    replay_start = time.perf_counter()
    new_primary.delete(KEY)  # mitigation: replay the invalidations of the last minutes
    replay_s = time.perf_counter() - replay_start
    return {
        "replicated_before_delete": synced_before, "delete_acknowledged": deleted,
        "replicas_with_delete": synced_after, "promotion_s": promotion_s,
        "served_after_failover": served.decode() if served else None,
        "stale_for_s_without_mitigation": remaining_ttl + promotion_s,
        "stale_for_s_with_replay": promotion_s + replay_s,
        "gone_after_replay": new_primary.get(KEY) is None,
    }


def mitigations(lost: dict, *, ttl_cap_s: int) -> pd.DataFrame:
    """How long the lost invalidation stays visible under each mitigation (from `lost_invalidation`)."""
    return pd.DataFrame([
        {"mitigation": "none: wait for the TTL", "stale_for_s": lost["stale_for_s_without_mitigation"],
         "how it is known": "measured: the key's remaining TTL on the promoted replica"},
        {"mitigation": "WAIT 1 after each DEL", "stale_for_s": lost["stale_for_s_without_mitigation"],
         "how it is known": f"WAIT returned {lost['replicas_with_delete']}: the loss is detected, not prevented"},
        {"mitigation": "replay recent invalidations after a failover", "stale_for_s": lost["stale_for_s_with_replay"],
         "how it is known": "measured: promotion time + the replayed DEL"},
        {"mitigation": f"cap the TTL at {ttl_cap_s} s", "stale_for_s": float(ttl_cap_s),
         "how it is known": "bound: the entry cannot outlive its TTL"},
    ])


def recovery_chart_frame(failovers: pd.DataFrame) -> pd.DataFrame:
    """Long table for the recovery chart, with the detection time itself as a reference series."""
    frame = failovers.assign(detection_s=failovers.down_after_ms / 1000)
    long = frame.melt(id_vars="down_after_ms", value_vars=["detection_s", "promotion_s", "first_read_s"],
                      var_name="event", value_name="seconds")
    long["event"] = long.event.map({"detection_s": "failure detected (down-after)",
                                    "promotion_s": "replica promoted", "first_read_s": "client reads again"})
    return long
