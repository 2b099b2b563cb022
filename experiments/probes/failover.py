"""Failover of a Redis primary under Sentinel: how long reads stop, what survives, what comes back.

The seed counts on replication: "the promoted replica already has all keys", and rates Redis
"strong" consistency. Two experiments on a real primary + replica + 3 sentinels:

* `run_failover` — SIGKILL the primary; time until a sentinel names the new primary, time until a
  client that only knows the sentinels reads again, and how many keys the new primary holds.
* `lost_invalidation` — the replica is cut off, invalidations (``DEL``) are acknowledged by the
  primary but never replicated, the primary dies: the promoted replica holds the stale promotions
  until their TTL expires. Replication in Redis is asynchronous; an acknowledgement is not a promise.
  A replay from a durable invalidation log kept outside the Redis (`caches.invalidationlog`) removes
  them when Sentinel announces the new primary; the experiment measures how soon.

Both refuse to run on anything but servers the book started (`SentinelSet`).
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time

import pandas as pd
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from experiments.caches.invalidationlog import FailoverReplayer, InvalidationLog
from experiments.caches.keydesign import load as load_key_design
from experiments.lab.quiet import quiet
from experiments.lab.spawner import make_workdir
from experiments.lab.topologies import SentinelSet, Together
from experiments.results import Table

POLL_S = 0.01
KEY = "promo:manga-home"


class ParallelSets(Together):
    """Several `SentinelSet` groups started at once (each needs seconds of gossip before it is ready)."""

    def __init__(self, down_after_ms: list[int], *, engine: str = "redis") -> None:
        super().__init__([SentinelSet(down_after_ms=ms, failover_timeout_ms=max(3000, 3 * ms), engine=engine)
                          for ms in down_after_ms])


def _master_port(group: SentinelSet) -> int | None:
    for sentinel in group.sentinels:
        try:
            with sentinel.client() as c:
                return int(c.sentinel_get_master_addr_by_name(group.master_name)[1])
        except (redis.RedisError, OSError, TypeError):
            continue
    return None


@dataclasses.dataclass
class FailoverResult:
    """One Sentinel failover: its detection setting, when the replica was promoted and first answered a read
    (seconds after the primary was stopped), and the keys before and after."""

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
            pipe.set(f"product:B{i:09d}", b"x" * 100, ex=int(load_key_design()["product"].ttl_s))
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


SWEEP = Table("failover.SWEEP", tuple(f.name for f in dataclasses.fields(FailoverResult)))
"""`failover_sweep`: one `FailoverResult` per row, one row per failure-detection time."""

LOST = Table("failover.LOST", (
    "replicated_before_cut", "deletes_acknowledged", "replicas_with_delete", "promotion_s", "invalidations_logged",
    "invalidations_replayed", "lost_deletes_found", "lost_were_after_cut", "stale_for_s_without_mitigation",
    "stale_for_s_with_replay", "stale_reads_seen", "stale_read_after_replay", "gone_after_replay"))
"""`lost_invalidation`'s record."""


def failover_sweep(groups: list[SentinelSet], keys: int) -> pd.DataFrame:
    """`run_failover` on each group (one per failure-detection time), timed in a quiet section."""
    with quiet("Sentinel failovers"):
        return SWEEP.frame(dataclasses.asdict(run_failover(g, keys)) for g in groups)


LOST_PROMOTIONS = 5
"""Promotions invalidated after the replica was cut off (their DELs are lost), and as many before it."""


