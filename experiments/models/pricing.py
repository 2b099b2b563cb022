"""What ElastiCache costs, from the dated price table in ``data/elasticache_prices.csv``.

Two ways to buy the same cache:

* **node-based** — nodes billed by the hour whether busy or idle. A cluster of ``shards`` shards with
  ``replicas`` replicas each has ``shards × (1 + replicas)`` nodes; each node holds its shard's data in
  the memory the engine may use: for Redis OSS and Valkey the node's memory less ElastiCache's
  ``reserved-memory-percent`` (25 % by default), for Memcached less its connection overhead (100 MB);
* **Serverless** — billed by ECPUs (one per KB a command transfers, at least one per command) and by
  GB-hours of data stored, with a minimum per cache (100 MB for Valkey, 1 GB for Redis OSS and
  Memcached).

Node-based traffic between a task and a node in another Availability Zone is charged as regional data
transfer ($0.01/GB, counted once per byte here, on the orchestrator's side). Months are 730 hours, as
AWS's pricing pages count them. A price the table does not record for an engine is the Redis OSS
price times the engine's recorded ratio (Valkey 0.8, AWS's "up to 20 % lower"; Memcached 1.0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from experiments.errors import ParameterError
from experiments.paths import DATA
from experiments.seed import service_default

HOURS_PER_MONTH = 730
"""Hours in a month as AWS's pricing pages count them."""

SERVERLESS_FLOOR_ECPU_PER_S = 30_000
"""What an empty ElastiCache Serverless cache supports before it scales (90,000 with read from replica);
a minimum set ahead of a known peak ("pre-scaling") takes effect within an hour (Amazon ElastiCache User
Guide, "Scaling ElastiCache", pre-scaling)."""

ENGINES = ("redis", "valkey", "memcached")


@lru_cache(maxsize=1)
def prices() -> pd.DataFrame:
    """The price table, one row per price, each with its source and the date it was read."""
    return pd.read_csv(DATA / "elasticache_prices.csv")


def _one(item: str, engine: str, deployment: str) -> float:
    rows = prices()
    match = rows[(rows.item == item) & (rows.engine.isin([engine, "all"])) & (rows.deployment == deployment)]
    if match.empty:
        raise ParameterError(f"no {deployment} {item} price for engine {engine!r} in data/elasticache_prices.csv")
    return float(match.usd.iloc[0])


def _engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ParameterError(f"engine={engine!r}: the price table knows {', '.join(ENGINES)}")
    return engine


def node_types(engine: str) -> pd.DataFrame:
    """Every node type of the table for ``engine``: memory, usable memory (GiB), price per hour and
    whether that price is recorded or derived from Redis OSS's through the engine's ratio."""
    _engine(engine)
    rows = prices()[prices().item == "node"]
    redis = rows[rows.engine == "redis"].set_index("node_type")
    own = rows[rows.engine == engine].set_index("node_type")
    ratio = 1.0 if engine == "redis" else _one("ratio", engine, "node-based")
    table = pd.DataFrame({"memory_gib": redis.memory_gib, "usd_per_hour": redis.usd * ratio, "price": "derived"})
    table.loc[own.index, "usd_per_hour"] = own.usd
    table.loc[own.index, "price"] = "recorded"
    if engine == "memcached":
        table["usable_gib"] = table.memory_gib - service_default("memcached_connections_overhead_mb") / 1024
    else:
        table["usable_gib"] = table.memory_gib * (1 - service_default("elasticache_reserved_memory_pct") / 100)
    table["burstable"] = table.index.str.startswith("cache.t")
    return table.reset_index().sort_values("usd_per_hour", ignore_index=True)


LAUNCH_NODE_TYPE = "cache.r7g.large"
"""Ours: the node type read capacity is added in for a launch's bandwidth (its baseline: `node_baseline_gbps`)."""


@lru_cache(maxsize=1)
def node_limits() -> pd.DataFrame:
    """``data/node_limits.csv``: what a node type carries besides its memory, each figure with its source."""
    return pd.read_csv(DATA / "node_limits.csv").set_index("node_type")


def node_baseline_gbps(node_type: str) -> float:
    """Sustained (baseline) network bandwidth of one node of ``node_type``, Gbit/s: what it carries for hours,
    where its burst allowance does not last."""
    limits = node_limits()
    if node_type not in limits.index:
        raise ParameterError(f"no network baseline recorded for {node_type}: add it to data/node_limits.csv "
                             f"(recorded: {', '.join(limits.index)})")
    return float(limits.loc[node_type, "baseline_gbps"])


