"""A node-based cluster sized by every limit a node has, and what its traffic costs to carry across zones.

A node holds its shard's share of the resident set in its usable memory (after reserved memory), carries
its share of the bytes within its sustained (baseline) network bandwidth — the burst allowance does not
last through a peak —, serves its share of the commands at a conservative rate from the book's own
benchmarks, and accepts every task's connections. Reads spread over a shard's primary and replicas where
the family's staleness limit allows a replica's lag (`staleness.REPLICA_LAG_S`), else they go to the primary; fills
go to the primary and on to each replica. Each limit is held at `NODE_MAX_UTILIZATION` of the node's
figure. For every node type and replica count, the shards needed by each limit follow in closed form
(a node's load falls as 1/shards); the largest sets the shard count and is the binding limit.

One key lives on one shard whatever the cluster's size: the node that holds it carries the average shard's
share of the other reads plus that key's (spread over the shard's nodes if its replicas may serve it), and
that busiest node is the one held to the limits and reported. Where the key alone would fill it, the key is
kept as copies on different shards, each read at random (the network chapter measured the hot key and its
copies) — a component to build.

Transfer: tasks spread evenly over the workload's zones and so do a cluster's nodes, so a read or a fill
crosses a zone (Z − 1)/Z of the time and is charged at AWS's regional rate (`pricing.cross_az_per_month`).
The zone-local layout keeps a replica in each zone and reads in the zone (replicas ≥ Z − 1 and replica
reads allowed): only fills and primary-only reads cross. Both are priced; the cheaper total is taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from experiments.errors import ParameterError
from experiments.models import pricing
from experiments.params import PLAN_CEILING
from experiments.seed import service_default

NODE_MAX_UTILIZATION = PLAN_CEILING
"""The share of each node limit a plan may use at peak (ours, the same reasoning as the origin's default in
`experiments.decide.workload`): memory past it evicts live keys, bandwidth past it queues, and a plan at
100 % of a capacity has nothing left for a failed node's share."""

MAX_REPLICAS = 5
"""Replicas per shard ElastiCache allows (Redis OSS and Valkey, cluster mode enabled)."""

MAX_NODES = 500
"""Nodes per cluster ElastiCache allows (Redis OSS 5.0.6+ and Valkey, cluster mode enabled; a quota
raised on request): a plan that needs more is not a plan."""

LIMITS = ("memory", "network", "ops", "connections", "writes", "node loss")


@dataclass(frozen=True)
class Demand:
    """What a shared cluster must carry at peak: the resident set, reads that must go to a primary and reads
    a replica may serve (commands and bytes), fills, the hottest key's reads, and connections per node."""

    resident_gb: float
    primary_reads_per_s: float
    primary_read_bytes_per_s: float
    replica_reads_per_s: float
    replica_read_bytes_per_s: float
    fills_per_s: float
    fill_bytes_per_s: float
    hot_key_reads_per_s: float = 0.0
    hot_key_bytes_per_s: float = 0.0
    hot_key_on_replicas: bool = False
    connections_per_node: int = 0

    @property
    def replica_reads(self) -> bool:
        """Whether any read may go to a replica."""
        return self.replica_reads_per_s > 0


@dataclass(frozen=True)
class Sizing:
    """The cheapest cluster that holds a `Demand`: node type, shards, replicas, the layout its reads use, the
    utilization of each limit at peak (`LIMITS`), the binding one, hot-key copies, and the monthly prices."""

    engine: str
    node_type: str
    shards: int
    replicas: int
    layout: str
    utilization: dict[str, float]
    binding: str
    hot_key_copies: int
    nodes_usd_per_month: float
    transfer_usd_per_month: float
    other_layout_usd_per_month: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> int:
        """Every node billed."""
        return self.shards * (1 + self.replicas)

    @property
    def usd_per_month(self) -> float:
        """Nodes and zone-crossing transfer for a month."""
        return self.nodes_usd_per_month + self.transfer_usd_per_month

    def as_dict(self) -> dict:
        """The JSON's ``cluster`` object."""
        return {"node_type": self.node_type, "shards": self.shards, "replicas": self.replicas, "nodes": self.nodes,
                "layout": self.layout, "binding": self.binding, "utilization": self.utilization,
                "hot_key_copies": self.hot_key_copies, "nodes_usd_per_month": self.nodes_usd_per_month}


def node_table(engine: str) -> pd.DataFrame:
    """Per node type of ``engine``: usable memory (GiB), price, and the limits of ``data/node_limits.csv``."""
    types = pricing.node_types(engine).set_index("node_type")
    limits = pricing.node_limits()
    missing = sorted(set(types.index) - set(limits.index))
    if missing:
        raise ParameterError(f"no node limits recorded for {', '.join(missing)}: add them to data/node_limits.csv")
    return types.join(limits[["vcpus", "baseline_gbps", "max_connections"]]).reset_index()


def _per_node_loads(d: Demand, replicas: int) -> tuple[float, float]:
    """Bytes and commands per second on a shard's busiest node (its primary), times the shard count."""
    spread = 1 + replicas if d.replica_reads else 1
    bytes_ = d.primary_read_bytes_per_s + d.replica_read_bytes_per_s / spread + d.fill_bytes_per_s * (1 + replicas)
    ops = d.primary_reads_per_s + d.replica_reads_per_s / spread + d.fills_per_s
    return bytes_, ops


def _hot_shard(total: float, hot: float, cap: float, copies: int) -> float:
    """Shards needed so that the busiest node of the hottest key's shard stays within ``cap``: it carries the
    average shard's share of the rest, ``(total − hot) / shards``, and one copy's share of the key, ``hot /
    copies`` (inf if one copy's share alone fills the node)."""
    room = cap - hot / copies
    return math.inf if room <= 0 else max(total - hot, 0.0) / room


