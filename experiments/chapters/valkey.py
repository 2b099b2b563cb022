"""The Valkey chapter's numbers, findings and ledger rows: the two engines side by side, memory per item,
threads, client-side caching from the libraries, and what the note's cache costs as AWS sells it today.

The chapter collects its results in one `ValkeyResults`; `costs` prices the note's deployment from
the measured bytes per item and the dated price table (`experiments.models.pricing`); `headline`
gives the numbers its prose quotes, `findings` the statements it asserts, `record_claims` the ledger
rows, `summary_row` the summary table's Valkey row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from experiments import claims, rules
from experiments.caches import nearcache
from experiments.findings import EVENT_P99_BOUND_MS, AllOf, Timing, timing
from experiments.measure import spread_between_rounds
from experiments.models import costmodel, pricing
from experiments.models.extrapolate import PROMOTION_BOUND_S
from experiments.probes import clientcache, itembytes, parity
from experiments.probes.failover import LOST_PROMOTIONS
from experiments.probes.parity import beyond_noise
from experiments.results import Results, declared
from experiments.seed import figure, launch_reads_per_s, product_reads_per_s, service_default, value_sizes

PROOF = "valkey.ipynb"

SHARED_TOOL = "redis-benchmark"
"""The tool whose runs the prose quotes for both engines (valkey-benchmark's runs are in the table)."""

KEY_LAYOUTS = ("product, 2 KB JSON", "product, hash", "promo, 1 KB JSON", "review, 4 KB JSON")
"""Layouts whose values both engines store alike (the sorted set's scores are written differently, the 100 KB
value sits in one size class): a difference between the engines is what each spends per key."""

MARGIN = 0.25
"""A timing difference between the engines counts only beyond the noise *and* beyond 25 % of Redis's value."""

CATALOG_LAYOUT = "product, 2 KB JSON"
"""How the note sizes its catalog (DAX Q3: 500K ASINs at an average 2 KB item)."""

LAUNCH_HOURS_PER_MONTH = 1.0
"""Ours: hours a month at the launch's peak rate (the note gives one 15-second spike per launch)."""

CROSS_AZ_SHARE = 2 / 3
"""Ours: tasks spread evenly over three Availability Zones, all reading one primary's zone's node."""

PRESCALE_LEAD_H = 1.0
"""Hours ahead of a launch its capacity is bought: AWS recommends setting a Serverless cache's minimum ECPU/s
"at least 60 minutes before the peak event" (ElastiCache User Guide, Scaling ElastiCache Serverless); node-based
read nodes are added as far ahead."""



@dataclass
class ValkeyResults(Results):
    """What the chapter's notebook measured: each probe's declared table or record (`experiments.results`)."""

    versions: pd.DataFrame = declared(parity.VERSIONS)
    get_latency: pd.DataFrame = declared(parity.GET_LATENCY)
    invalidation: pd.DataFrame = declared(parity.INVALIDATION)
    missed: pd.DataFrame = declared(parity.MISSED)
    failover: pd.DataFrame = declared(parity.FAILOVER)
    cluster: pd.DataFrame = declared(parity.CLUSTER)
    item_bytes: pd.DataFrame = declared(itembytes.MEASURE)
    threads: pd.DataFrame = declared(parity.THREADS)
    client_cache: pd.DataFrame = declared(clientcache.REFUSAL)
    glide: dict = declared(clientcache.GLIDE)
    near_cache_drop: dict = declared(nearcache.LINK_DROP)


def _bytes(r: ValkeyResults, engine: str, layout: str) -> float:
    return itembytes.bytes_per_item(r.item_bytes, engine, layout)


def traffic() -> dict[str, float]:
    """The note's cache traffic in two scenarios: steady (Memcached failure 2: 40,000 product reads/min
    at the planned 95 % hit rate, the misses refilled by a SET) and the launch peak (no-cache failure:
    the cacheable half of its catalog reads). Each read or fill moves one 2 KB product."""
    item_bytes = float(value_sizes().set_index(["family", "variant"]).loc[("product", "item"), "size_bytes"])
    return {"steady_reads_per_s": product_reads_per_s(),
            "steady_sets_per_s": product_reads_per_s() * (1 - figure("planned_hit_rate")),
            "launch_reads_per_s": launch_reads_per_s() * (1 - figure("launch_live_share")), "item_bytes": item_bytes}


def costs(item_bytes: pd.DataFrame) -> pd.DataFrame:
    """A month of the note's cache on each engine, node-based (primary + 1 replica, the note's
    replication, sized for the catalog; Memcached without replicas) and Serverless, at steady traffic
    plus `LAUNCH_HOURS_PER_MONTH` at the launch's peak, with the capacity the launch needs bought
    `PRESCALE_LEAD_H` ahead of it: node-based adds the cache.r7g.large read nodes whose bandwidth carries
    the launch (`launch_bandwidth_nodes`), Serverless pays a minimum of the launch's ECPU/s from the
    pre-scaling lead on. Node-based pays regional transfer for the reads that cross zones; Serverless is
    billed per ECPU and per GB-hour stored; its transfer is not priced — the price table records no Serverless
    transfer price — and `headline` says what the node-based rate would add."""
    t = traffic()
    ecpu = pricing.ecpus_per_command(t["item_bytes"] / 1024)
    steady_ops = t["steady_reads_per_s"] + t["steady_sets_per_s"]
    launch_share = LAUNCH_HOURS_PER_MONTH / pricing.HOURS_PER_MONTH
    mean_ops = steady_ops * (1 - launch_share) + t["launch_reads_per_s"] * launch_share
    # billed at the pre-scaled minimum during the lead, above the steady traffic it serves meanwhile
    prescaled_ecpus = (t["launch_reads_per_s"] - steady_ops) * ecpu * PRESCALE_LEAD_H / pricing.HOURS_PER_MONTH
    launch_node_hours = (LAUNCH_HOURS_PER_MONTH + PRESCALE_LEAD_H)
    rows = []
    for engine in pricing.ENGINES:
        stored_gb = itembytes.catalog_gb(item_bytes, engine, CATALOG_LAYOUT)
        cluster = pricing.cheapest_cluster(engine, stored_gb, replicas=0 if engine == "memcached" else 1)
        transfer = pricing.cross_az_per_month(mean_ops * t["item_bytes"], cross_share=CROSS_AZ_SHARE)
        extra = max(0, launch_bandwidth_nodes() - cluster.nodes)
        launch_usd = extra * launch_node_hours * pricing.node_types(engine).set_index("node_type").loc[
            pricing.LAUNCH_NODE_TYPE, "usd_per_hour"]
        rows.append({"engine": engine, "deployment": "node-based", "configuration":
                     f"{cluster.nodes} × {cluster.node_type}, + {extra} × {pricing.LAUNCH_NODE_TYPE} for each launch",
                     "stored_gb": stored_gb, "service_usd": cluster.usd_per_month, "launch_usd": launch_usd,
                     "transfer_usd": transfer, "usd_per_month": cluster.usd_per_month + launch_usd + transfer})
        steady = pricing.serverless_per_month(engine, ecpus_per_s=mean_ops * ecpu, stored_gb=stored_gb)
        prescale = pricing.serverless_per_month(engine, ecpus_per_s=prescaled_ecpus, stored_gb=0.0)["ecpu_usd"]
        rows.append({"engine": engine, "deployment": "Serverless", "configuration":
                     f"{mean_ops * ecpu:,.0f} ECPU/s on average, {steady['billed_gb']:.2f} GB billed",
                     "stored_gb": stored_gb, "service_usd": steady["usd_per_month"], "launch_usd": prescale,
                     "transfer_usd": 0.0, "usd_per_month": steady["usd_per_month"] + prescale})
    return pd.DataFrame(rows)


def launch_bandwidth_nodes() -> int:
    """cache.r7g.large nodes whose baseline bandwidth carries the launch's cacheable reads of 2 KB."""
    t = traffic()
    return math.ceil(t["launch_reads_per_s"] * t["item_bytes"] * 8 / 1e9 / pricing.node_baseline_gbps(pricing.LAUNCH_NODE_TYPE))


def _lat(r: ValkeyResults, engine: str, column: str) -> float:
    return float(r.get_latency[r.get_latency.engine == engine][column].max())


def headline(r: ValkeyResults) -> dict[str, float]:
    """Numbers quoted by the chapter's prose and by the decision record."""
    cost = costs(r.item_bytes).set_index(["engine", "deployment"])
    fo = r.failover.set_index("engine")
    inv = r.invalidation.set_index(["engine", "path"])
    threads = r.threads.set_index(["server", "threads", "tool"])
    t = traffic()
    redis_pair = cost.loc[("redis", "node-based")]
    at_default = {e: fo.loc[e, "promotion_s"] - fo.loc[e, "down_after_ms"] / 1000
                  + service_default("sentinel_down_after_ms") / 1000 for e in fo.index}
    numbers = {
        "valkey_version": str(r.versions.set_index("engine").loc["valkey", "version"]),
        "valkey_reports_redis": str(r.versions.set_index("engine").loc["valkey", "redis_version"]),
        "redis_version": str(r.versions.set_index("engine").loc["redis", "version"]),
        "worst_get_p99_redis_ms": _lat(r, "redis", "p99_ms"), "worst_get_p99_valkey_ms": _lat(r, "valkey", "p99_ms"),
        "item_get_p99_valkey_ms": float(r.get_latency.set_index(["engine", "family", "variant"])
                                        .loc[("valkey", "product", "item"), "p99_ms"]),
        "get_cases_beyond_noise": int(_beyond(r.get_latency, ["family", "variant"]).sum()),
        "largest_get_diff_us": 1000 * float(beyond_noise(r.get_latency, ["family", "variant"]).difference.abs().max()),
        "largest_get_noise_us": 1000 * float(beyond_noise(r.get_latency, ["family", "variant"]).noise.max()),
        "pubsub_p99_redis_ms": float(inv.loc[("redis", "pub/sub"), "p99_ms"]),
        "pubsub_p99_valkey_ms": float(inv.loc[("valkey", "pub/sub"), "p99_ms"]),
        "stream_p99_valkey_ms": float(inv.loc[("valkey", "stream + consumer group"), "p99_ms"]),
        "promotion_redis_s": float(fo.loc["redis", "promotion_s"]), "promotion_valkey_s": float(fo.loc["valkey", "promotion_s"]),
        "promotion_default_valkey_s": float(at_default["valkey"]),
        "default_down_after_s": service_default("sentinel_down_after_ms") / 1000,
        "lost_deletes_valkey": int(fo.loc["valkey", "lost_deletes_found"]),
        "lost_deletes_redis": int(fo.loc["redis", "lost_deletes_found"]),
        "replay_stale_valkey_s": float(fo.loc["valkey", "stale_for_s_with_replay"]),
        "hot_share_valkey_pct": 100 * float(r.cluster.set_index("engine").loc["valkey", "hot_key_share"]),
        "product_bytes_redis": _bytes(r, "redis", CATALOG_LAYOUT), "product_bytes_valkey": _bytes(r, "valkey", CATALOG_LAYOUT),
        "product_bytes_memcached": _bytes(r, "memcached", CATALOG_LAYOUT),
        "page_overhead_redis_pct": _overhead(r, "redis", "product, 100 KB JSON"),
        "page_overhead_memcached_pct": _overhead(r, "memcached", "product, 100 KB JSON"),
        "page_overhead_valkey_pct": _overhead(r, "valkey", "product, 100 KB JSON"),
        "zset_bytes_redis": _bytes(r, "redis", "reco, sorted set"), "zset_bytes_valkey": _bytes(r, "valkey", "reco, sorted set"),
        "hash_bytes_valkey": _bytes(r, "valkey", "product, hash"),
        "items_measured": int(r.item_bytes["items"].max()),
        "catalog_gb_redis": itembytes.catalog_gb(r.item_bytes, "redis", CATALOG_LAYOUT),
        "catalog_gb_valkey": itembytes.catalog_gb(r.item_bytes, "valkey", CATALOG_LAYOUT),
        "items_in_13gb_valkey": figure("dax_node_gb") * 1e9 / _bytes(r, "valkey", CATALOG_LAYOUT),
        **{f"rps_{e}_{n}": float(threads.loc[(e, n, tool), "mix_rps"])
           for e, tool in (("redis", SHARED_TOOL), ("valkey", SHARED_TOOL), ("memcached", "memcaslap")) for n in (1, 2)},
        "thread_repeats": int(r.threads.repeats.min()),
        "engine_rps_diff_pct": 100 * float(_engine_gap(r.threads).xs(1, level="threads").gap.abs().max()),
        "engine_rps_noise_pct": 100 * float(_engine_gap(r.threads).xs(1, level="threads").noise.max()),
        "redis_pair_usd": float(redis_pair.service_usd), "redis_pair_nodes": str(redis_pair.configuration),
        "valkey_pair_usd": float(cost.loc[("valkey", "node-based"), "service_usd"]),
        "valkey_node_total_usd": float(cost.loc[("valkey", "node-based"), "usd_per_month"]),
        "redis_node_total_usd": float(redis_pair.usd_per_month),
        "transfer_usd": float(redis_pair.transfer_usd),
        "valkey_serverless_usd": float(cost.loc[("valkey", "Serverless"), "usd_per_month"]),
        "valkey_prescale_usd": float(cost.loc[("valkey", "Serverless"), "launch_usd"]),
        "valkey_launch_nodes_usd": float(cost.loc[("valkey", "node-based"), "launch_usd"]),
        "memcached_node_total_usd": float(cost.loc[("memcached", "node-based"), "usd_per_month"]),
        "serverless_storage_gb_month_usd": pricing.serverless_per_month("valkey", ecpus_per_s=0, stored_gb=1.0)[
            "usd_per_month"],
        "valkey_node_discount_pct": 100 * (1 - float(cost.loc[("valkey", "node-based"), "service_usd"]
                                                    / redis_pair.service_usd)),
        "valkey_serverless_discount_pct": 100 * (1 - float(cost.loc[("valkey", "Serverless"), "service_usd"]
                                                          / cost.loc[("redis", "Serverless"), "service_usd"])),
        "redis_serverless_usd": float(cost.loc[("redis", "Serverless"), "usd_per_month"]),
        "cheapest_option": "{1} {0}".format(*cost.usd_per_month.idxmin()).replace("valkey", "Valkey").replace(
            "redis", "Redis OSS").replace("memcached", "Memcached"),
        "cost_share_pct": 100 * float(redis_pair.service_usd) / figure("sale_revenue"),
        "break_even_s": costmodel.break_even_outage_s(costmodel.CostInputs(cache_cost_per_month=float(
            redis_pair.service_usd)), sale_hours=24),
        "seed_break_even_s": costmodel.break_even_outage_s(costmodel.CostInputs(), sale_hours=24),
        "launch_reads_per_s": t["launch_reads_per_s"], "launch_gbps": t["launch_reads_per_s"] * t["item_bytes"] * 8 / 1e9,
        "launch_nodes": launch_bandwidth_nodes(), "steady_reads_per_s": t["steady_reads_per_s"],
        "launch_ecpus_per_s": t["launch_reads_per_s"] * pricing.ecpus_per_command(t["item_bytes"] / 1024),
        "serverless_floor_ecpus": float(pricing.SERVERLESS_FLOOR_ECPU_PER_S),
        "serverless_break_even_gb": pricing.serverless_break_even_gb("valkey"),
        "page_catalog_gb_valkey": itembytes.catalog_gb(r.item_bytes, "valkey", "product, 100 KB JSON"),
        "page_bytes_valkey_kib": _bytes(r, "valkey", "product, 100 KB JSON") / 1024,
        "catalog_gb_memcached": itembytes.catalog_gb(r.item_bytes, "memcached", CATALOG_LAYOUT),
        "items_in_13gb_memcached": figure("dax_node_gb") * 1e9 / _bytes(r, "memcached", CATALOG_LAYOUT),
        "zset_saving_bytes": _bytes(r, "redis", "reco, sorted set") - _bytes(r, "valkey", "reco, sorted set"),
        "zset_saving_pct": 100 * (1 - _bytes(r, "valkey", "reco, sorted set") / _bytes(r, "redis", "reco, sorted set")),
        "key_saving_bytes_min": min(_bytes(r, "redis", lay) - _bytes(r, "valkey", lay) for lay in KEY_LAYOUTS),
        "key_saving_bytes_max": max(_bytes(r, "redis", lay) - _bytes(r, "valkey", lay) for lay in KEY_LAYOUTS),
        "node_baseline_gbps": pricing.node_baseline_gbps(pricing.LAUNCH_NODE_TYPE),
        "serverless_transfer_if_charged_usd": float(cost.loc[("valkey", "node-based"), "transfer_usd"]),
        "glide_local_reads": int(r.glide["local_reads_of_100"]), "glide_change_ms": float(r.glide["change_seen_p50_ms"]),
        "glide_stale_after_drop_s": float(r.glide["stale_after_drop_s"]), "glide_entry_ttl_s": float(r.glide["entry_ttl_s"]),
        "near_stale_after_reconnect": bool(r.near_cache_drop["stale_after_reconnect"]),
        "pubsub_lost_on_both": bool(not r.missed[r.missed.transport == "PubSub"].caught_up.any()),
    }
    return numbers


def threads_ratio(threads: pd.DataFrame) -> pd.Series:
    """Throughput with two threads over one, per server and tool (medians of the repeats)."""
    table = threads.pivot_table(index=["server", "tool"], columns="threads", values="mix_rps")
    return table[2] / table[1]


def _engine_gap(threads: pd.DataFrame) -> pd.DataFrame:
    """Valkey's throughput against Redis's through the same tool and thread count, as a share of Redis's:
    the gap between the medians and the noise (the larger spread of the two, over Redis's median)."""
    engines = threads[threads.server.isin(["redis", "valkey"])].pivot_table(
        index=["tool", "threads"], columns="server", values=["mix_rps", "spread_rps"])
    return pd.DataFrame({"gap": engines.mix_rps.valkey / engines.mix_rps.redis - 1,
                         "noise": engines.spread_rps.max(axis=1) / engines.mix_rps.redis})


def _overhead(r: ValkeyResults, engine: str, layout: str) -> float:
    rows = r.item_bytes[(r.item_bytes.engine == engine) & (r.item_bytes.layout == layout)]
    return float(rows.overhead_pct.iloc[0])


def _beyond(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    """Cases whose engine difference exceeds both the noise and `MARGIN` of Redis's value."""
    table = beyond_noise(frame, by)
    return table.beyond_noise & (table.difference.abs() > MARGIN * table.redis)


def reported(r: ValkeyResults) -> pd.DataFrame:
    """What this machine shows about the engines side by side, reported and not asserted: each comparison is
    within (or near) the spread between its rounds on two shared cores, so no margin of three spreads exists
    to assert it by. One row per comparison: the measured value and the spread between rounds."""
    latency = beyond_noise(r.get_latency, ["family", "variant"])
    gap = _engine_gap(r.threads)
    ratio = threads_ratio(r.threads)
    rows = [{"comparison": f"GET p50 Valkey − Redis, {row.family} {row.variant} (µs)",
             "measured": 1000 * row.difference, "spread": 1000 * row.noise} for row in latency.itertuples()]
    rows += [{"comparison": f"throughput Valkey / Redis − 1, {tool}, io-threads {threads} (%)",
              "measured": 100 * row.gap, "spread": 100 * row.noise} for (tool, threads), row in gap.iterrows()]
    rows += [{"comparison": f"throughput io-threads 2 / 1, {server} through {tool}", "measured": value,
              "spread": math.nan} for (server, tool), value in ratio.items()]
    return pd.DataFrame(rows)


def findings(r: ValkeyResults) -> dict[str, bool | Timing | AllOf]:
    """The chapter's conclusions as statements that must hold. Timings hold only three spreads between rounds
    beyond their thresholds (`experiments.findings`). What the engines' GET latencies and throughputs compare
    to each other, and what a second I/O thread does on two shared cores, describe this machine within its
    noise: they are reported (`reported`), not asserted."""
    h = headline(r)
    fo = r.failover.set_index("engine")
    overhead = fo.promotion_s - fo.down_after_ms / 1000  # per engine's run: promotion after detection
    clusters = r.cluster.set_index("engine")
    layouts = r.item_bytes.pivot_table(index="layout", columns="engine", values="bytes_per_item")
    missed = r.missed.set_index(["engine", "transport"])
    cost = costs(r.item_bytes).set_index(["engine", "deployment"]).usd_per_month
    return {
        "Valkey 8.0 answers as Redis 7.2.4 to clients that check the version": h["valkey_reports_redis"] == "7.2.4",
        "invalidation by pub/sub and by stream reaches the key within 50 ms at p99 on both engines (as the Redis "
        "chapter's)": timing(r.invalidation.p99_ms.max(), below=EVENT_P99_BOUND_MS,
                             spread=float(r.invalidation.p99_spread_ms.max()), unit="ms"),
        "a pub/sub event sent while the subscriber is away is lost on both; a stream's is replayed on both":
            all(not missed.loc[(e, "PubSub"), "caught_up"] and missed.loc[(e, "Stream"), "caught_up"]
                for e in ("redis", "valkey")),
        "both engines promote the replica within detection + 10 s and keep every acknowledged key":
            AllOf((bool((overhead >= 0).all() and (fo.keys_after == fo.keys_before).all()),
                   timing(overhead.max(), below=PROMOTION_BOUND_S, spread=spread_between_rounds(overhead), unit="s"))),
        "both engines lose every DEL acknowledged after the replica was cut off":
            bool((fo.lost_deletes_found == LOST_PROMOTIONS).all() and (fo.replicas_with_delete == 0).all()),
        "one hot key sends all its reads to one cluster node on both engines": bool((clusters.hot_key_share > 0.99).all()),
        "Valkey stores every layout in no more memory than Redis 7.0 (within 1 %)":
            bool((layouts.valkey <= 1.01 * layouts.redis).all()),
        "Valkey's sorted set is at least 20 % smaller than Redis 7.0's (the scores' text)":
            h["zset_bytes_valkey"] <= 0.8 * h["zset_bytes_redis"],
        "jemalloc's size classes cost a 100 KB value over 10 %, memcached's slab under 5 %":
            h["page_overhead_redis_pct"] > 10 and h["page_overhead_memcached_pct"] < 5,
        "redis-py's built-in client cache refuses Redis 7.0 and Valkey 8.0":
            not r.client_cache.redis_py_cache_accepted.any(),
        "glide's cache serves repeated reads locally and sees a change within 10 ms":
            AllOf((h["glide_local_reads"] >= 99,
                   timing(h["glide_change_ms"], below=10, spread=float(r.glide["change_seen_spread_ms"]), unit="ms"))),
        # a lower bound: the stale copy lasts until its TTL runs out, which a busy machine can only make later
        "after a dropped link glide serves a change made meanwhile stale until the entry's TTL; the book's "
        "near cache does not": h["glide_stale_after_drop_s"] >= 0.9 * h["glide_entry_ttl_s"]
        and not h["near_stale_after_reconnect"],
        "the note's catalog fits a Redis OSS primary + replica for less than the note's $400 a month":
            h["redis_pair_usd"] < figure("cache_cost_per_month"),
        "for the note's catalog and traffic, Serverless Valkey is the cheapest deployment":
            cost.idxmin() == ("valkey", "Serverless"),
        "the launch needs more ECPU/s than an empty Serverless cache supports: it must be pre-scaled":
            h["launch_ecpus_per_s"] > h["serverless_floor_ecpus"],
        "the note's 2 KB catalog is below Serverless's storage break-even, its 100 KB documents far above it":
            h["catalog_gb_valkey"] < h["serverless_break_even_gb"] < h["page_catalog_gb_valkey"] / 5,
        "Valkey costs less than Redis OSS in both deployments":
            cost[("valkey", "node-based")] < cost[("redis", "node-based")]
            and cost[("valkey", "Serverless")] < cost[("redis", "Serverless")],
    }


def record_claims(ledger, r: ValkeyResults) -> pd.DataFrame:
    """This chapter's ledger rows: the note's cost figures priced, and the note's Redis row of the summary
    table judged again on Valkey. Each verdict is its rule applied to the measurements."""
    h = headline(r)
    rec = ledger.record
    sizing = ("dax_catalog", "dax_item_bytes")
    reconcile = ("the catalog (500K ASINs at 2 KB) is the note's DAX Q3 sizing of the same store; the price "
                 "is the no-cache scenario's; the store's catalog is one in every scenario")
    rec("valkey.cluster-cost", claim="An ElastiCache cluster costs about $400 a month", seed_value="$400/month",
        measured=(f"${h['redis_pair_usd']:,.0f}/month for the cheapest Redis OSS primary + replica that holds the "
                  f"catalog ({h['redis_pair_nodes']}, {h['catalog_gb_redis']:.2f} GB measured), on-demand us-east-1; "
                  f"Valkey ${h['valkey_pair_usd']:,.0f}; zone-crossing reads add ${h['transfer_usd']:,.0f}"),
        rule=rules.close_to(figure("cache_cost_per_month"), h["redis_pair_usd"], unit="USD/month", tolerance=0.25,
                            partly=0.6),
        inputs=sizing, judges="cache_cost_per_month", reconciled=reconcile, proof=f"{PROOF}#cost-as-aws-publishes-it")
    rec("valkey.cost-share", claim="The cache costs 0.02 % of a $2M sale's revenue", seed_value="0.02 %",
        measured=(f"{h['cost_share_pct']:.4f} % at the priced ${h['redis_pair_usd']:,.0f}/month; it pays for itself "
                  f"if it prevents {h['break_even_s']:.0f} s of outage in a 24-hour sale ({h['seed_break_even_s']:.0f} s "
                  "at the note's $400)"),
        rule=rules.close_to(figure("cost_share_pct"), h["cost_share_pct"], unit="%", tolerance=0.25, partly=0.6),
        inputs=("sale_revenue", "cache_cost_per_month", *sizing), judges="cost_share_pct", reconciled=reconcile,
        proof=f"{PROOF}#cost-as-aws-publishes-it")
    inv_missed = r.missed.set_index(["engine", "transport"])
    valkey_fo = r.failover.set_index("engine").loc["valkey"]
    lost = bool(valkey_fo.lost_deletes_found > 0 and valkey_fo.replicas_with_delete == 0)
    rec("valkey.table.latency", claim="Valkey, like the note's Redis, reads in under 2 ms", seed_value="<2ms",
        measured=(f"2 KB product GET p99 {h['item_get_p99_valkey_ms']:.3f} ms; worst p99 over 5 value sizes "
                  f"{h['worst_get_p99_valkey_ms']:.3f} ms (Redis 7.0: {h['worst_get_p99_redis_ms']:.3f} ms)"),
        rule=rules.at_most(2.0, h["item_get_p99_valkey_ms"], unit="ms"),
        judges="table_cache_latency_ms", proof=f"{PROOF}#one-harness-two-engines")
    rec("valkey.table.invalidation", claim="Valkey invalidates by event (pub/sub), as the note's Redis",
        seed_value="event-driven",
        measured=(f"pub/sub p99 {h['pubsub_p99_valkey_ms']:.2f} ms, at most once as on Redis; a stream with a consumer "
                  f"group replays a missed event (p99 {h['stream_p99_valkey_ms']:.2f} ms)"),
        rule=rules.parts({"pub/sub delivers every event": bool(inv_missed.loc[("valkey", "PubSub"), "caught_up"]),
                          "an event-driven path exists that delivers every event (a Stream)":
                          bool(inv_missed.loc[("valkey", "Stream"), "caught_up"])}),
        proof=f"{PROOF}#one-harness-two-engines")
    rec("valkey.table.consistency", claim="Valkey gives strong consistency (single source), as the note says of Redis",
        seed_value="Strong", measured=(f"{h['lost_deletes_valkey']} acknowledged DELs lost in failover, as on Redis "
                                       f"({h['lost_deletes_redis']}): replication is asynchronous on both"),
        rule=rules.parts({"no acknowledged write was lost in failover": not lost}), proof=f"{PROOF}#one-harness-two-engines")
    rec("valkey.table.failure-risk", claim="On Valkey too a node failure causes 30–60 s of promotion staleness",
        seed_value="30–60 s",
        measured=(f"on ElastiCache a promotion takes \"a few seconds\" (AWS); self-managed with Sentinel here "
                  f"{h['promotion_valkey_s']:.1f} s at 1 s detection (Redis {h['promotion_redis_s']:.1f} s), "
                  f"{h['promotion_default_valkey_s']:.0f} s at Sentinel's default {h['default_down_after_s']:.0f} s; "
                  f"{h['lost_deletes_valkey']} acknowledged DELs lost, each promotion stale for its TTL "
                  f"({figure('promo_ttl_s'):.0f} s) unless replayed"),
        rule=claims.failover_staleness(figure("promo_ttl_s") if lost else 0.0),
        inputs=("promo_ttl_s",), proof=f"{PROOF}#one-harness-two-engines")
    return ledger.table()


def summary_row(h: dict[str, float]) -> pd.DataFrame:
    """The summary table's Valkey row: the note's Redis cells, measured again on Valkey 8.0."""
    beyond = h["get_cases_beyond_noise"]
    latency = "no difference from Redis beyond noise" if beyond == 0 else f"{beyond} sizes differ from Redis beyond noise"
    delivery = "at most once, as on Redis" if h["pubsub_lost_on_both"] else "delivered after a disconnect"
    consistency = "eventual, as Redis" if h["lost_deletes_valkey"] > 0 else "no acknowledged DEL lost"
    return pd.DataFrame([
        {"column": "Latency", "seed": "<2ms (the note's Redis)",
         "measured": f"2 KB GET p99 {h['item_get_p99_valkey_ms']:.2f} ms; {latency}"},
        {"column": "Invalidation", "seed": "Event-driven (SNS pub/sub)",
         "measured": f"event-driven, p99 {h['pubsub_p99_valkey_ms']:.2f} ms; {delivery}"},
        {"column": "Consistency", "seed": "Strong (single source)",
         "measured": f"{consistency}: {h['lost_deletes_valkey']} acknowledged DELs lost in failover"},
        {"column": "Key failure risk", "seed": "Node failure causes 30-60s promotion staleness",
         "measured": (f"ElastiCache promotes in seconds (AWS; Sentinel here {h['promotion_valkey_s']:.1f} s at 1 s detection), "
                      f"but {h['lost_deletes_valkey']} acknowledged DELs were lost, each stale for its TTL unless "
                      "replayed — as on Redis")},
    ])


def noise_table(get_latency: pd.DataFrame, invalidation: pd.DataFrame) -> pd.DataFrame:
    """GET and invalidation timings side by side: each engine's median, the difference, the noise."""
    get = beyond_noise(get_latency, ["family", "variant"]).assign(case=lambda f: "GET " + f.family + " " + f.variant)
    inv = beyond_noise(invalidation, ["path"]).assign(case=lambda f: "event → gone, " + f.path)
    table = pd.concat([get, inv], ignore_index=True)[["case", "redis", "valkey", "difference", "noise"]]
    table[["redis", "valkey", "difference", "noise"]] *= 1000
    table["beyond noise and 25 %"] = list(_beyond(get_latency, ["family", "variant"])) + list(
        _beyond(invalidation, ["path"]))
    return table.rename(columns={"redis": "redis p50 (µs)", "valkey": "valkey p50 (µs)",
                                 "difference": "difference (µs)", "noise": "noise (µs)"})


def bytes_chart_frame(item_bytes: pd.DataFrame) -> pd.DataFrame:
    """Bytes per item as a multiple of the item's own bytes, per engine and layout (for the chart)."""
    frame = item_bytes.assign(ratio=item_bytes.bytes_per_item / item_bytes.own_bytes)
    return frame[["engine", "layout", "ratio"]]
