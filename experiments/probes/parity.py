"""Redis OSS 7.0 and Valkey 8.0 side by side: the current choice's key experiments on both engines.

Valkey forked Redis 7.2.4 and keeps its protocol, so every experiment of the Redis chapter runs on it
unchanged; the question is whether any result moves. Timings are taken in interleaved rounds — one
round visits every engine and case in turn — so a stall of the machine lands on both engines alike.
The *noise* of a timing is the spread of its per-round medians within one engine (largest minus
smallest); a difference between engines counts only where it exceeds both engines' noise.

* `versions` — each engine's version and the defaults that matter here;
* `get_latency` — GET of every value size of ``data/value_sizes.csv``;
* `invalidation_latency` — event to key gone, through pub/sub and through a stream; `missed_events` —
  an event sent while the subscriber is away;
* `failover` — Sentinel promotion after a SIGKILL and the acknowledged ``DEL`` s the promotion loses
  (`experiments.probes.failover`), one Sentinel group per engine for each;
* `cluster` — hot products over the shards and one hot key's reads, on a 3-primary cluster;
* `engine_threads` — the field's benchmark tools against each engine with ``io-threads`` 1 and 2,
  and memcached with 1 and 2 worker threads, at one GET/SET mix.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
from tqdm import tqdm

from experiments.caches.adapters import RedisCache
from experiments.caches.keydesign import load as load_key_design
from experiments.caches.origin import document
from experiments.lab.loadgen import memaslap, redis_benchmark
from experiments.lab.quiet import calm_round, quiet
from experiments.lab.servers import MemcachedServer, RedisServer, server_identity
from experiments.lab.spawner import require_binary
from experiments.lab.topologies import Together
from experiments.measure import spread_between_rounds, time_calls_ms
from experiments.probes import failover as failover_probe
from experiments.probes import invalidation, scaleout
from experiments.probes.hitvalue import ASIN, sample_key
from experiments.results import Table
from experiments.seed import value_sizes

GET_SHARE = 0.9
"""The GET/SET mix of the throughput runs: memaslap's own default (90 % GET, 10 % SET)."""


ROUNDS_SUMMARY = ("p50_ms", "p99_ms", "noise_ms", "p99_spread_ms", "n")
"""`_rounds_summary`'s columns: the median over rounds of each round's p50 and p99, the spread of the p50s
(max − min) and of the p99s (`spread_between_rounds`), and the samples in all."""

VERSIONS = Table("parity.VERSIONS", ("engine", "binary", "version", "redis_version", "server_name", "io_threads",
                                     "maxmemory_policy", "tls_built_in"))
"""`versions`: Redis, Valkey and memcached, in that order."""

GET_LATENCY = Table("parity.GET_LATENCY", ("engine", "family", "variant", "size_bytes", *ROUNDS_SUMMARY))
"""`get_latency`: one row per engine and value size of the key design."""

INVALIDATION = Table("parity.INVALIDATION", ("engine", "path", *ROUNDS_SUMMARY))
"""`invalidation_latency`: one row per engine and path (``pub/sub``, ``stream + consumer group``)."""

MISSED = Table("parity.MISSED", ("engine", *invalidation.MISSED.columns))
"""`missed_events`: one `invalidation.missed_event` record per engine and transport."""

CLUSTER = Table("parity.CLUSTER", ("engine", "shard_counts", "hot_key_share", "replica_read_share"))
"""`cluster`: one row per engine (``shard_counts``: the top-100 products per shard, sorted)."""

FAILOVER = Table("parity.FAILOVER", (
    "engine", "down_after_ms", "promotion_s", "first_read_s", "keys_before", "keys_after", "deletes_acknowledged",
    "replicas_with_delete", "lost_deletes_found", "stale_for_s_with_replay"))
"""`failover`: one row per engine."""

THREADS = Table("parity.THREADS", ("server", "threads", "tool", "mix_rps", "spread_rps", "repeats"))
"""`engine_threads`: one row per server, I/O threads and tool."""


def versions() -> pd.DataFrame:
    """What each engine the book runs is: its binary, its version, the version it reports to clients,
    and the defaults that matter here (threads, eviction policy, TLS built in)."""
    rows = []
    for engine in ("redis", "valkey"):
        with RedisServer(name=f"{engine}-version", engine=engine) as node, node.client(decode_responses=True) as c:
            identity = server_identity(c)
            rows.append({"engine": engine, "binary": node.engine.server, "version": identity["version"],
                         "redis_version": identity["redis_version"], "server_name": identity["server_name"],
                         "io_threads": c.config_get("io-threads")["io-threads"],
                         "maxmemory_policy": c.config_get("maxmemory-policy")["maxmemory-policy"],
                         "tls_built_in": "tls-port" in c.config_get("tls-port")})
    with MemcachedServer(name="memcached-version") as node:
        client = node.client()
        try:
            version = client.version().decode()
        finally:
            client.close()
    rows.append({"engine": "memcached", "binary": "memcached", "version": version, "redis_version": "",
                 "server_name": "memcached", "io_threads": str(node.threads), "maxmemory_policy": "LRU per slab class",
                 "tls_built_in": "--enable-ssl" in subprocess.run([require_binary("memcached"), "-h"], capture_output=True,
                                                                   text=True).stdout})
    return VERSIONS.frame(rows)


