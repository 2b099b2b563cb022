"""Cluster mode and threads: what Redis's horizontal scaling buys, measured with the field's own tool.

* `throughput` runs ``redis-benchmark`` (`experiments.lab.loadgen`) against one node, the cluster, and
  one node with I/O threads.
* `hot_asin_placement` maps the top-100 product keys onto the cluster's hash slots and shards.
* `hot_key_load` hammers one product key — a flash sale on one title — and counts the commands each
  node served, without mitigation, with reads spread over replicas, and behind a near cache.

On a 2-core machine the benchmark client and every server share two cores, so throughput cannot
grow with shards or I/O threads here; the chapter says so next to each number.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from redis.cluster import LoadBalancingStrategy
from redis.crc import key_slot

from experiments.caches.adapters import LocalCache
from experiments.caches.keydesign import load as load_key_design
from experiments.errors import ParameterError
from experiments.lab.loadgen import redis_benchmark
from experiments.lab.servers import RedisServer
from experiments.results import Table
from experiments.seed import value_sizes


def _shard_of_slot(cluster) -> dict[int, str]:
    """Slot → the address of the primary that owns it (from ``CLUSTER SLOTS``)."""
    owner = {}
    with cluster.nodes[0].client(decode_responses=True) as c:
        for start, end, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
            for slot in range(int(start), int(end) + 1):
                owner[slot] = f"{primary[0]}:{primary[1]}"
    return owner


PRODUCT_TTL_S = int(load_key_design()["product"].ttl_s)
"""The product family's TTL (the key design's)."""

ITEM_BYTES = int(value_sizes().set_index(["family", "variant"]).size_bytes[("product", "item")])
"""A product item's size: the key design's 2 KB item (``data/value_sizes.csv``)."""


PLACEMENT = Table("scaleout.PLACEMENT", ("key", "slot", "shard"))
"""`hot_asin_placement`: one row per hot product key."""

HOT_KEY = Table("scaleout.HOT_KEY", (
    "setup", "reads", "busiest_node_role", "busiest_node_commands", "busiest_node_share", "reads_reaching_busiest_node",
    "server_commands", "seconds"))
"""`hot_key_load`: one row per setup: no mitigation, reads over primary and replica, a near cache, in that order."""

NEAR_AT_RATE = Table("scaleout.NEAR_AT_RATE", ("reads_per_task_s", "near_ttl_s", "reads", "time_scale", "saved_share",
                                                "model_saved_share"))
"""`near_cache_at_rate`'s record."""

THROUGHPUT = Table("scaleout.THROUGHPUT", ("setup", "rps", "p50_ms", "p99_ms", "set_rps"))
"""`throughput`: one node, the cluster, one node with two I/O threads, in that order."""


def hot_asin_placement(cluster, hot_asins: list[str]) -> pd.DataFrame:
    """Which primary holds each hot product key: counts per shard."""
    owner = _shard_of_slot(cluster)
    shards = sorted(set(owner.values()))
    rows = [{"key": f"product:{a}", "slot": key_slot(f"product:{a}".encode()),
             "shard": f"shard {shards.index(owner[key_slot(f'product:{a}'.encode())]) + 1}"} for a in hot_asins]
    return PLACEMENT.frame(rows)


def _commands_per_node(cluster) -> dict[str, int]:
    counts = {}
    for node in cluster.nodes:
        with node.client(decode_responses=True) as c:
            counts[f"127.0.0.1:{node.port}"] = int(c.info("stats")["total_commands_processed"])
    return counts


def _roles(cluster) -> dict[str, str]:
    roles = {}
    for node in cluster.nodes:
        with node.client(decode_responses=True) as c:
            role = c.info("replication")["role"]
            roles[f"127.0.0.1:{node.port}"] = "primary" if role == "master" else "replica"
    return roles


