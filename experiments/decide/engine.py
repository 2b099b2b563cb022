"""The options judged for a reader's workload, family by family, with the book's own models.

Each option caches the families it can — cacheable, within the family's staleness limit by the option's
invalidation path, and for DAX only data in DynamoDB — and reads the others live from the origin. Per cached
family the hit rate comes from the in-process chapter's model (LRU with a TTL over a Zipf popularity,
`experiments.models.taskcache`), or from the book's exact replay of the family's trace
(`experiments.models.lrusim`; per-task caches route each request to a random task), or, for DAX, from the
DAX chapter's model. The origin load at peak is every live read plus every miss over the origin's capacity;
an option that leaves more than the capacity is rejected, as is one that caches nothing. The ranking itself
is the summary's (`experiments.models.decision`): options that leave the origins comfortable rank by what
they ask of the team, then by cost from the dated price table; the rest by the load they leave.
"""

from __future__ import annotations

import math

import numpy as np

from experiments.decide.workload import Family, Workload
from experiments.errors import ParameterError
from experiments.models import daxmodel, decision, lrusim, peer, pricing, taskcache
from experiments.models.cachemodel import zipf_groups
from experiments.seed import figure

OPTIONS = ("redis", "valkey", "valkey-serverless", "memcached", "dax", "in-process", "near-cache", "read-through",
           "no-cache")
"""Option ids, as the JSON and the table name them: the note's six, Valkey node-based and Serverless, and the
book's near cache (an in-process cache over Redis that Redis invalidates)."""

EVENT_PATH_S = 0.01
"""Staleness after a change when an event reaches the cache: milliseconds (the Redis and Memcached chapters)."""

ITEM_OVERHEAD = 1.15
"""Memory per cached item over its own bytes where nothing was measured: the 6–12 % the Valkey chapter
measured for 2–100 KB values on Redis, Valkey and memcached, rounded up (the summary passes the measurement
itself, a reader's endpoint its own)."""


def _stale_bound(option: str, f: Family) -> float:
    events = f.changed_by_events
    if option == "no-cache":
        return 0.0
    if option == "dax":  # DAX keeps an item for its own item TTL, whatever the family's, and has no invalidation
        return daxmodel.ITEM_TTL_S
    if option == "in-process":
        return f.ttl_s
    return EVENT_PATH_S if events else f.ttl_s


CACHE_ASIDE = "cache-aside code in the orchestrator (read, fill on a miss, the key design)"
"""What every option but DAX and no cache asks of the application: DAX is API-compatible with DynamoDB, so
its client replaces DynamoDB's and fills itself (the DAX chapter's documentation)."""


def _builds(option: str, f: Family) -> list[str]:
    """The invalidation path a cached family changed by events needs: memcached has no pub/sub, so a queue must
    feed it; pub/sub delivers at most once, so a family that may not stay stale for its TTL needs a stream."""
    if not f.changed_by_events or option in ("no-cache", "in-process", "dax"):
        return []
    if option == "memcached":
        return [f"a queue-fed invalidator for {f.name}"]
    if f.max_stale_s < f.ttl_s:
        return [f"a stream-fed invalidator for {f.name} (pub/sub delivers at most once)"]
    return []


def _zipf_hit(w: Workload, f: Family, *, tasks: int, entries: float, multiple: float) -> float:
    traffic = taskcache.TaskTraffic(catalog=max(f.keys, taskcache.HOT_ITEMS + 1), alpha=f.zipf_alpha,
                                    reads_per_s=f.reads_per_s * multiple)
    return taskcache.predict(traffic, tasks=tasks, maxsize=max(entries, 1.0), ttl_s=f.ttl_s)["hit_rate"]


def _trace_hit(w: Workload, f: Family, *, tasks: int, entries: float, multiple: float, seed: int = 1) -> float:
    """The trace replayed (its own times: ``multiple`` does not apply), each request routed to a random task:
    LRU with the family's TTL by the book's exact replay, another ``eviction`` policy by libCacheSim's, which
    expires nothing (the traffic chapter: where entries leave by TTL, no policy changes the hit rate)."""
    t = f.trace
    ones = np.ones_like(t.sizes)
    route = np.random.default_rng(seed).integers(0, tasks, t.entry.size) if tasks > 1 else np.zeros(t.entry.size, int)
    hits = counted = 0
    for k in range(tasks):
        mine = route == k
        if not mine.any():
            continue
        if w.eviction == "lru":
            out = lrusim.replay(t.entry[mine], t.times[mine], ones, capacity=max(entries, 1.0), ttl_s=f.ttl_s,
                                warmup_s=0, expiry="eager")
            hits, counted = hits + out["hits"], counted + out["requests_counted"]
        else:
            with peer.Stream(t.entry[mine], t.times[mine], ones) as stream:
                hits, counted = hits + stream.hits(w.eviction, max(entries, 1.0)), counted + int(mine.sum())
    return hits / counted if counted else 0.0


def _footprint(f: Family) -> float:
    return (f.keys if f.trace is None else f.trace.sizes.size) * f.value_kb