MAX_COPIES = 64
"""The most copies of one key the plan considers."""


def _shards_and_copies(d: Demand, replicas: int, net: float, ops: float, fixed: int) -> tuple[int, int]:
    """The fewest shards (at least ``fixed``, what memory and the other limits need) that keep the hottest
    key's shard within the network and operation limits, with the copies of that key that allow it."""
    bytes_, commands = _per_node_loads(d, replicas)
    spread = 1 + replicas if d.hot_key_on_replicas else 1
    hot_bytes, hot_ops = d.hot_key_bytes_per_s / spread, d.hot_key_reads_per_s / spread
    best = (math.inf, 1)
    for copies in range(1, MAX_COPIES + 1):
        need = max(_hot_shard(bytes_, hot_bytes, net, copies), _hot_shard(commands, hot_ops, ops, copies))
        if math.isfinite(need):
            shards = max(fixed, copies, math.ceil(need))
            best = min(best, (shards, copies))
            if copies >= best[0]:
                break
    return best if math.isfinite(best[0]) else (0, 0)


def transfer(d: Demand, *, zones: int, layout: str) -> float:
    """Zone-crossing transfer for a month at the peak's rates (an upper bound for a month): ``spread`` — every
    read and fill crosses (Z − 1)/Z of the time; ``zone-local`` — replica reads stay in their zone."""
    cross = (zones - 1) / zones
    bytes_ = d.primary_read_bytes_per_s + d.fill_bytes_per_s
    if layout == "spread":
        bytes_ += d.replica_read_bytes_per_s
    elif layout != "zone-local":
        raise ParameterError(f"layout={layout!r} must be 'spread' or 'zone-local'")
    return pricing.cross_az_per_month(bytes_, cross_share=cross)


def size(engine: str, d: Demand, *, zones: int, min_replicas: int = 1, normal_share: float = 1.0,
         node_types: tuple[str, ...] | None = None, write_cap_bytes_per_s: float | None = None,
         min_shards: int = 1) -> Sizing:
    """The cheapest cluster of one node type that keeps every limit under `NODE_MAX_UTILIZATION` at peak.

    ``min_replicas``: 1 for Multi-AZ (0 for memcached, which has none); ``normal_share``: the month's mean
    traffic over the peak's, for the transfer bill; ``node_types``: the types allowed (default: every
    non-burstable type of the table — T nodes run on CPU and network credits a peak spends);
    ``write_cap_bytes_per_s``: the writes one primary may take (durability's limit), a fifth limit (``writes``);
    ``min_shards``: the fewest shards a node loss allows (memcached: losing one must not overload the origin;
    the binding limit is then ``node loss``).
    """
    u = NODE_MAX_UTILIZATION
    max_replicas = 0 if engine == "memcached" else MAX_REPLICAS
    candidates = []
    for row in node_table(engine).itertuples():
        if (node_types is None and row.node_type.startswith("cache.t")) or (node_types and row.node_type not in node_types):
            continue
        net = row.baseline_gbps * 1e9 / 8 * u
        ops = service_default("node_ops_per_s") * u
        if d.connections_per_node > row.max_connections * u:
            continue
        for replicas in range(min_replicas, max_replicas + 1):
            bytes_, commands = _per_node_loads(d, replicas)
            need = {"memory": d.resident_gb * 1e9 / 2**30 / (row.usable_gib * u), "network": bytes_ / net,
                    "ops": commands / ops,
                    "writes": d.fill_bytes_per_s / (write_cap_bytes_per_s * u) if write_cap_bytes_per_s else 0.0}
            fixed = max(min_shards, *(math.ceil(v) for v in need.values()))
            shards, copies = _shards_and_copies(d, replicas, net, ops, fixed)
            if not shards or shards * (1 + replicas) > MAX_NODES:
                continue
            layouts = ["spread"] + (["zone-local"] if d.replica_reads and replicas >= zones - 1 and zones > 1 else [])
            priced = {layout: transfer(d, zones=zones, layout=layout) * normal_share for layout in layouts}
            layout = min(priced, key=priced.get)
            nodes_usd = shards * (1 + replicas) * row.usd_per_hour * pricing.HOURS_PER_MONTH
            spread = 1 + replicas if d.hot_key_on_replicas else 1
            hot_node = {  # the busiest node: the hottest key's shard
                "network": ((bytes_ - d.hot_key_bytes_per_s / spread) / shards + d.hot_key_bytes_per_s / spread / copies)
                / (net / u),
                "ops": ((commands - d.hot_key_reads_per_s / spread) / shards + d.hot_key_reads_per_s / spread / copies)
                / (ops / u)}
            utilization = {"memory": need["memory"] * u / shards, **hot_node,
                           "connections": d.connections_per_node / row.max_connections}
            if write_cap_bytes_per_s:
                utilization["writes"] = need["writes"] * u / shards
            binding = max((k for k in utilization if k != "connections"), key=utilization.get)
            if min_shards > max(math.ceil(v) for v in need.values()) and shards == min_shards:
                binding = "node loss"
            other = [v for k, v in priced.items() if k != layout]
            candidates.append(Sizing(engine, row.node_type, shards, replicas, layout, utilization, binding, copies,
                                     nodes_usd, priced[layout], other[0] if other else None))
    if not candidates:
        raise ParameterError(f"no {engine} cluster of up to {MAX_NODES} nodes carries this peak within "
                             f"{100 * u:.0f} % of every node limit (or a node cannot take "
                             f"{d.connections_per_node:,} connections)")
    return min(candidates, key=lambda s: (round(s.usd_per_month, 2), s.nodes))
