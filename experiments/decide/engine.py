"""The options judged for a reader's workload, family by family, with the book's own models.

Each option caches the families it can — cacheable, within the family's staleness limit in the worst failure
the book measured after the mitigations the option needs (`experiments.decide.staleness`), and for DAX and
DynamoDB caching only data in DynamoDB — and reads the others live from the origin. Per cached family the hit
rate comes from the in-process chapter's model (LRU with a TTL over a Zipf popularity,
`experiments.models.taskcache`), or from the book's exact replay of the family's trace
(`experiments.models.lrusim`; per-task caches route each request to a random task), or, for DAX, from the
DAX chapter's model. The origin load at peak is every live read plus every miss over the origin's capacity;
an option that leaves it above the workload's utilization limit is rejected, as is one that caches nothing.

A shared cache is sized for what it holds at peak (`experiments.decide.resident`), by every limit a node has,
with zone-crossing transfer priced (`experiments.decide.sizing`); Serverless is billed on the same resident
set. Each option's monthly total adds the team's work — components to build, written off over the horizon,
and a service to run — at the workload's rates, and viable options rank by that total
(`experiments.models.decision`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from experiments.decide import resident, sizing, staleness
from experiments.decide.workload import Family, Workload
from experiments.errors import ParameterError
from experiments.models import daxmodel, decision, lrusim, peer, pricing
from experiments.models.cachemodel import mixture, zipf_groups
from experiments.seed import figure

OPTIONS = ("redis", "valkey", "valkey-durable", "valkey-serverless", "valkey-dynamodb", "memcached", "dax",
           "in-process", "near-cache", "read-through", "no-cache")
"""Option ids, as the JSON and the table name them: the note's six; Valkey node-based, with synchronous
durability (Valkey 9+), Serverless, and Serverless DynamoDB caching; and the book's near cache (an in-process
cache over Valkey that Valkey invalidates)."""

ENGINE = {"redis": "redis", "read-through": "redis", "valkey": "valkey", "valkey-durable": "valkey",
          "near-cache": "valkey", "memcached": "memcached"}
"""The node-based options and the engine their cluster runs: the note's Redis under its read-through proxy,
Valkey (the cheaper engine) under the near cache."""

SERVERLESS = ("valkey-serverless", "valkey-dynamodb")
DYNAMODB_ONLY = ("dax", "valkey-dynamodb")
"""Options that cache DynamoDB table data only."""

DURABLE_WRITE_MIB_PER_S = 100
"""Writes a primary with durability takes (ElastiCache User Guide, durability for Valkey 9.0+: up to 100 MiBps
of writes per primary); fills above it need more shards."""

ITEM_OVERHEAD = 1.15
"""Memory per cached item over its own bytes where nothing was measured: the 6–12 % the Valkey chapter
measured for 2–100 KB values on Redis, Valkey and memcached, rounded up (the summary passes the measurement
itself, a reader's endpoint its own)."""

CACHE_ASIDE = "cache-aside code in the orchestrator (read, fill on a miss, the key design)"
"""What every option but DAX, DynamoDB caching and no cache asks of the application: those two are
API-compatible with DynamoDB, so their client replaces DynamoDB's and fills itself."""

EXTRA_COMPONENTS = {"read-through": "a read-through proxy in front of the cache",
                    "near-cache": "a tracking near cache per task"}


@lru_cache(maxsize=8192)
def _zipf_hit(f: Family, tasks: int, entries: float, multiple: float) -> float:
    """The in-process chapter's model (`experiments.models.taskcache`): ``tasks`` caches of ``entries`` each, each
    seeing 1/tasks of the family's Zipf reads, LRU with the TTL and eager expiry — on the catalog as it is."""
    mass, count = zipf_groups(f.keys, f.zipf_alpha)
    reads = f.reads_per_s * multiple
    out = mixture(reads / tasks * mass / count, count, reads * mass, capacity=max(entries, 1.0), ttl=f.ttl_s,
                  expiry="eager")
    return out["hit_rate"]


@lru_cache(maxsize=1024)
def _trace_hit(f: Family, tasks: int, entries: float, eviction: str, seed: int = 1) -> float:
    """The trace replayed (its own times: a traffic multiple does not apply), each request routed to a random
    task: LRU with the family's TTL by the book's exact replay, another ``eviction`` policy by libCacheSim's,
    which expires nothing (the traffic chapter: where entries leave by TTL, no policy changes the hit rate)."""
    t = f.trace
    ones = np.ones_like(t.sizes)
    route = np.random.default_rng(seed).integers(0, tasks, t.entry.size) if tasks > 1 else np.zeros(t.entry.size, int)
    hits = counted = 0
    for k in range(tasks):
        mine = route == k
        if not mine.any():
            continue
        if eviction == "lru":
            out = lrusim.replay(t.entry[mine], t.times[mine], ones, capacity=max(entries, 1.0), ttl_s=f.ttl_s,
                                warmup_s=0, expiry="eager")
            hits, counted = hits + out["hits"], counted + out["requests_counted"]
        else:
            with peer.Stream(t.entry[mine], t.times[mine], ones) as stream:
                hits, counted = hits + stream.hits(eviction, max(entries, 1.0)), counted + int(mine.sum())
    return hits / counted if counted else 0.0


@lru_cache(maxsize=1024)
def _dax_hit(f: Family, multiple: float, capacity_bytes: float) -> float:
    """DAX's item cache: the DAX chapter's model over a Zipf catalog, or the trace replayed through LRU in the
    node's bytes with DAX's item TTL and lazy expiry (its own times: a traffic multiple does not apply)."""
    if f.trace is not None:
        t = f.trace
        return lrusim.replay(t.entry, t.times, t.sizes, capacity=capacity_bytes, ttl_s=daxmodel.ITEM_TTL_S,
                             warmup_s=0, expiry="lazy")["hit_rate"]
    workload = daxmodel.ProjectionWorkload(catalog=f.keys, alpha=f.zipf_alpha, reads_per_s=f.reads_per_s * multiple,
                                           item_bytes=max(1, int(f.value_kb * daxmodel.KB)), projections=f.projections)
    return daxmodel.predict(workload, capacity_bytes=capacity_bytes)["hit_rate"]


def _footprint(f: Family) -> float:
    return (f.keys if f.trace is None else f.trace.sizes.size) * f.value_kb


def family_hit(w: Workload, f: Family, option: str, *, multiple: float | None = None, share: float = 1.0) -> float:
    """The hit rate ``option`` gives family ``f`` at ``multiple`` times its normal rate (default: the peak).
    ``share``: the part of a bounded cache — a task's memory, a DAX node — the family gets beside the others
    (by footprint); a shared cluster is sized to hold what it is asked to, so there the TTL bounds the hit rate."""
    multiple = w.peak_multiple if multiple is None else multiple
    if option == "dax":
        return _dax_hit(f, multiple, share * figure("dax_node_gb") * daxmodel.GB)
    tasks, entries = (w.tasks, share * w.task_cache_mb * 1000 / f.value_kb) if option in ("in-process",) else (
        1, decision.SHARED_CACHE_ENTRIES)
    if f.trace is not None:
        return _trace_hit(f, tasks, entries, w.eviction)
    return _zipf_hit(f, tasks, entries, multiple)


def near_hit(w: Workload, f: Family, *, multiple: float, share: float) -> float:
    """What a task's near cache (the per-task memory, the family's TTL, invalidated by Valkey) hits."""
    tasks, entries = w.tasks, share * w.task_cache_mb * 1000 / f.value_kb
    if f.trace is not None:
        return _trace_hit(f, tasks, entries, w.eviction)
    return _zipf_hit(f, tasks, entries, multiple)


def hottest_share(f: Family) -> float:
    """The hottest key's share of the family's reads."""
    if f.trace is not None:
        return float(np.bincount(f.trace.entry).max() / f.trace.entry.size)
    return float(zipf_groups(f.keys, f.zipf_alpha)[0][0])


def stampede_calls(w: Workload, f: Family, option: str) -> float:
    """Origin calls one expiry of the family's hottest key can draw without protection: the reads that arrive
    while its reload takes the origin's latency — once per task for per-task caches, which expire apart."""
    tasks = w.tasks if option == "in-process" else 1  # each task sees its share of the reads, and misses apart
    per_cache = f.reads_per_s * w.peak_multiple * hottest_share(f) / tasks
    return max(1.0, per_cache * w.origin_latency_ms / 1000) * tasks


REDIS_PROTOCOL = ("redis", "valkey", "valkey-durable", "valkey-serverless", "read-through", "near-cache")
"""The options a Redis-protocol endpoint measures (``--redis-url``); memcached is measured on its own."""


def _endpoint(option: str, measured: dict | None) -> dict | None:
    if not measured:
        return None
    return measured.get("redis") if option in REDIS_PROTOCOL else measured.get("memcached") if option == "memcached" else None


@dataclass
class _Judged:
    """One option's per-family verdicts and the traffic it leaves, before pricing."""

    families: dict[str, dict] = field(default_factory=dict)
    cached: list[tuple[Family, staleness.Staleness]] = field(default_factory=list)
    load: float = 0.0
    hit_all: float = 0.0


def _why_not(option: str, f: Family, s: staleness.Staleness) -> str | None:
    return ("never cached (cacheable = false)" if not f.cacheable else
            "not in DynamoDB" if option in DYNAMODB_ONLY and not f.in_dynamodb else s.not_cached_because)


def _shares(option: str, w: Workload) -> dict[str, float]:
    cachable = [f for f in w.families if option != "no-cache" and not _why_not(option, f, staleness.judge(option, f))]
    total = sum(_footprint(f) for f in cachable) or 1.0
    return {f.name: _footprint(f) / total for f in w.families}


def origin_load(w: Workload, option: str, multiple: float) -> float:
    """The origin's load, as a share of its capacity, at ``multiple`` times the workload's normal reads."""
    shares = _shares(option, w)
    load = 0.0
    for f in w.families:
        s = staleness.judge(option, f)
        hit = 0.0 if option == "no-cache" or _why_not(option, f, s) else family_hit(
            w, f, option, multiple=multiple, share=shares[f.name])
        load += f.reads_per_s * multiple * (1 - hit)
    return load / w.origin_capacity_per_s


def breaks_at(w: Workload, option: str, *, high: float = 1000.0) -> float:
    """The multiple of the workload's normal reads at which the option's origin load first passes the
    workload's utilization limit (bisection; load grows with traffic): ``inf`` if not below ``high``."""
    limit = w.origin_max_utilization
    if origin_load(w, option, high) <= limit:
        return math.inf
    low, top = 1e-3, high
    if origin_load(w, option, low) > limit:
        return low
    for _ in range(40):
        mid = math.sqrt(low * top)
        low, top = (mid, top) if origin_load(w, option, mid) <= limit else (low, mid)
        if top / low < 1.001:
            break
    return top


def cluster_full_at(w: Workload, cluster: dict | None) -> float | None:
    """The multiple of normal traffic at which the planned cluster's busiest node passes `sizing.NODE_MAX_UTILIZATION`
    of its network or operation limit (both grow with traffic; the cluster is then resized, the option stays):
    None without a cluster."""
    if not cluster:
        return None
    used = [u for k, u in cluster["utilization"].items() if k in ("network", "ops") and u > 0]
    return w.peak_multiple * sizing.NODE_MAX_UTILIZATION / max(used) if used else math.inf


def _judge(w: Workload, option: str) -> _Judged:
    j = _Judged()
    shares = _shares(option, w)
    reads = 0.0
    for f in w.families:
        peak = f.reads_per_s * w.peak_multiple
        s = staleness.judge(option, f)
        why_not = None if option == "no-cache" else _why_not(option, f, s)
        caches_it = option != "no-cache" and not why_not
        hit = family_hit(w, f, option, share=shares[f.name]) if caches_it else 0.0
        hit_normal = family_hit(w, f, option, multiple=1.0, share=shares[f.name]) if caches_it else 0.0
        if caches_it:
            j.cached.append((f, s))
        j.load += peak * (1 - hit) / w.origin_capacity_per_s
        reads += peak
        j.families[f.name] = {
            "cached": caches_it, "hit_rate": hit, "hit_rate_normal": hit_normal, "origin_calls_per_s": peak * (1 - hit),
            "stale_bound_s": s.bound_s if caches_it else 0.0, "stale_worst_s": s.worst_s if caches_it else 0.0,
            "mitigations": list(s.mitigations) if caches_it else [], "replica_reads": s.replica_reads and caches_it,
            "read_live_because": why_not,
            "stampede_calls_per_expiry": stampede_calls(w, f, option) if caches_it else 0.0}
    j.hit_all = 1 - j.load * w.origin_capacity_per_s / reads
    return j


def demand(w: Workload, option: str, j: _Judged, *, overhead: float) -> sizing.Demand:
    """What the option's shared cluster carries at peak: its cached families' reads (after a near cache's
    hits), fills, resident set, hottest key and connections."""
    shares = _shares(option, w)
    cached = [f for f, _ in j.cached]
    primary = replica = primary_b = replica_b = fills = fill_b = 0.0
    hot_reads = hot_bytes = 0.0
    hot_on_replicas = True
    for f, s in j.cached:
        peak = f.reads_per_s * w.peak_multiple
        near = near_hit(w, f, multiple=w.peak_multiple, share=shares[f.name]) if option == "near-cache" else 0.0
        to_cluster = peak * (1 - near)
        hit = j.families[f.name]["hit_rate"]
        misses = peak * (1 - hit)
        bytes_ = f.value_kb * 1000
        if s.replica_reads:
            replica, replica_b = replica + to_cluster, replica_b + (to_cluster - misses) * bytes_
        else:
            primary, primary_b = primary + to_cluster, primary_b + max(to_cluster - misses, 0.0) * bytes_
        fills, fill_b = fills + misses, fill_b + misses * bytes_
        hot = peak * hottest_share(f) * (1 - near)
        if hot * bytes_ > hot_bytes:
            hot_reads, hot_bytes, hot_on_replicas = hot, hot * bytes_, s.replica_reads
    return sizing.Demand(resident.resident_gb(cached, multiple=w.peak_multiple, overhead=overhead), primary,
                         max(primary_b, 0.0), replica, max(replica_b, 0.0), fills, fill_b, hot_reads, hot_bytes,
                         hot_on_replicas, w.tasks * w.connections_per_task)


def assess(w: Workload, option: str, measured: dict | None = None, *, item_overhead: float = ITEM_OVERHEAD,
           edge: bool = True) -> tuple[decision.Assessment, dict]:
    """One option judged against the workload: the summary's `Assessment`, and its numbers — per family (cached
    or read live and why, hit rate at peak and normal traffic, origin calls, stale bounds, stampede exposure),
    the origin load at normal traffic, the resident set, the cluster and its limits, transfer, the team's
    work, the total, and the traffic multiple at which the option breaks.
    ``measured``: the reader's endpoints (`experiments.decide.endpoint`), whose memory per item then sizes
    the cluster and whose latency is reported; without one, ``item_overhead`` does (the summary passes the
    Valkey chapter's measurement). ``edge``: find the breaking multiple (`breaks_at`; the flips skip it)."""
    if option not in OPTIONS:
        raise ValueError(f"option {option!r} is not one of {OPTIONS}")
    j = _judge(w, option)
    a = decision.Assessment(option, j.hit_all, j.load,
                            max((s.bound_s for _, s in j.cached), default=0.0),
                            stale_worst_s=max((s.worst_s for _, s in j.cached), default=0.0))
    normal_load = origin_load(w, option, 1.0)
    a.reasons.append(f"hit rate {100 * j.hit_all:.1f} % over all reads; origin load {100 * j.load:.0f} % of capacity at "
                     "peak" + (f", {100 * normal_load:.0f} % at normal traffic" if w.peak_multiple != 1 else ""))
    live = [name for name, n in j.families.items() if not n["cached"]]
    if live and option != "no-cache":
        why = [f"{n} ({j.families[n]['read_live_because']})" for n in live]
        a.reasons.append(f"reads live: {', '.join(why)}")
    if option != "no-cache" and not j.cached:
        a.rejected_because.append("it can cache none of the families")
    endpoint = _endpoint(option, measured)
    if endpoint:
        worst = max(endpoint["sizes"], key=lambda r: r["p99_ms"])
        a.reasons.append(f"measured on {endpoint['address']}: GET p99 {worst['p99_ms']:.2f} ms at {worst['value_kb']:g} KB")
    overhead = (endpoint or {}).get("item_overhead") or item_overhead
    if j.cached and option not in ("dax", "valkey-dynamodb", "read-through"):
        a.builds.append(CACHE_ASIDE)
    a.builds += staleness.components(option, j.cached)
    if option in EXTRA_COMPONENTS and j.cached:
        a.builds.append(EXTRA_COMPONENTS[option])
    numbers = {"families": j.families, "origin_load_normal": normal_load, "resident_gb": 0.0,
               "catalog_gb": resident.catalog_gb([f for f, _ in j.cached], overhead=overhead), "cluster": None,
               "transfer_usd_per_month": 0.0}
    if j.cached:
        _price(w, a, option, j, overhead, numbers)
    if option in ("memcached", "in-process"):
        a.survives_node_loss = False
    a.services = 0 if option in ("no-cache", "in-process") or not j.cached else 1
    a.team_usd_per_month = (len(a.builds) * w.team.days_per_component * w.team.day_usd / w.team.horizon_months
                            + a.services * w.team.days_per_service_month * w.team.day_usd)
    if edge:
        numbers["breaks_at_peak_multiple"] = breaks_at(w, option) if j.cached or option == "no-cache" else 0.0
    numbers["cluster_full_at_multiple"] = cluster_full_at(w, numbers["cluster"])
    numbers["team_usd_per_month"] = a.team_usd_per_month
    numbers["service_usd_per_month"] = None if math.isnan(a.usd_per_month) else a.usd_per_month
    return a, numbers


def _price(w: Workload, a: decision.Assessment, option: str, j: _Judged, overhead: float, numbers: dict) -> None:
    if option == "in-process":
        return
    cached = [f for f, _ in j.cached]
    resident_peak = resident.resident_gb(cached, multiple=w.peak_multiple, overhead=overhead)
    numbers["resident_gb"] = resident_peak
    if option == "dax":
        try:  # the hit rate is modelled for a node of the note's 13 GB (or the resident set, if smaller)
            cluster = pricing.dax_cluster(max(min(resident_peak, figure("dax_node_gb")), 0.01))
        except ParameterError as exc:
            a.usd_per_month = math.nan
            a.rejected_because.append(str(exc))
            return
        # DAX spreads reads over its nodes, one per zone: a read leaves its zone (Z − 1)/Z of the time
        read_bytes = sum(f.reads_per_s * f.value_kb * 1000 for f in cached)
        transfer = pricing.cross_az_per_month(read_bytes, cross_share=(w.zones - 1) / w.zones)
        a.usd_per_month = cluster.usd_per_month + transfer
        numbers["transfer_usd_per_month"] = transfer
        numbers["cluster"] = {"node_type": cluster.node_type, "shards": 1, "replicas": cluster.replicas,
                              "nodes": cluster.nodes, "binding": "memory", "layout": "spread",
                              "utilization": {"memory": resident_peak * 1e9 / 2**30 / cluster.usable_gib},
                              "hot_key_copies": 1, "nodes_usd_per_month": cluster.usd_per_month}
        a.reasons.append(f"{cluster.nodes} × {cluster.node_type} hold the {resident_peak:,.2f} GB resident at peak: "
                         f"${cluster.usd_per_month:,.0f}/month on demand + ${transfer:,.0f} zone-crossing transfer "
                         f"(network and operation limits of DAX nodes are not in the table)")
        return
    if option in SERVERLESS:
        normal = resident.resident_gb(cached, multiple=1.0, overhead=overhead)
        ecpus = sum(f.reads_per_s * (pricing.ecpus_per_command(f.value_kb)
                                     + (1 - j.families[f.name]["hit_rate_normal"]) * pricing.ecpus_per_command(f.value_kb))
                    for f in cached)
        bill = pricing.serverless_per_month("valkey", ecpus_per_s=ecpus, stored_gb=normal)
        a.usd_per_month = bill["usd_per_month"]
        a.reasons.append(f"{normal:,.2f} GB resident at normal traffic ({resident_peak:,.2f} GB at peak) and "
                         f"{ecpus:,.0f} ECPU/s: ${a.usd_per_month:,.0f}/month; TLS always on")
        if option == "valkey-dynamodb":
            a.reasons.append("DynamoDB caching priced as Serverless Valkey usage (no separate price was found in the pages "
                             "read, 2026-12-07); writes through its client update the cache, changes made elsewhere "
                             "stay stale for the TTL")
        peak = ecpus * w.peak_multiple
        if w.peak_multiple > 1 and peak > pricing.SERVERLESS_FLOOR_ECPU_PER_S:  # a steady load scales on its own
            a.builds.append(f"a pre-scaling step an hour before each known peak ({peak:,.0f} ECPU/s against the "
                            f"{pricing.SERVERLESS_FLOOR_ECPU_PER_S:,} an empty cache supports)")
        return
    engine = ENGINE[option]
    d = demand(w, option, j, overhead=overhead)
    normal_share = sum(f.reads_per_s for f in cached) / sum(f.reads_per_s * w.peak_multiple for f in cached)
    write_cap = DURABLE_WRITE_MIB_PER_S * 2**20 if option == "valkey-durable" else None
    try:
        s = sizing.size(engine, d, zones=w.zones, min_replicas=0 if engine == "memcached" else 1,
                        normal_share=normal_share, write_cap_bytes_per_s=write_cap,
                        min_shards=node_loss_shards(w, j) if engine == "memcached" else 1)
    except ParameterError as exc:
        a.usd_per_month = math.nan
        a.rejected_because.append(str(exc))
        return
    a.usd_per_month = s.usd_per_month
    if option == "valkey-durable":
        a.reasons.append("synchronous durability priced as the nodes alone: AWS states no extra cost for asynchronous "
                         "durability and no price for synchronous writes was found in the pages read (2026-12-07); "
                         "writes take single-digit milliseconds")
    numbers["cluster"] = s.as_dict()
    numbers["transfer_usd_per_month"] = s.transfer_usd_per_month
    other = (f"; the {'spread' if s.layout == 'zone-local' else 'zone-local'} layout would cost "
             f"${s.other_layout_usd_per_month:,.0f}" if s.other_layout_usd_per_month is not None else "")
    a.reasons.append(f"{s.shards} shard(s) × {1 + s.replicas} {s.node_type} ({s.nodes} nodes) for {d.resident_gb:,.2f} GB "
                     f"resident at peak, bound by {_binding_text(s)}; "
                     f"${s.nodes_usd_per_month:,.0f}/month on demand + ${s.transfer_usd_per_month:,.0f} zone-crossing "
                     f"transfer ({s.layout} reads{other})")
    if s.hot_key_copies > 1:
        a.builds.append(f"hot-key copies: the hottest key kept as {s.hot_key_copies} copies on different shards, each "
                        f"read at random (one node cannot carry its {d.hot_key_bytes_per_s * 8 / 1e9:,.1f} Gbit/s)")


def _binding_text(s: sizing.Sizing) -> str:
    if s.binding == "node loss":
        return "node loss (losing one node must leave the origin within its capacity)"
    return f"{s.binding} ({100 * s.utilization[s.binding]:.0f} % of it on the busiest node)"


def node_loss_shards(w: Workload, j: _Judged) -> int:
    """The fewest memcached nodes for which losing one keeps the origin at or below its capacity: a replaced
    node starts empty (the Memcached chapter), so its share of the hits, 1/nodes, becomes misses until it refills
    — past capacity the origin does not recover (the no-cache chapter)."""
    capacity = w.origin_capacity_per_s
    hits = sum(f.reads_per_s * w.peak_multiple * j.families[f.name]["hit_rate"] for f, _ in j.cached)
    room = capacity - j.load * capacity
    if hits <= 0:
        return 1
    return sizing.MAX_NODES + 1 if room <= 0 else max(1, math.ceil(hits / room))


def rank(w: Workload, measured: dict | None = None, *, item_overhead: float = ITEM_OVERHEAD,
         edge: bool = True) -> tuple[list[decision.Assessment], dict[str, dict]]:
    """Every option judged and ordered best first (the summary's order), with each option's numbers (`assess`)."""
    judged = {option: assess(w, option, measured, item_overhead=item_overhead, edge=edge) for option in OPTIONS}
    ordered = decision.order([a for a, _ in judged.values()], live=any(not f.cacheable for f in w.families),
                             max_utilization=w.origin_max_utilization)
    return ordered, {option: numbers for option, (_, numbers) in judged.items()}