def _rounds_summary(rounds: list[np.ndarray]) -> dict[str, float]:
    p50 = [float(np.percentile(r, 50)) for r in rounds]
    p99 = [float(np.percentile(r, 99)) for r in rounds]
    return {"p50_ms": float(np.median(p50)), "p99_ms": float(np.median(p99)), "noise_ms": max(p50) - min(p50),
            "p99_spread_ms": spread_between_rounds(p99), "n": int(sum(len(r) for r in rounds))}


def beyond_noise(frame: pd.DataFrame, by: list[str], *, metric: str = "p50_ms") -> pd.DataFrame:
    """One row per case: Valkey's ``metric`` minus Redis's, and whether it exceeds both engines' noise."""
    wide = frame.pivot_table(index=by, columns="engine", values=[metric, "noise_ms"], aggfunc="first")
    out = pd.DataFrame({"redis": wide[(metric, "redis")], "valkey": wide[(metric, "valkey")]})
    out["difference"] = out.valkey - out.redis
    out["noise"] = np.maximum(wide[("noise_ms", "redis")], wide[("noise_ms", "valkey")])
    out["beyond_noise"] = out.difference.abs() > out.noise
    return out.reset_index()


def get_latency(targets: dict, repetitions: int, *, rounds: int = 5, progress: bool = True) -> pd.DataFrame:
    """GET latency per engine and value size; ``targets`` maps engine name to a `RedisTarget`."""
    jobs = []
    for engine, target in targets.items():
        for size in value_sizes().itertuples():
            key = sample_key(size.family, f"{ASIN}-{size.variant}")
            payload = load_key_design().cacheable_payload(key, document(size.family, ASIN, size.size_bytes))
            target.client.set(target.key(key), json.dumps(payload).encode(), ex=3600)
            jobs.append((engine, size, target.key(key), target.client))
    samples: list[list[np.ndarray]] = [[] for _ in jobs]
    with quiet("GET latency on both engines"):
        for _ in tqdm(range(rounds), desc="GET latency rounds", disable=not progress):
            for i, (_engine, _size, key, client) in enumerate(jobs):
                samples[i].append(calm_round(lambda: time_calls_ms(lambda: client.get(key), max(1, repetitions // rounds),
                                                                    warmup=50)))
    return GET_LATENCY.frame({"engine": engine, "family": size.family, "variant": size.variant,
                              "size_bytes": size.size_bytes, **_rounds_summary(samples[i])}
                             for i, (engine, size, _key, _client) in enumerate(jobs))


def invalidation_latency(targets: dict, events: int, *, rounds: int = 9) -> pd.DataFrame:
    """Event to key gone per engine and path (pub/sub, stream + consumer group), in interleaved rounds.

    Nine rounds, the spread the interquartile range of their p99s: a round that another process preempts moves
    neither the median nor the spread. Under a busy core about 1 % of events wait a scheduler slice, so a round's
    p99 is either well under a ms or a few ms, whatever the round's size; the chapter holds it to
    `experiments.findings.EVENT_P99_BOUND_MS`, which that cannot decide."""
    paths = {"pub/sub": invalidation.PubSubInvalidator, "stream + consumer group": invalidation.StreamInvalidator}
    subscribers = {(engine, path): kind(RedisCache(target)).start()
                   for engine, target in targets.items() for path, kind in paths.items()}
    samples: dict[tuple, list[np.ndarray]] = {case: [] for case in subscribers}
    try:
        with quiet("invalidation on both engines"):
            for _ in tqdm(range(rounds), desc="invalidation rounds"):
                for case, subscriber in subscribers.items():
                    samples[case].append(invalidation.event_to_gone_ms(subscriber, max(1, events // rounds),
                                                                       progress=False))
    finally:
        for subscriber in subscribers.values():
            subscriber.stop()
    return INVALIDATION.frame({"engine": engine, "path": path, **_rounds_summary(samples[(engine, path)])}
                              for engine, path in subscribers)


def missed_events(targets: dict, *, downtime_s: float = 0.3) -> pd.DataFrame:
    """Per engine: an invalidation published while the subscriber is away, by pub/sub and by stream."""
    rows = []
    for engine, target in targets.items():
        for kind in (invalidation.PubSubInvalidator, invalidation.StreamInvalidator):
            subscriber = kind(RedisCache(target)).start()
            try:
                rows.append({"engine": engine, **invalidation.missed_event(subscriber, downtime_s=downtime_s, wait_s=0.5)})
            finally:
                subscriber.stop()
    return MISSED.frame(rows)


def cluster(clusters: dict, *, reads: int) -> pd.DataFrame:
    """Per engine: how the top-100 products spread over the shards (counts, sorted), and the share of one
    hot key's reads that reach the busiest node, without mitigation and reading from replicas too."""
    rows = []
    for engine, nodes in clusters.items():
        placement = scaleout.hot_asin_placement(nodes, [f"B{n:09d}" for n in range(100)])
        hot = scaleout.hot_key_load(nodes, reads=reads).set_index("setup")
        rows.append({"engine": engine, "shard_counts": sorted(placement.shard.value_counts().tolist()),
                     "hot_key_share": float(hot.iloc[0].busiest_node_share),
                     "replica_read_share": float(hot.iloc[1].busiest_node_share)})
    return CLUSTER.frame(rows)


def failover(groups: dict, *, keys: int) -> pd.DataFrame:
    """Per engine: promotion after SIGKILL, first read, keys kept, and the ``DEL`` s the promotion loses.

    ``groups`` maps engine name to two ready `SentinelSet` groups: one is failed over with ``keys``
    keys, the other runs `failover.lost_invalidation`."""
    rows = []
    for engine, (sweep_group, lost_group) in groups.items():
        with quiet(f"a Sentinel failover ({engine})"):
            run = failover_probe.run_failover(sweep_group, keys)
        lost = failover_probe.lost_invalidation(lost_group, ttl_s=900)
        rows.append({"engine": engine, "down_after_ms": run.down_after_ms, "promotion_s": run.promotion_s,
                     "first_read_s": run.first_read_s, "keys_before": run.keys_before, "keys_after": run.keys_after,
                     "deletes_acknowledged": lost["deletes_acknowledged"],
                     "replicas_with_delete": lost["replicas_with_delete"],
                     "lost_deletes_found": lost["lost_deletes_found"],
                     "stale_for_s_with_replay": lost["stale_for_s_with_replay"]})
    return FAILOVER.frame(rows)


def mixed_rps(get_rps: float, set_rps: float, *, get_share: float = GET_SHARE) -> float:
    """Operations per second of a GET/SET mix run as its two passes: the mix's mean time per operation."""
    return 1 / (get_share / get_rps + (1 - get_share) / set_rps)


def engine_threads(*, requests: int, seconds: int, value_bytes: int = 2048, repeats: int = 3) -> pd.DataFrame:
    """Throughput with the field's tools, each run ``repeats`` times: redis-benchmark *and* valkey-benchmark
    (one client thread, 50 connections, 2,000 keys) against each engine at ``io-threads`` 1 and 2 — so an
    engine's difference is seen through the same tool — and memaslap (one thread, 50 connections, its 90/10
    mix) against memcached ``-t 1`` and ``-t 2``. The four Redis-protocol servers run at once and each repeat
    visits all of them in turn, so a busy spell of the machine falls on every engine alike. One row per
    server, threads and tool: the median of the
    repeats and their spread (max − min), the noise a difference must exceed. Not a quiet section: the chapter
    reports these throughputs (they describe two shared cores) and asserts none of them, so the other chapter's
    load may run beside them and widen their spread."""
    runs = []
    setups = [(engine, io_threads) for engine in ("redis", "valkey") for io_threads in (1, 2)]
    servers = {(engine, n): RedisServer(name=f"{engine}-threads-{n}", engine=engine, extra_args=(
        ("--io-threads", str(n)) + (("--io-threads-do-reads", "yes") if n > 1 else ()))) for engine, n in setups}
    with Together(list(servers.values())):
        for _ in range(repeats):  # rounds that visit every server and tool in turn: a busy spell falls on all
            for (engine, io_threads), node in servers.items():
                for tool in ("redis", "valkey"):
                    r = redis_benchmark(node.port, node.password, requests=requests, value_bytes=value_bytes,
                                        tool=tool, keys=2000)
                    runs.append({"server": engine, "threads": io_threads, "tool": f"{tool}-benchmark",
                                 "mix_rps": mixed_rps(r["rps"], r["set_rps"])})
    for threads in (1, 2):
        with MemcachedServer(name=f"memcached-t{threads}", threads=threads, memory_mb=256) as node:
            for _ in range(repeats):
                r = memaslap(node.address, seconds=seconds, value_bytes=value_bytes, threads=1)
                runs.append({"server": "memcached", "threads": threads, "tool": "memcaslap", "mix_rps": r["rps"]})
    grouped = pd.DataFrame(runs).groupby(["server", "threads", "tool"], sort=False).mix_rps
    frame = pd.DataFrame({"mix_rps": grouped.median(), "spread_rps": grouped.max() - grouped.min(),
                          "repeats": grouped.size()}).reset_index()
    THREADS.check(frame)
    return frame