def hot_key_load(cluster, *, reads: int, near_cache_ttl_s: int = 1) -> pd.DataFrame:
    """One product read ``reads`` times: the busiest node's share of the commands, per mitigation."""
    key = "product:B08X1YRSTR"
    writer = cluster.client()
    writer.set(key, b"x" * ITEM_BYTES, ex=PRODUCT_TTL_S)
    roles = _roles(cluster)
    setups = {
        "no mitigation": (cluster.client(), None),
        "reads spread over primary and replica": (
            cluster.client(load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN), None),
        f"near cache in the task ({near_cache_ttl_s} s TTL)": (cluster.client(), LocalCache()),
    }
    rows = []
    for name, (client, near) in setups.items():
        client.get(key)  # warm the slot map and connections before counting
        before = _commands_per_node(cluster)
        start = time.perf_counter()
        for _ in range(reads):
            if near is not None and near.get(key) is not None:
                continue
            value = client.get(key)
            if near is not None:
                near.set(key, value, near_cache_ttl_s)
        elapsed = time.perf_counter() - start
        after = _commands_per_node(cluster)
        served = {node: after[node] - before[node] - 1 for node in after}  # minus our own INFO
        busiest = max(served, key=served.get)
        rows.append({"setup": name, "reads": reads, "busiest_node_role": roles[busiest],
                     "busiest_node_commands": served[busiest],
                     "busiest_node_share": served[busiest] / max(1, sum(served.values())),
                     "reads_reaching_busiest_node": min(1.0, served[busiest] / reads),
                     "server_commands": sum(served.values()), "seconds": elapsed})
        client.close()
    return HOT_KEY.frame(rows)


def near_cache_saved_share(reads_per_s: float, ttl_s: float) -> float:
    """The share of a task's reads a near cache with ``ttl_s`` answers when the task reads one key as a
    Poisson stream at ``reads_per_s``: each fetch starts a TTL whose reads all hit, so a renewal cycle is
    one miss and ``r·T`` hits on average, and the share saved is ``rT / (1 + rT)``."""
    rt = reads_per_s * ttl_s
    return rt / (1 + rt)


def near_cache_at_rate(cluster, *, reads_per_s: float, ttl_s: float, reads: int, time_scale: float = 0.05,
                       seed: int = 0) -> dict[str, float]:
    """One task's near cache on the hot key at the per-task read rate, on real Redis: ``reads`` Poisson reads.

    The run is time-scaled to stay short: the TTL and the gaps between reads are both multiplied by
    ``time_scale``, which keeps ``r·T`` — all the saved share depends on — and the Poisson shape. Returns
    the measured share of reads the near cache answered and `near_cache_saved_share`'s."""
    if reads_per_s <= 0 or ttl_s <= 0 or not 0 < reads <= 1000:
        raise ParameterError("reads_per_s and ttl_s must be positive and reads between 1 and 1,000")
    key = "product:B08X1YRSTR"
    client, near = cluster.client(), LocalCache()
    client.set(key, b"x" * ITEM_BYTES, ex=PRODUCT_TTL_S)
    gaps = np.random.default_rng(seed).exponential(time_scale / reads_per_s, reads)
    served = 0
    for gap in gaps:
        time.sleep(gap)  # the task's own pace of reads (no network is simulated: every miss goes to Redis)
        if near.get(key) is not None:
            served += 1
            continue
        near.set(key, client.get(key), ttl_s * time_scale)
    client.close()
    return NEAR_AT_RATE.record({"reads_per_task_s": reads_per_s, "near_ttl_s": ttl_s, "reads": reads,
                                "time_scale": time_scale, "saved_share": served / reads,
                                "model_saved_share": near_cache_saved_share(reads_per_s, ttl_s)})


def throughput(cluster, *, requests: int) -> pd.DataFrame:
    """GET throughput of one node, of the cluster, and of one node with ``io-threads 2``."""
    rows = []
    with RedisServer(name="redis-bench") as single:
        rows.append({"setup": "1 node", **redis_benchmark(single.port, single.password, requests=requests)})
    rows.append({"setup": f"cluster, {cluster.n_primaries} primaries",
                 **redis_benchmark(cluster.nodes[0].port, cluster.password, requests=requests, cluster=True)})
    with RedisServer(name="redis-io-threads", extra_args=("--io-threads", "2", "--io-threads-do-reads", "yes")) as threaded:
        rows.append({"setup": "1 node, io-threads 2",
                     **redis_benchmark(threaded.port, threaded.password, requests=requests, threads=2)})
    return THROUGHPUT.frame(rows)