@dataclass(frozen=True)
class NodeCluster:
    """A node-based cluster of one node type: its shards, replicas per shard, and price and usable memory per
    node."""

    engine: str
    node_type: str
    shards: int
    replicas: int
    usd_per_hour: float
    usable_gib: float

    @property
    def nodes(self) -> int:
        """Every node billed: each shard's primary and its replicas."""
        return self.shards * (1 + self.replicas)

    @property
    def usd_per_month(self) -> float:
        """On-demand price of every node for one month (`HOURS_PER_MONTH`)."""
        return self.nodes * self.usd_per_hour * HOURS_PER_MONTH


def cheapest_cluster(engine: str, data_gb: float, *, replicas: int = 1, burstable: bool = False,
                     max_shards: int = 8) -> NodeCluster:
    """The cheapest cluster of one node type, 1 to ``max_shards`` shards, that holds ``data_gb`` (10⁹ bytes);
    burstable (T) nodes only if ``burstable`` — their CPU and network run on credits a launch spends."""
    if data_gb <= 0 or replicas < 0:
        raise ParameterError(f"data_gb={data_gb} must be positive and replicas={replicas} not negative")
    needed_gib = data_gb * 1e9 / 2**30
    best = None
    for row in node_types(engine).itertuples():
        if row.burstable and not burstable:
            continue
        for shards in range(1, max_shards + 1):
            if row.usable_gib * shards >= needed_gib:
                option = NodeCluster(engine, row.node_type, shards, replicas, row.usd_per_hour, row.usable_gib)
                if best is None or option.usd_per_month < best.usd_per_month:
                    best = option
                break
    if best is None:
        raise ParameterError(f"{data_gb:.1f} GB does not fit {max_shards} shards of any node type in the table")
    return best


DAX_NODES = 3
"""DAX nodes in a production cluster: AWS recommends at least three, one per Availability Zone; every node
holds the whole item cache (a primary and read replicas)."""


def dax_cluster(data_gb: float, *, burstable: bool = False) -> NodeCluster:
    """The cheapest DAX cluster of `DAX_NODES` nodes of one type whose memory holds ``data_gb`` (10⁹ bytes):
    the price table's DAX rows (burstable T nodes only if ``burstable``)."""
    if data_gb <= 0:
        raise ParameterError(f"data_gb={data_gb} must be positive")
    rows = prices()[(prices().item == "node") & (prices().engine == "dax")].sort_values("usd")
    for row in rows.itertuples():
        if (burstable or not row.node_type.startswith("dax.t")) and row.memory_gib * 2**30 >= data_gb * 1e9:
            return NodeCluster("dax", row.node_type, 1, DAX_NODES - 1, float(row.usd), float(row.memory_gib))
    raise ParameterError(f"{data_gb:.1f} GB does not fit one node of any DAX node type in the price table")


def ecpus_per_command(kb_transferred: float) -> float:
    """ECPUs one GET or SET consumes: one per KB transferred, at least one."""
    return max(1.0, kb_transferred * _one("ecpu_per_kb", "all", "serverless"))


def serverless_per_month(engine: str, *, ecpus_per_s: float, stored_gb: float) -> dict[str, float]:
    """Serverless cost for a month at a steady ``ecpus_per_s`` with ``stored_gb`` of data held."""
    _engine(engine)
    ecpu = ecpus_per_s * 3600 * HOURS_PER_MONTH / 1e6 * _one("ecpu", engine, "serverless")
    billed_gb = max(stored_gb, _one("min_storage", engine, "serverless"))
    storage = billed_gb * HOURS_PER_MONTH * _one("storage", engine, "serverless")
    return {"ecpu_usd": ecpu, "storage_usd": storage, "billed_gb": billed_gb, "usd_per_month": ecpu + storage}


def cross_az_per_month(bytes_per_s: float, *, cross_share: float) -> float:
    """Regional data transfer for a month of ``bytes_per_s`` of which ``cross_share`` crosses AZs."""
    if not 0 <= cross_share <= 1:
        raise ParameterError(f"cross_share={cross_share} must lie in [0, 1]")
    return bytes_per_s * cross_share * 3600 * HOURS_PER_MONTH / 1e9 * _one("cross_az", "all", "node-based")


def serverless_break_even_gb(engine: str, *, replicas: int = 1, step_gb: float = 0.05) -> float:
    """Data size below which Serverless storage costs less than the cheapest node-based cluster that holds
    it (ECPUs aside): the first size, in ``step_gb`` steps, where the nodes become cheaper."""
    size = step_gb
    while size < 1000:
        nodes = cheapest_cluster(engine, size, replicas=replicas).usd_per_month
        if nodes < serverless_per_month(engine, ecpus_per_s=0.0, stored_gb=size)["usd_per_month"]:
            return size
        size += step_gb
    raise ParameterError(f"no break-even below 1 TB for {engine}")  # pragma: no cover - prices would be absurd
