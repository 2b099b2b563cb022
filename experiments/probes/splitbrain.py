"""A primary cut off by a silent partition, with one client left on its side: what it acknowledges, what the
failover throws away, and what a cluster client sees meanwhile — Sentinel and Redis Cluster on the network lab.

A kill (the Redis chapter's failover) is loud and leaves no one writing to the old primary. A partition is
silent, and the old primary keeps running: a client that still reaches it — an orchestrator task on its
side of the cut — goes on writing, and the primary goes on acknowledging. When the partition heals, the
old primary rejoins as a replica of the one promoted meanwhile and resynchronises from it: every write it
acknowledged alone is gone. For a cache those writes are refills (a lost ``SET`` costs one miss) and
invalidations (a lost ``DEL`` leaves the old value served until its TTL).

* `sentinel_partition` — a primary, a replica and three sentinels, each in its own lab host, and the
  ``app`` host on the primary's side; with and without ``min-replicas-to-write 1``, which makes a primary
  refuse writes once no replica has acknowledged it for ``min-replicas-max-lag`` seconds.
* `cluster_partition` — a 3-primary Redis Cluster (one replica each), one primary cut off from the other
  nodes and from the ``app`` host, where a redis-py ``RedisCluster`` client reads; a ``side`` host keeps
  writing to the cut-off primary, which refuses writes once it has missed the majority for
  ``cluster-node-timeout``.

Every load is bounded in count and time; every wait has a deadline.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from experiments.caches.keydesign import load as load_key_design
from experiments.errors import ParameterError
from experiments.lab.netlab import NetLab
from experiments.lab.quiet import quiet
from experiments.lab.topologies import RedisClusterSet, SentinelSet
from experiments.results import Table

WRITE_EVERY_S = 0.01
"""The writer on the old primary's side sends one write per 10 ms (alternating DEL and SET)."""

REJOIN_WITHIN_S = 30.0
"""How long the healed old primary may take to become a replica of the new one and finish its sync."""


def _role(client: redis.Redis) -> tuple[str, str | None]:
    """A server's role and link, or ``("changing", None)`` when it drops the connection (a primary turned into
    a replica may close its clients' connections while it resynchronises): the next poll reconnects."""
    try:
        info = client.info("replication")
    except (redis.ConnectionError, redis.TimeoutError):
        return "changing", None
    return str(info["role"]), info.get("master_link_status")


class _Writer(threading.Thread):
    """Writes from one lab host to one server until stopped or out of ``plan``: each ``(kind, key)`` a ``DEL``
    or a ``SET key v2``, one per `WRITE_EVERY_S`, recorded as (seconds since ``start_at``, set just before the
    partition, kind, key, acknowledged?, the error's first word)."""

    def __init__(self, lab: NetLab, host: str, make_client, plan: list[tuple[str, str]]) -> None:
        super().__init__(daemon=True)
        self.lab, self.host, self.make_client, self.plan = lab, host, make_client, plan
        self.start_at = 0.0
        self.stop = threading.Event()
        self.writes: list[dict] = []

    def run(self) -> None:
        with self.lab.inside(self.host):
            client = self.make_client()
            for kind, key in self.plan:
                if self.stop.is_set():
                    break
                try:
                    client.delete(key) if kind == "DEL" else client.set(key, b"v2")
                    acked, error = True, ""
                except (redis.RedisError, OSError) as exc:
                    acked, error = False, _refusal(exc)
                self.writes.append({"t_s": time.monotonic() - self.start_at, "kind": kind, "key": key,
                                    "acked": acked, "error": error})
                time.sleep(WRITE_EVERY_S)
            client.close()


def _refusal(exc: Exception) -> str:
    """A refusal's name: the server's error code (``NOREPLICAS``) or, where redis-py raises its own class for it
    (``ClusterDownError`` for ``CLUSTERDOWN``), that class."""
    name = type(exc).__name__
    return (str(exc).split() or [name])[0] if name == "ResponseError" else name


def _plan(dels: list[str], sets: list[str]) -> list[tuple[str, str]]:
    """Invalidations and refills in turn: DEL dels[0], SET sets[0], DEL dels[1], …"""
    return [w for pair in zip((("DEL", k) for k in dels), (("SET", k) for k in sets)) for w in pair]