def _poll_key(group: SentinelSet, stop: threading.Event, start: float, seen: list[tuple[float, bool]]) -> None:
    """A client that knows only the sentinels, reading ``KEY`` every 10 ms: (seconds after the kill, stale?)."""
    reader = group.sentinel_client().master_for(group.master_name, socket_timeout=0.2,
                                                socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    while not stop.is_set():
        try:
            seen.append((time.perf_counter() - start, reader.get(KEY) is not None))
        except (redis.RedisError, OSError):
            reader.connection_pool.disconnect()
        time.sleep(POLL_S)


def lost_invalidation(group: SentinelSet, *, ttl_s: int | None = None) -> dict:
    """Acknowledged ``DEL`` s that the failover loses, and the replay from a durable log that restores them.

    1. ``2 × LOST_PROMOTIONS`` promotions are cached and replicated (``WAIT`` confirms);
    2. half are invalidated and replicated; every invalidation goes to the `InvalidationLog` first;
    3. the replica loses its link and cannot re-authenticate (the primary's password changes);
    4. the other half, ``KEY`` among them, are invalidated: acknowledged, logged, ``WAIT`` returns 0;
    5. the primary is SIGKILLed; Sentinel promotes the replica, which still holds those promotions.

    A `FailoverReplayer` watches a sentinel's ``+switch-master`` throughout and, on the switch, re-sends
    every logged invalidation younger than ``ttl_s``; a reader polls ``KEY`` through Sentinel meanwhile.
    """
    ttl_s = int(load_key_design()["promo"].ttl_s) if ttl_s is None else ttl_s  # a promotion's 15 minutes
    keys = [KEY] + [f"promo:campaign-{i}" for i in range(2 * LOST_PROMOTIONS - 1)]
    before_cut, after_cut = keys[LOST_PROMOTIONS:], keys[:LOST_PROMOTIONS]
    primary = group.primary.client()
    workdir = make_workdir("invalidation-log")
    log = InvalidationLog(workdir / "invalidations.log")
    replayer = FailoverReplayer(group.sentinels[0].client(), log, horizon_s=ttl_s,
                                connect=lambda host, port: redis.Redis(host, port, password=group.password, protocol=2))
    stop, seen = threading.Event(), []
    try:
        with replayer:
            for key in keys:
                primary.set(key, b"yesterday's 20%-off coupon", ex=ttl_s)
            synced_before = primary.wait(1, 2000)
            for key in before_cut:
                log.append(key)
                primary.delete(key)
            synced_between = primary.wait(1, 2000)
            primary.config_set("requirepass", "rotated-password")
            primary.client_kill_filter(_type="replica")
            deleted = 0
            for key in after_cut:
                log.append(key)
                deleted += primary.delete(key)
            synced_after = primary.wait(1, 100)
            old_port = group.primary.port
            start = time.perf_counter()
            poller = threading.Thread(target=_poll_key, args=(group, stop, start, seen), daemon=True)
            poller.start()
            group.primary.kill()
            promotion_s = None
            while promotion_s is None or not replayer.replays:
                if time.perf_counter() - start > 30:
                    raise TimeoutError("no failover and replay within 30 s")
                if promotion_s is None and _master_port(group) not in (None, old_port):
                    promotion_s = time.perf_counter() - start
                time.sleep(POLL_S)
            time.sleep(0.2)  # the reader goes on reading after the replay
            stop.set()
            poller.join(timeout=5)
            logged = len(log.entries())
    finally:
        stop.set()
        shutil.rmtree(workdir, ignore_errors=True)
    replay = replayer.replays[0]
    replay_s = replay.finished_at - start
    new_primary = next(r for r in group.replicas if r.port == _master_port(group)).client()
    stale_reads = [t for t, stale in seen if stale]
    return LOST.record({
        "replicated_before_cut": synced_before == 1 and synced_between == 1,
        "deletes_acknowledged": deleted, "replicas_with_delete": synced_after, "promotion_s": promotion_s,
        "invalidations_logged": logged, "invalidations_replayed": replay.replayed,
        "lost_deletes_found": len(replay.still_present), "lost_were_after_cut": sorted(replay.still_present) == sorted(after_cut),
        "stale_for_s_without_mitigation": max(replay.remaining_ttl_s, default=0) + replay_s,
        "stale_for_s_with_replay": replay_s,
        "stale_reads_seen": len(stale_reads),
        "stale_read_after_replay": any(t > replay_s for t in stale_reads),
        "gone_after_replay": all(new_primary.get(k) is None for k in keys),
    })


def mitigations(lost: dict, *, ttl_cap_s: int) -> pd.DataFrame:
    """How long the lost invalidation stays visible under each mitigation (from `lost_invalidation`)."""
    return pd.DataFrame([
        {"mitigation": "none: wait for the TTL", "stale_for_s": lost["stale_for_s_without_mitigation"],
         "how it is known": "measured: the key's remaining TTL on the promoted replica"},
        {"mitigation": "WAIT 1 after each DEL", "stale_for_s": lost["stale_for_s_without_mitigation"],
         "how it is known": f"WAIT returned {lost['replicas_with_delete']}: the loss is detected, not prevented"},
        {"mitigation": "replay a durable invalidation log on +switch-master", "stale_for_s": lost["stale_for_s_with_replay"],
         "how it is known": (f"measured: kill → replay done; {lost['lost_deletes_found']} of "
                             f"{lost['invalidations_replayed']} replayed DELs found a stale entry")},
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
