"""How stale each option lets a family be: when all is well, and under the failures the book reproduced.

When all is well a family changed by events is stale for the event path (the Redis and Memcached chapters:
milliseconds; `EVENT_PATH_S`), plus a replica's lag where its reads may go to a replica; a family nothing
announces is stale for its TTL. The failures the book measured each leave a value stale for a whole TTL
unless the option includes the mitigation that removes it (`FAILURES`):

* a change event missed by a subscriber (pub/sub delivers at most once) — a stream-fed invalidator;
* deletes acknowledged by a primary that failed before its replica had them — a replay of the recent
  changes from the durable change log whenever the invalidator reconnects (on ElastiCache there is no
  Sentinel ``+switch-master`` to trigger it: the reconnect after the failover is the trigger, so what is
  left is the client's timeouts), or synchronous durability (Valkey 9+), which loses no acknowledged write;
* a fill that read the old value before a change and wrote it after the delete (the stale-set race) — a
  guarded fill (Valkey 8.1's ``SET … IFEQ``, a Lua compare, memcached's CAS);
* a memcached node back from a partition, serving what it held before — a flush before it serves again.

A family is cached only if its worst case, after the mitigations it needs, is within its limit; every
mitigation an option needs is a component to build (durability is bought, not built).
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.decide.workload import Family
from experiments.findings import EVENT_P99_BOUND_MS
from experiments.models import daxmodel
from experiments.seed import service_default

EVENT_PATH_S = EVENT_P99_BOUND_MS / 1000
"""Staleness after a change when its event reaches the cache: the book's bound on the event path at p99 for
every engine and transport (`experiments.findings.EVENT_P99_BOUND_MS`)."""

REPLICA_LAG_S = 1.0
"""The lag a replica read may add (ours): ElastiCache replicates asynchronously, normally in milliseconds; a
family whose staleness limit is below this bound reads from primaries only. The ``ReplicationLag`` alarm of
the decision record watches the bound."""

FAILOVER_S = service_default("elasticache_failover_s")
"""How long a promotion takes on ElastiCache (AWS: "typically just a few seconds"; an upper reading): a replica
read meanwhile misses the deletes the failed primary had acknowledged."""

RECONNECT_S = (service_default("elasticache_client_connect_timeout_s")
               + service_default("elasticache_client_socket_timeout_s"))
"""What a replay on reconnect leaves stale: the invalidator notices the failed primary within its socket
timeout and reconnects within its connect timeout (AWS's sample client settings for ElastiCache)."""


@dataclass(frozen=True)
class Mitigation:
    """What removes a failure's TTL-long staleness: its component (None: bought with the option) and what
    stays stale after it."""

    id: str
    component: str | None
    residual_s: float


MITIGATIONS = {
    "stream": Mitigation("stream", "a stream-fed invalidator (changes read from a durable log, acknowledged "
                                   "after the delete)", EVENT_PATH_S),
    "queue": Mitigation("queue", "a queue-fed invalidator (memcached has no pub/sub)", EVENT_PATH_S),
    "replay": Mitigation("replay", "a replay of the last changes from the change log whenever the invalidator "
                                   "reconnects (the failover's trigger on ElastiCache)", RECONNECT_S),
    "durable": Mitigation("durable", None, EVENT_PATH_S),
    "guarded-fill": Mitigation("guarded-fill", "a guarded fill (SET … IFEQ on Valkey 8.1+, a Lua compare on Redis, "
                                               "CAS on memcached)", EVENT_PATH_S),
    "flush-on-rejoin": Mitigation("flush-on-rejoin", "a flush of a memcached node that was unreachable, before it "
                                                     "serves again", EVENT_PATH_S),
}

SHARED = ("redis", "valkey", "valkey-durable", "valkey-serverless", "read-through", "near-cache")


@dataclass(frozen=True)
class Failure:
    """A failure the book reproduced: what it does, where the book measured it, the options it hits, and the
    mitigation each of them uses."""

    id: str
    what: str
    proof: str
    mitigation: dict[str, str]


FAILURES = (
    Failure("missed-event", "a change event missed by a disconnected subscriber (pub/sub delivers at most once)",
            "redis.ipynb#failure-2-a-missed-invalidation",
            {**dict.fromkeys(("redis", "valkey", "valkey-durable", "valkey-serverless", "read-through", "near-cache"),
                             "stream"),
             "memcached": "queue"}),
    Failure("lost-on-failover", "deletes acknowledged by a primary that failed before its replica had them",
            "redis.ipynb#failure-1-a-failover-loses-acknowledged-writes",
            {**dict.fromkeys(("redis", "valkey", "valkey-serverless", "read-through", "near-cache"), "replay"),
             "valkey-durable": "durable"}),
    Failure("stale-set", "a fill that read the old value before a change and wrote it after the delete",
            "read-through.ipynb#the-stale-set-race",
            dict.fromkeys(("redis", "valkey", "valkey-durable", "valkey-serverless", "read-through", "near-cache",
                           "memcached"), "guarded-fill")),
    Failure("partition-rejoin", "a memcached node back from a partition serves what it held before",
            "network.ipynb#memcached-a-node-back-from-a-partition", {"memcached": "flush-on-rejoin"}),
)


@dataclass(frozen=True)
class Staleness:
    """One family under one option: stale bound when all is well, worst case after the mitigations applied,
    those mitigations, and why it cannot be cached (None if it can)."""

    bound_s: float
    worst_s: float
    mitigations: tuple[str, ...]
    replica_reads: bool
    not_cached_because: str | None


def _ttl_only(option: str, f: Family) -> float | None:
    """The stale bound of options that invalidate nothing: DAX keeps an item for its own item TTL, a per-task
    cache and DynamoDB caching for the family's TTL (changes made outside their clients); None otherwise."""
    if option == "dax":
        return daxmodel.ITEM_TTL_S
    if option in ("in-process", "valkey-dynamodb"):
        return f.ttl_s
    return None


def judge(option: str, f: Family) -> Staleness:
    """The family's staleness under ``option``, with the mitigations its limit needs."""
    if option == "no-cache":
        return Staleness(0.0, 0.0, (), False, None)
    ttl_only = _ttl_only(option, f)
    if ttl_only is not None:
        why = (f"stale for up to {ttl_only:,.0f} s after a change; the limit is {f.max_stale_s:,g} s"
               if ttl_only > f.max_stale_s else None)
        return Staleness(ttl_only, ttl_only, (), False, why)
    if not f.changed_by_events:
        replica = option in SHARED and option != "valkey-serverless" and f.max_stale_s >= REPLICA_LAG_S
        bound = f.ttl_s
        why = f"stale for up to {bound:,.0f} s (no event announces a change); the limit is {f.max_stale_s:,g} s"
        return Staleness(bound, bound, (), replica, why if bound > f.max_stale_s else None)
    primary_only = _invalidated(option, f, replica=False)
    if option in SHARED and option != "valkey-serverless" and f.max_stale_s >= REPLICA_LAG_S:
        replica = _invalidated(option, f, replica=True)  # replica reads where their worst case keeps the limit
        if replica.not_cached_because is None:
            return replica
    return primary_only


def _invalidated(option: str, f: Family, *, replica: bool) -> Staleness:
    lag = REPLICA_LAG_S if replica else 0.0
    if f.ttl_s <= f.max_stale_s:  # the TTL alone keeps the limit: no invalidator is needed, none is built
        return Staleness(f.ttl_s, f.ttl_s, (), replica, None)
    worst, used = EVENT_PATH_S + lag, []
    for failure in FAILURES:
        if option in failure.mitigation:
            m = MITIGATIONS[failure.mitigation[option]]
            used.append(m.id)
            # a replica read during the promotion misses the deletes the failed primary acknowledged
            residual = m.residual_s + (FAILOVER_S if m.id == "replay" and replica else 0.0)
            worst = max(worst, residual + lag)
    why = (f"stale for up to {worst:,.1f} s in its worst measured failure even with {', '.join(used)}; the limit "
           f"is {f.max_stale_s:,g} s" if worst > f.max_stale_s else None)
    return Staleness(EVENT_PATH_S + lag, worst, tuple(used), replica, why)


def components(option: str, judged: list[tuple[Family, Staleness]]) -> list[str]:
    """The components the cached families' mitigations need, each named once with the families it serves."""
    by_component: dict[str, list[str]] = {}
    for f, s in judged:
        for m in s.mitigations:
            component = MITIGATIONS[m].component
            if component:
                by_component.setdefault(component, []).append(f.name)
    return [f"{c} for {', '.join(names)}" for c, names in by_component.items()]