def _fill(client, keys: list[str]) -> None:
    """Every key at ``v1`` with its family's TTL (a promotion's 15 minutes, a product's 5)."""
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, b"v1", ex=_ttl_s(key))
        pipe.execute()


LOSSES = ("writes", "untouched", "untouched_kept", "lost_del_ttl_s", "acked_dels", "acked_sets", "acked_writes",
          "lost_dels", "lost_sets", "lost_writes", "refused", "refusal", "last_acked_s", "first_refused_s")
"""What `_losses` counts, in every split-brain run's row (``refusal`` "" and ``first_refused_s`` NaN: none
refused)."""

SENTINEL = Table("splitbrain.SENTINEL", ("down_after_ms", "min_replicas_max_lag_s", "replicated_before", "promotion_s",
                                         "new_side_write", *LOSSES, "rejoined_as_replica", "rejoined_s"))
"""`all_at_once`'s Sentinel runs: one row per setting (``min_replicas_max_lag_s`` NaN: the guard off)."""

CLUSTER = Table("splitbrain.CLUSTER", (
    "node_timeout_ms", "replicated_before", "slots_moved_s", "victim_reads", "victim_errors", "victim_errors_seen",
    "victim_longest_read_ms", "victim_answered_again_s", "other_errors", "other_longest_read_ms", *LOSSES,
    "rejoined_as_replica"))
"""`all_at_once`'s Redis Cluster runs: one row per node timeout."""

CLUSTER_LOG = Table("splitbrain.CLUSTER_LOG", ("t_s", "ok", "latency_ms", "error", "victim_key", "node_timeout_ms"))
"""`all_at_once`'s cluster readers' logs: one row per read."""


def _ttl_s(key: str) -> int:
    """The key design's TTL of ``key``'s family (``promo:…`` 15 minutes, ``product:…`` 5)."""
    return int(load_key_design()[key.split(":", 1)[0]].ttl_s)


def _read_back(writes: list[dict], plan: list[tuple[str, str]], survivor) -> tuple[dict, dict]:
    """What the survivor holds for every key of the plan (written or not): its value (None: absent) and, for a
    key still present, the TTL it has left."""
    values = {key: survivor.get(key) for key in {w["key"] for w in writes} | {key for _, key in plan}}
    return values, {key: survivor.ttl(key) for key, value in values.items() if value is not None}


def _losses(writes: list[dict], plan: list[tuple[str, str]], values: dict, ttls: dict) -> dict:
    """Acknowledged writes the survivor does not have — a DEL whose key is still there (and the TTL it has
    left), a refill (SET of a key that was absent) that is absent again: a miss — and the promotions the writer
    never reached, which must all still be there; from the survivor's ``values`` and ``ttls`` (`_read_back`)."""
    acked = [w for w in writes if w["acked"]]
    lost = [w["key"] for w in acked if w["kind"] == "DEL" and values.get(w["key"]) is not None]
    lost_sets = sum(values.get(w["key"]) != b"v2" for w in acked if w["kind"] == "SET")
    untouched = [key for kind, key in plan[len(writes):] if kind == "DEL"]
    refused = [w for w in writes if not w["acked"]]
    acked_dels, acked_sets = (sum(w["kind"] == kind for w in acked) for kind in ("DEL", "SET"))
    return {"writes": len(writes), "untouched": len(untouched),
            "untouched_kept": sum(values.get(key) == b"v1" for key in untouched),
            "lost_del_ttl_s": max((ttls[key] for key in lost), default=0),
            "acked_dels": acked_dels, "acked_sets": acked_sets, "acked_writes": acked_dels + acked_sets,
            "lost_dels": len(lost), "lost_sets": lost_sets, "lost_writes": len(lost) + lost_sets,
            "refused": len(refused), "refusal": refused[0]["error"] if refused else "",
            "last_acked_s": max((w["t_s"] for w in acked), default=0.0),
            "first_refused_s": refused[0]["t_s"] if refused else float("nan")}


def _writes_within(seconds: float) -> int:
    """Keys of each kind a writer needs to write for ``seconds`` without repeating one."""
    return int(seconds / WRITE_EVERY_S / 2) + 1