def family_hit(w: Workload, f: Family, option: str, *, multiple: float | None = None, share: float = 1.0) -> float:
    """The hit rate ``option`` gives family ``f`` at ``multiple`` times its normal rate (default: the peak).
    ``share``: the part of a bounded cache — a task's memory, a DAX node — the family gets beside the others
    (by footprint); a shared cluster is sized to hold every cached key, so there the TTL bounds the hit rate."""
    multiple = w.peak_multiple if multiple is None else multiple
    if option == "dax":
        workload = daxmodel.ProjectionWorkload(catalog=f.keys or int(f.trace.sizes.size), alpha=f.zipf_alpha or 1.0,
                                               reads_per_s=f.reads_per_s * multiple,
                                               item_bytes=max(1, int(f.value_kb * daxmodel.KB)),
                                               projections=f.projections)
        return daxmodel.predict(workload, capacity_bytes=share * figure("dax_node_gb") * daxmodel.GB)["hit_rate"]
    tasks, entries = (w.tasks, share * w.task_cache_mb * 1000 / f.value_kb) if option == "in-process" else (
        1, decision.SHARED_CACHE_ENTRIES)
    return (_trace_hit if f.trace is not None else _zipf_hit)(w, f, tasks=tasks, entries=entries, multiple=multiple)


def stored_gb(w: Workload, cached: list[Family], *, overhead: float = ITEM_OVERHEAD) -> float:
    """Bytes a shared cache holds for the cached families: every key at its value size and the item overhead."""
    keys = (f.keys if f.trace is None else f.trace.sizes.size for f in cached)
    return sum(n * f.value_kb * 1000 * overhead for n, f in zip(keys, cached, strict=True)) / 1e9


REDIS_PROTOCOL = ("redis", "valkey", "valkey-serverless", "read-through", "near-cache")
"""The options a Redis-protocol endpoint measures (``--redis-url``); memcached is measured on its own."""


def _endpoint(option: str, measured: dict | None) -> dict | None:
    if not measured:
        return None
    return measured.get("redis") if option in REDIS_PROTOCOL else measured.get("memcached") if option == "memcached" else None


def stampede_calls(w: Workload, f: Family, option: str) -> float:
    """Origin calls one expiry of the family's hottest key can draw without protection: the reads that arrive
    while its reload takes the origin's latency — once per task for per-task caches, which expire apart."""
    if f.trace is not None:  # the hottest key's share of the trace's requests
        share = np.bincount(f.trace.entry).max() / f.trace.entry.size
    else:
        share = float(zipf_groups(f.keys, f.zipf_alpha)[0][0])
    tasks = w.tasks if option == "in-process" else 1  # each task sees its share of the reads, and misses apart
    per_cache = f.reads_per_s * w.peak_multiple * share / tasks
    return max(1.0, per_cache * w.origin_latency_ms / 1000) * tasks


def assess(w: Workload, option: str, measured: dict | None = None, *,
           item_overhead: float = ITEM_OVERHEAD) -> tuple[decision.Assessment, dict]:
    """One option judged against the workload: the summary's `Assessment`, and its numbers — per family (cached
    or read live and why, hit rate at peak and normal traffic, origin calls, stale bound, stampede exposure)
    and the origin load at normal traffic.
    ``measured``: the reader's endpoints (`experiments.decide.endpoint`), whose memory per item then sizes
    the cluster and whose latency is reported; without one, ``item_overhead`` does (the summary passes the
    Valkey chapter's measurement)."""
    if option not in OPTIONS:
        raise ValueError(f"option {option!r} is not one of {OPTIONS}")
    capacity = w.origin_capacity_per_s
    families, cached, builds, load, normal_load, worst_stale = {}, [], [], 0.0, 0.0, 0.0

    def why_not_cached(f: Family) -> str | None:
        bound = _stale_bound(option, f)
        return ("never cached (cacheable = false)" if not f.cacheable else
                "not in DynamoDB" if option == "dax" and not f.in_dynamodb else
                f"stale for up to {bound:,.0f} s after a change; the limit is {f.max_stale_s:,.0f} s"
                if bound > f.max_stale_s else None)

    cachable = [f for f in w.families if option != "no-cache" and not why_not_cached(f)]
    total = sum(_footprint(f) for f in cachable) or 1.0
    for f in w.families:
        peak = f.reads_per_s * w.peak_multiple
        bound = _stale_bound(option, f)
        share = _footprint(f) / total
        why_not = why_not_cached(f)
        caches_it = option != "no-cache" and not why_not
        hit = family_hit(w, f, option, share=share) if caches_it else 0.0
        hit_normal = family_hit(w, f, option, multiple=1.0, share=share) if caches_it else 0.0
        if caches_it:
            cached.append(f)
            builds += _builds(option, f)
            worst_stale = max(worst_stale, bound)
        load += peak * (1 - hit) / capacity
        normal_load += f.reads_per_s * (1 - hit_normal) / capacity
        families[f.name] = {"cached": bool(f in cached), "hit_rate": hit, "hit_rate_normal": hit_normal,
                            "origin_calls_per_s": peak * (1 - hit),
                            "stale_bound_s": bound if f in cached else 0.0, "read_live_because": why_not,
                            "stampede_calls_per_expiry": stampede_calls(w, f, option) if f in cached else 0.0}
    reads = sum(f.reads_per_s * w.peak_multiple for f in w.families)
    hit_all = 1 - load * capacity / reads
    if cached and option not in ("dax", "read-through"):
        builds.append(CACHE_ASIDE)
    a = decision.Assessment(option, hit_all, load, worst_stale, sorted(set(builds)))
    a.reasons.append(f"hit rate {100 * hit_all:.1f} % over all reads; origin load {100 * load:.0f} % of capacity at peak"
                     + (f", {100 * normal_load:.0f} % at normal traffic" if w.peak_multiple != 1 else ""))
    live = [name for name, n in families.items() if not n["cached"]]
    if live and option != "no-cache":
        why = [f"{n} ({families[n]['read_live_because']})" for n in live]
        a.reasons.append(f"reads live: {', '.join(why)}")
    if option != "no-cache" and not cached:
        a.rejected_because.append("it can cache none of the families")
    endpoint = _endpoint(option, measured)
    if endpoint:
        worst = max(endpoint["sizes"], key=lambda r: r["p99_ms"])
        a.reasons.append(f"measured on {endpoint['address']}: GET p99 {worst['p99_ms']:.2f} ms at {worst['value_kb']:g} KB")
    overhead = (endpoint or {}).get("item_overhead") or item_overhead
    _price(w, a, option, cached, overhead)
    if option in ("memcached", "in-process"):
        a.survives_node_loss = False
    if option == "read-through":
        a.builds.append("a read-through proxy in front of the cache")
    if option == "near-cache":
        a.builds.append("a tracking near cache per task")
    return a, {"families": families, "origin_load_normal": normal_load}