def sentinel_partition(*, down_after_ms: int, min_replicas_max_lag_s: int | None, hold_s: float = 1.0,
                       engine: str = "redis", tag: str = "") -> dict:
    """Cut the primary off from its replica and the three sentinels (not from ``app``), keep writing to it
    from ``app`` until ``hold_s`` after the promotion, heal, wait for the old primary to rejoin as a replica,
    and count the acknowledged writes the promoted replica does not have. ``min_replicas_max_lag_s`` set:
    ``min-replicas-to-write 1`` with that lag on both servers (None: Redis's default, no such check)."""
    if down_after_ms < 100 or not 0 < hold_s <= 30:
        raise ParameterError(f"down_after_ms={down_after_ms} (≥ 100) and hold_s={hold_s} (0–30 s)")
    watch_s = down_after_ms / 1000 + 20
    keys = _writes_within(watch_s + hold_s)
    guard = () if min_replicas_max_lag_s is None else (
        "--min-replicas-to-write", "1", "--min-replicas-max-lag", str(min_replicas_max_lag_s))
    majority = ["replica0", "sentinel0", "sentinel1", "sentinel2"]
    with NetLab(["primary", *majority, "app"], tag=tag) as lab:
        group = SentinelSet(down_after_ms=down_after_ms, failover_timeout_ms=max(3000, 3 * down_after_ms),
                            engine=engine, server_args=guard, lab=lab, hosts={h: h for h in ["primary", *majority]})
        with group:
            with lab.inside("app"):
                old = group.primary.client(socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
                dels, sets = [f"promo:{i}" for i in range(keys)], [f"product:{i}" for i in range(keys)]
                _fill(old, dels)  # the promotions to invalidate; the products are absent: each SET is a refill
                synced = old.wait(1, 5000)
            old_address = (group.primary.host, str(group.primary.port))
            plan = _plan(dels, sets)
            writer = _Writer(lab, "app", lambda: group.primary.client(socket_timeout=0.5, socket_connect_timeout=0.5,
                                                                      retry=Retry(NoBackoff(), 0)), plan)
            start = writer.start_at = time.monotonic()
            for host in majority:
                lab.partition("primary", host)
            writer.start()
            promotion_s = None
            with lab.inside("sentinel0"), group.sentinels[0].client() as watcher:
                while promotion_s is None and time.monotonic() - start < watch_s:
                    address = tuple(str(v) for v in watcher.sentinel_get_master_addr_by_name(group.master_name))
                    if address != old_address:
                        promotion_s = time.monotonic() - start
                    time.sleep(0.02)
            if promotion_s is None:
                raise TimeoutError(f"no promotion within {watch_s:.0f} s of the partition")
            new = next(r for r in group.replicas if (r.host, str(r.port)) == address)
            with lab.inside("sentinel0"), new.client(socket_timeout=0.5) as c:
                try:
                    c.set("probe:new-side", b"x")
                    new_side_write = "accepted"
                except redis.RedisError as exc:
                    new_side_write = str(exc).split()[0]
            time.sleep(hold_s)  # the old side goes on writing for hold_s after the promotion (bounded load)
            writer.stop.set()
            writer.join(10)
            lab.heal()
            healed = time.monotonic()
            with lab.inside("app"):
                while _role(old) != ("slave", "up") and time.monotonic() - healed < REJOIN_WITHIN_S:
                    time.sleep(0.05)
                rejoined_s = time.monotonic() - healed
                role = _role(old)
                old.close()
                with new.client(socket_timeout=2) as survivor:
                    losses = _losses(writer.writes, plan, *_read_back(writer.writes, plan, survivor))
    return {"down_after_ms": down_after_ms, "min_replicas_max_lag_s": min_replicas_max_lag_s,
            "replicated_before": synced == 1, "promotion_s": promotion_s, "new_side_write": new_side_write,
            **losses, "rejoined_as_replica": role == ("slave", "up"), "rejoined_s": rejoined_s}


def _owner(client: redis.Redis, slot: int) -> tuple[str, int]:
    for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return str(primary[0], "ascii") if isinstance(primary[0], bytes) else str(primary[0]), int(primary[1])
    raise LookupError(f"slot {slot} has no owner")


class _ClusterReader(threading.Thread):
    """Reads ``keys`` in turn through its own ``RedisCluster`` client from the ``app`` host until stopped,
    each read logged as (seconds since ``start_at``, set just before the partition, ok, latency ms, error name)."""

    def __init__(self, lab: NetLab, cluster: RedisClusterSet, keys: list[str], timeout_s: float) -> None:
        super().__init__(daemon=True)
        self.lab, self.cluster, self.keys, self.timeout_s = lab, cluster, keys, timeout_s
        self.start_at = 0.0
        self.stop = threading.Event()
        self.log: list[dict] = []
        with lab.inside("app"):
            self.client = cluster.client(socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
            self.client.get(keys[0])  # connected before the partition

    def run(self) -> None:
        with self.lab.inside("app"):
            i = 0
            while not self.stop.is_set():
                began = time.monotonic()
                try:
                    self.client.get(self.keys[i % len(self.keys)])
                    ok, error = True, ""
                except (redis.RedisError, OSError) as exc:
                    ok, error = False, type(exc).__name__
                self.log.append({"t_s": began - self.start_at, "ok": ok,
                                 "latency_ms": 1000 * (time.monotonic() - began), "error": error})
                i += 1
                time.sleep(0.01)
            self.client.close()


def cluster_partition(*, node_timeout_ms: int, hold_s: float = 1.0, budget_timeout_s: float = 0.25,
                      engine: str = "redis", tag: str = "") -> tuple[dict, pd.DataFrame]:
    """Cut one primary of a 3-primary cluster off from every other node and the ``app`` host (a ``side`` host
    still reaches it and keeps writing to it), and read through redis-py's ``RedisCluster`` from ``app`` with
    the turn budget's socket timeouts — one reader on the cut-off primary's keys, one on the others' — until
    ``hold_s`` after its slots have moved (the writer until the cut-off primary refuses it); heal, wait for it
    to rejoin as a replica, count the lost writes.
    Returns a summary and the readers' log (seconds, the cut-off primary's key?, ok, latency, error)."""
    if node_timeout_ms < 100 or not 0 < hold_s <= 30:
        raise ParameterError(f"node_timeout_ms={node_timeout_ms} (≥ 100) and hold_s={hold_s} (0–30 s)")
    watch_s = 3 * node_timeout_ms / 1000 + 15
    nodes = [f"node{i}" for i in range(6)]
    with NetLab([*nodes, "app", "side"], tag=tag) as lab:
        cluster = RedisClusterSet(node_timeout_ms=node_timeout_ms, engine=engine, lab=lab, hosts={n: n for n in nodes})
        with cluster:
            with lab.inside("app"):
                router = cluster.client()
                where = router.get_node_from_key("promo:0")
                victim = next(i for i, n in enumerate(cluster.nodes) if (n.host, n.port) == (where.host, where.port))
                want = _writes_within(watch_s + hold_s)
                owned = {"promo": [], "product": []}
                for i in range(100 * want):  # keys of every slot owner, until the victim has enough of each family
                    for family, keys in owned.items():
                        node = router.get_node_from_key(f"{family}:{i}")
                        if (node.host, node.port) == (where.host, where.port) and len(keys) < want:
                            keys.append(f"{family}:{i}")
                    if min(map(len, owned.values())) == want:
                        break
                others = [f"promo:x{i}" for i in range(200)
                          if router.get_node_from_key(f"promo:x{i}").host != where.host][:50]
                _fill(router, [*owned["promo"], *others])  # the products are absent: each SET is a refill
                router.close()
            with lab.inside("side"):
                old = cluster.nodes[victim].client(socket_timeout=0.5, socket_connect_timeout=0.5,
                                                   retry=Retry(NoBackoff(), 0))
                promo = owned["promo"][0]
                old.set(promo, b"v1", ex=_ttl_s(promo))  # replication is in order: once this is acknowledged by
                synced = old.wait(1, 5000)                 # the replica, so is the whole fill
            readers = {True: _ClusterReader(lab, cluster, owned["promo"][:50], budget_timeout_s),
                       False: _ClusterReader(lab, cluster, others, budget_timeout_s)}
            plan = _plan(owned["promo"], owned["product"])
            writer = _Writer(lab, "side", lambda: cluster.nodes[victim].client(
                socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)), plan)
            start = time.monotonic()
            for thread in (writer, *readers.values()):
                thread.start_at = start
            for host in [*(n for i, n in enumerate(nodes) if i != victim), "app"]:
                lab.partition(nodes[victim], host)
            for thread in (writer, *readers.values()):
                thread.start()
            observer = next(n for i, n in enumerate(cluster.nodes) if i != victim)
            moved_s = None
            with lab.inside("app"), observer.client(socket_timeout=1) as view:
                slot = int(view.execute_command("CLUSTER", "KEYSLOT", "promo:0"))
                while moved_s is None and time.monotonic() - start < watch_s:
                    if _owner(view, slot) != (where.host, where.port):
                        moved_s = time.monotonic() - start
                    time.sleep(0.02)
            if moved_s is not None:
                time.sleep(hold_s)  # readers and the writer go on for hold_s after the move (bounded load)
            for reader in readers.values():
                reader.stop.set()
            # the writer goes on until the cut-off primary refuses a write — with a long node timeout that can
            # come after the move — or until the watch ends
            while not any(not w["acked"] for w in writer.writes) and time.monotonic() - start < watch_s:
                time.sleep(0.05)
            for thread in (writer, *readers.values()):
                thread.stop.set()
                thread.join(10)
            if moved_s is None:
                raise TimeoutError(f"the cut-off primary's slots did not move within {watch_s:.0f} s")
            lab.heal()
            healed = time.monotonic()
            with lab.inside("side"):
                while _role(old) != ("slave", "up") and time.monotonic() - healed < REJOIN_WITHIN_S:
                    time.sleep(0.05)
                rejoined = _role(old) == ("slave", "up")
                old.close()
            with lab.inside("app"), cluster.client() as survivor:
                losses = _losses(writer.writes, plan, *_read_back(writer.writes, plan, survivor))
    frame = pd.concat([pd.DataFrame(r.log).assign(victim_key=v) for v, r in readers.items()], ignore_index=True)
    mine, rest = frame[frame.victim_key], frame[~frame.victim_key]
    answered = mine[mine.ok]
    return ({"node_timeout_ms": node_timeout_ms, "replicated_before": synced == 1, "slots_moved_s": moved_s,
             "victim_reads": len(mine),
             "victim_errors": int((~mine.ok).sum()), "victim_errors_seen": ", ".join(sorted(set(mine.error) - {""})),
             "victim_longest_read_ms": float(mine.latency_ms.max()),
             "victim_answered_again_s": float((answered.t_s + answered.latency_ms / 1000)[answered.t_s > 0].min()),
             "other_errors": int((~rest.ok).sum()), "other_longest_read_ms": float(rest.latency_ms.max()),
             **losses, "rejoined_as_replica": rejoined}, frame)


def all_at_once(sentinel_settings: list[tuple[int, int | None]], node_timeouts_ms: list[int], *,
                hold_s: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """`sentinel_partition` once per (down-after ms, min-replicas-max-lag s or None) and `cluster_partition`
    once per node timeout, all at once, each in a lab of its own: a failover is mostly waiting (detection, and
    Sentinel's 10-second INFO period before it turns the healed primary into a replica), so side by side they
    take the time of the longest. Returns the Sentinel runs, the cluster runs and the cluster readers' logs."""
    with quiet("split brains under Sentinel and Redis Cluster"), \
            ThreadPoolExecutor(len(sentinel_settings) + len(node_timeouts_ms)) as pool:
        sentinels = [pool.submit(sentinel_partition, down_after_ms=d, min_replicas_max_lag_s=lag, hold_s=hold_s,
                                 tag=f"s{i}") for i, (d, lag) in enumerate(sentinel_settings)]
        clusters = [pool.submit(cluster_partition, node_timeout_ms=ms, hold_s=hold_s, tag=f"c{i}")
                    for i, ms in enumerate(node_timeouts_ms)]
    runs = [c.result() for c in clusters]
    logs = pd.concat([log.assign(node_timeout_ms=run["node_timeout_ms"]) for run, log in runs], ignore_index=True)
    CLUSTER_LOG.check(logs)
    return SENTINEL.frame(s.result() for s in sentinels), CLUSTER.frame(run for run, _ in runs), logs