def rank(w: Workload, measured: dict | None = None, *,
         item_overhead: float = ITEM_OVERHEAD) -> tuple[list[decision.Assessment], dict[str, dict]]:
    """Every option judged and ordered best first (the summary's order), with each option's numbers (`assess`)."""
    judged = {option: assess(w, option, measured, item_overhead=item_overhead) for option in OPTIONS}
    ordered = decision.order([a for a, _ in judged.values()], live=any(not f.cacheable for f in w.families))
    return ordered, {option: families for option, (_, families) in judged.items()}


def _price(w: Workload, a: decision.Assessment, option: str, cached: list[Family], overhead: float) -> None:
    if option in ("no-cache", "in-process"):
        return
    if not cached:  # nothing to size a cluster for: not priced
        a.usd_per_month = math.nan
        return
    data = max(stored_gb(w, cached, overhead=overhead), 0.01)
    if option == "dax":
        try:  # the hit rate is modelled for a node of the note's 13 GB (or the data, if smaller)
            cluster = pricing.dax_cluster(min(data, figure("dax_node_gb")))
        except ParameterError as exc:
            a.usd_per_month = math.nan
            a.rejected_because.append(str(exc))
            return
        a.usd_per_month = cluster.usd_per_month
        cached_gb = min(data, figure("dax_node_gb"))
        a.reasons.append(f"{cluster.nodes} × {cluster.node_type} cache {cached_gb:,.1f} of {data:,.1f} GB: "
                         f"${cluster.usd_per_month:,.0f}/month on demand")
        return
    if option == "valkey-serverless":
        ecpus = sum(f.reads_per_s * pricing.ecpus_per_command(f.value_kb) for f in cached)
        a.usd_per_month = pricing.serverless_per_month("valkey", ecpus_per_s=ecpus, stored_gb=data)["usd_per_month"]
        a.reasons.append(f"{data:,.1f} GB stored and {ecpus:,.0f} ECPU/s: ${a.usd_per_month:,.0f}/month; TLS always on")
        peak = ecpus * w.peak_multiple
        if peak > pricing.SERVERLESS_FLOOR_ECPU_PER_S:
            a.builds.append(f"a pre-scaling step an hour before each known peak ({peak:,.0f} ECPU/s against the "
                            f"{pricing.SERVERLESS_FLOOR_ECPU_PER_S:,} an empty cache supports)")
        return
    # the near cache sits on a shared cluster (Valkey, the cheaper engine); read-through on the note's Redis
    engine = {"redis": "redis", "read-through": "redis", "valkey": "valkey", "near-cache": "valkey",
              "memcached": "memcached"}[option]
    try:
        cluster = pricing.cheapest_cluster(engine, data, replicas=0 if engine == "memcached" else 1)
    except ParameterError as exc:
        a.usd_per_month = math.nan
        a.rejected_because.append(str(exc))
        return
    a.usd_per_month = cluster.usd_per_month
    a.reasons.append(f"{cluster.nodes} × {cluster.node_type} hold {data:,.1f} GB: ${cluster.usd_per_month:,.0f}/month "
                     "on demand")
