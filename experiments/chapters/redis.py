"""The Redis chapter's numbers, findings and ledger rows, computed from its experiments' results.

The chapter collects its results in one `RedisResults`; `headline` gives the numbers its prose
quotes (glued), `findings` the statements it asserts, `record_claims` the ledger rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments import claims, rules
from experiments.findings import EVENT_P99_BOUND_MS, AllOf, Timing, percentile_timing, timing
from experiments.measure import spread_between_rounds
from experiments.models import extrapolate
from experiments.models.extrapolate import PROMOTION_BOUND_S
from experiments.probes import evictions, failover, invalidation, scaleout, structures
from experiments.results import Results, declared
from experiments.seed import service_default

PROOF = "redis.ipynb"

IO_THREADS_SINCE = 6.0
EXECUTION_SINGLE_THREADED = True
"""Documented, not measured (a throughput comparison on two shared cores would decide nothing): threaded I/O
(``io-threads``) came with Redis 6.0, and command execution stays on one thread (Redis 6.0 release notes;
redis.conf, "THREADED I/O")."""


@dataclass
class RedisResults(Results):
    """What the chapter's notebook measured: each probe's declared table or record (`experiments.results`), and
    the event-to-gone latencies (ms, in time order) of pub/sub and of the stream."""

    product_layouts: pd.DataFrame = declared(structures.LAYOUTS)
    reco_layouts: pd.DataFrame = declared(structures.LAYOUTS)
    pubsub_ms: np.ndarray
    stream_ms: np.ndarray
    ttl_only: pd.DataFrame = declared(invalidation.TTL_ONLY)
    missed: pd.DataFrame = declared(invalidation.MISSED)
    failovers: pd.DataFrame = declared(failover.SWEEP)
    lost: dict = declared(failover.LOST)
    placement: pd.DataFrame = declared(scaleout.PLACEMENT)
    hot_key: pd.DataFrame = declared(scaleout.HOT_KEY)
    throughput: pd.DataFrame = declared(scaleout.THROUGHPUT)
    evictions: dict = declared(evictions.WATCH)
    near_at_rate: dict = declared(scaleout.NEAR_AT_RATE)


def _layout(frame: pd.DataFrame, layout: str, read_prefix: str, column: str) -> float:
    rows = frame[(frame.layout == layout) & frame.read.str.startswith(read_prefix)]
    return float(rows[column].iloc[0])


def _lost_acknowledged(lost: dict) -> bool:
    """The primary acknowledged the invalidations, no replica had them, and the promoted replica still held some."""
    return lost["deletes_acknowledged"] > 0 and lost["replicas_with_delete"] == 0 and lost["lost_deletes_found"] > 0


def promotion_at_default(failovers: pd.DataFrame) -> dict[str, float]:
    """Time to promotion at Sentinel's documented 30 s detection time: the detection time plus the overhead
    measured beyond it (`experiments.models.extrapolate.after_detection`); the book runs 1-2 s detections to
    stay fast."""
    default_s = service_default("sentinel_down_after_ms") / 1000
    line = extrapolate.after_detection(failovers.down_after_ms / 1000, failovers.promotion_s, default_s)
    return {"default_down_after_s": default_s, "promotion_slope": line["slope"],
            "promotion_overhead_s": line["overhead_s"], "promotion_at_default_s": line["value_s"]}


def headline(r: RedisResults) -> dict[str, float]:
    """Numbers quoted by the chapter's prose and by the decision record."""
    base = r.failovers.sort_values("down_after_ms").iloc[0]
    shards = r.placement.shard.value_counts()
    hot = r.hot_key.set_index("setup")
    return {
        "string_bytes": _layout(r.product_layouts, "JSON string", "recommendation", "memory_bytes"),
        "hash_bytes": _layout(r.product_layouts, "hash", "recommendation", "memory_bytes"),
        "string_returned": _layout(r.product_layouts, "JSON string", "recommendation", "bytes_returned"),
        "hash_returned": _layout(r.product_layouts, "hash", "recommendation", "bytes_returned"),
        "reco_string_bytes": float(r.reco_layouts.memory_bytes.iloc[0]),
        "zset_bytes": float(r.reco_layouts.memory_bytes.iloc[1]),
        "events": len(r.pubsub_ms),
        "pubsub_p50_ms": float(np.percentile(r.pubsub_ms, 50)),
        "pubsub_p99_ms": float(np.percentile(r.pubsub_ms, 99)),
        "pubsub_max_ms": float(np.max(r.pubsub_ms)),
        "stream_p50_ms": float(np.percentile(r.stream_ms, 50)),
        "stream_p99_ms": float(np.percentile(r.stream_ms, 99)),
        "product_mean_stale_s": float(r.ttl_only.set_index("family").loc["product", "mean_stale_s"]),
        "ttl_vs_event_ratio": float(r.ttl_only.set_index("family").loc["product", "mean_stale_s"])
        / (float(np.percentile(r.pubsub_ms, 99)) / 1000),
        "promo_max_stale_s": float(r.ttl_only.set_index("family").loc["promo", "max_stale_s"]),
        "missed_pubsub_stale_s": float(r.missed.set_index("transport").loc["PubSub", "stale_window_s"]),
        "missed_stream_stale_s": float(r.missed.set_index("transport").loc["Stream", "stale_window_s"]),
        "downtime_s": float(r.missed.downtime_s.iloc[0]),
        "base_down_after_ms": float(base.down_after_ms),
        "promotion_s": float(base.promotion_s),
        **promotion_at_default(r.failovers),
        "first_read_s": float(base.first_read_s),
        "keys_before": int(base.keys_before),
        "keys_after": int(base.keys_after),
        "lost_promotion_s": float(r.lost["promotion_s"]),
        "lost_stale_s": float(r.lost["stale_for_s_without_mitigation"]),
        "replay_stale_s": float(r.lost["stale_for_s_with_replay"]),
        "lost_deletes": int(r.lost["lost_deletes_found"]),
        "replayed_deletes": int(r.lost["invalidations_replayed"]),
        "stale_reads_seen": int(r.lost["stale_reads_seen"]),
        "hot_shard_max": int(shards.max()),
        "hot_shard_min": int(shards.min()),
        "hot_key_share_pct": 100 * float(hot.iloc[0].busiest_node_share),
        "replica_share_pct": 100 * float(hot.iloc[1].busiest_node_share),
        "near_cache_server_commands": int(hot.iloc[2].server_commands),
        "hot_reads": int(hot.iloc[0].reads),
        "single_rps": float(r.throughput.set_index("setup").iloc[0].rps),
        "cluster_rps": float(r.throughput.set_index("setup").iloc[1].rps),
        "io_threads_rps": float(r.throughput.set_index("setup").iloc[2].rps),
        "near_rate_reads_per_task_s": float(r.near_at_rate["reads_per_task_s"]),
        "near_rate_saved_pct": 100 * float(r.near_at_rate["saved_share"]),
        "near_rate_model_saved_pct": 100 * float(r.near_at_rate["model_saved_share"]),
        "near_rate_time_scale": float(r.near_at_rate["time_scale"]),
        "evicted_counter": int(r.evictions["evictions_counted"]),
        "evicted_notified": int(r.evictions["evictions_named"]),
    }


def findings(r: RedisResults) -> dict[str, bool | Timing | AllOf]:
    """The chapter's conclusions as statements that must hold; timings hold only three spreads between rounds
    beyond their thresholds (`experiments.findings`)."""
    h = headline(r)
    overhead = r.failovers.promotion_s - r.failovers.down_after_ms / 1000  # promotion after detection, per run
    stream = percentile_timing(r.stream_ms, 99, below=1000)  # one delivery: what a catch-up adds to the downtime
    missed = r.missed.set_index("transport")
    return {
        "a hash read for the recommendation intent returns under 10 % of the JSON string's bytes":
            h["hash_returned"] < 0.1 * h["string_returned"],
        "a sorted set holds the recommendation list in less memory than its JSON string":
            h["zset_bytes"] < h["reco_string_bytes"],
        "pub/sub invalidation reaches the key in < 50 ms at p99":
            percentile_timing(r.pubsub_ms, 99, below=EVENT_P99_BOUND_MS),
        "event-driven invalidation is over 1000x faster than waiting for the product TTL":
            percentile_timing(r.pubsub_ms, 99, below=h["product_mean_stale_s"]),
        "a pub/sub invalidation sent while the subscriber is away is lost":
            not missed.loc["PubSub", "caught_up"] and bool(missed.loc["PubSub", "stale_after_restart"]),
        "a stream invalidation sent while the subscriber is away is applied when it returns":
            AllOf((bool(missed.loc["Stream", "caught_up"]),
                   timing(h["missed_stream_stale_s"], below=h["downtime_s"] + 1, spread=stream.spread / 1000, unit="s"))),
        "every key survived the primary's SIGKILL on the promoted replica": h["keys_after"] == h["keys_before"],
        "promotion came after the detection time and within detection + 10 s in every run":
            AllOf((bool((overhead >= 0).all()),
                   timing(overhead.max(), below=PROMOTION_BOUND_S, spread=spread_between_rounds(overhead), unit="s"))),
        "every DEL acknowledged after the replica was cut off was lost in failover, and only those":
            _lost_acknowledged(r.lost) and r.lost["lost_deletes_found"] == r.lost["deletes_acknowledged"]
            and bool(r.lost["lost_were_after_cut"]),
        "the durable log's replay removed every lost invalidation, and no read saw one after it":
            bool(r.lost["gone_after_replay"]) and not r.lost["stale_read_after_replay"],
        "the top-100 products spread over all 3 shards": r.placement.shard.nunique() == 3,
        "one hot key sends over 99 % of its reads to one node": h["hot_key_share_pct"] > 99,
        "reading from replicas leaves the busiest node under 60 % of the reads": h["replica_share_pct"] < 60,
        "read in a burst, a 1 s near cache cuts the server reads of a hot key by over 99 %":
            h["near_cache_server_commands"] < 0.01 * h["hot_reads"],
        "at one task's share of the note's hot-key traffic, it saves its model's share within 20 points":
            abs(h["near_rate_saved_pct"] - h["near_rate_model_saved_pct"]) < 20,
        "at that rate it saves under three quarters of the reads, not almost all": h["near_rate_saved_pct"] < 75,
        "every eviction was counted and named by a notification": h["evicted_counter"] == h["evicted_notified"] > 0,
    }


def record_claims(ledger, r: RedisResults) -> pd.DataFrame:
    """This chapter's ledger rows: each verdict is its rule applied to the measurements."""
    h = headline(r)
    rec = ledger.record
    missed = r.missed.set_index("transport")
    lost_ack = _lost_acknowledged(r.lost)
    rec("redis.structures", claim="Redis structures fit the key design: hashes for objects, sets for recommendation lists",
        seed_value="Hashes; Sets",
        measured=(f"a hash cuts the recommendation read from {h['string_returned']:.0f} B to {h['hash_returned']:.0f} B "
                  f"but stores {h['hash_bytes']:.0f} B against {h['string_bytes']:.0f} B; a Set has no order, a sorted set "
                  f"does ({h['zset_bytes']:.0f} B vs {h['reco_string_bytes']:.0f} B as JSON)"),
        rule=rules.parts({"a hash returns a projection in fewer bytes than the JSON string":
                          h["hash_returned"] < h["string_returned"],
                          "a hash stores the product in no more memory than the JSON string":
                          h["hash_bytes"] <= h["string_bytes"],
                          # documented, not measured: a Redis Set is unordered (redis.io, "Redis sets")
                          "a Set keeps the recommendation list's order": False}),
        proof=f"{PROOF}#data-structures-for-the-key-design")
    layouts = pd.concat([r.product_layouts, r.reco_layouts])
    rec("redis.ttl-per-key", claim="Each key carries its own TTL",
        seed_value="TTL per key",
        measured=(f"every key read back a TTL of its own family's ({layouts.ttl_s.min()}–{layouts.ttl_s.max()} s left "
                  f"of {layouts.design_ttl_s.min()}–{layouts.design_ttl_s.max()} s) after SET EX / EXPIRE"),
        rule=rules.parts({"every key read back a TTL no longer than its family's":
                          bool(((layouts.ttl_s > 0) & (layouts.ttl_s <= layouts.design_ttl_s)).all())}),
        proof=f"{PROOF}#data-structures-for-the-key-design")
    rec("redis.pubsub-invalidation", claim="Pub/sub invalidation makes a change visible at once",
        seed_value="event-driven",
        measured=(f"p50 {h['pubsub_p50_ms']:.2f} ms, p99 {h['pubsub_p99_ms']:.2f} ms over {h['events']} events; "
                  f"but an event sent while the subscriber is away is lost: stale for {h['missed_pubsub_stale_s']:.0f} s"),
        rule=rules.parts({"an event reaches the key within 50 ms at p99": h["pubsub_p99_ms"] < EVENT_P99_BOUND_MS,
                          "an event sent while the subscriber is away still arrives": bool(missed.loc["PubSub", "caught_up"])}),
        proof=f"{PROOF}#at-most-once-delivery")
    rec("redis.failover-warm", claim="A promoted replica already holds every key: no warm-up",
        seed_value="warm-up time zero",
        measured=(f"{h['keys_after']}/{h['keys_before']} keys after SIGKILL, every write acknowledged by the replica "
                  f"(WAIT) before the kill; reads back after {h['first_read_s']:.1f} s. Writes in flight at the kill "
                  "are the next experiment's: an acknowledged DEL lost"),
        rule=rules.parts({"every key acknowledged before the kill was on the promoted replica":
                          h["keys_after"] == h["keys_before"],
                          "a write acknowledged by the primary alone survived the failover": not lost_ack}),
        proof=f"{PROOF}#failover")
    rec("redis.table.consistency", claim="Redis gives strong consistency (single source)",
        seed_value="Strong", measured=(f"an acknowledged DEL was lost in failover; the promoted replica served the "
                                       f"stale promotion, which would have lasted {h['lost_stale_s']:.0f} s (its TTL)"),
        rule=rules.parts({"no acknowledged write was lost in failover": not lost_ack}),
        proof=f"{PROOF}#an-acknowledged-invalidation-lost-in-failover")
    rec("redis.table.failure-risk", claim="A node failure causes 30–60 s of promotion staleness",
        seed_value="30–60 s",
        measured=(f"on ElastiCache a promotion takes \"a few seconds\" (AWS); self-managed with Sentinel here "
                  f"{h['promotion_s']:.1f} s at {h['base_down_after_ms']:.0f} ms detection, {h['promotion_at_default_s']:.0f} s "
                  f"at Sentinel's default {h['default_down_after_s']:.0f} s; an invalidation lost in the failover "
                  f"stays stale for the TTL ({h['lost_stale_s']:.0f} s)"),
        rule=claims.failover_staleness(h["lost_stale_s"] if lost_ack else 0.0),
        proof=f"{PROOF}#failover")
    rec("redis.table.invalidation", claim="Invalidation is event-driven (SNS pub/sub)",
        seed_value="event-driven", measured="pub/sub is at-most-once; a Stream with a consumer group catches up "
                                            f"({h['missed_stream_stale_s']:.1f} s stale after {h['downtime_s']:.1f} s away)",
        rule=rules.parts({"pub/sub delivers every event": bool(missed.loc["PubSub", "caught_up"]),
                          "an event-driven path exists that delivers every event (a Stream)":
                          bool(missed.loc["Stream", "caught_up"])}),
        proof=f"{PROOF}#at-most-once-delivery")
    rec("redis.cluster-scaling", claim="Cluster mode scales Redis horizontally",
        seed_value="cluster mode",
        measured=(f"the top-100 keys spread {h['hot_shard_min']}–{h['hot_shard_max']} per shard, but one hot key sends "
                  f"{h['hot_key_share_pct']:.1f} % of its reads to one node; 2 cores cannot show throughput scaling"),
        rule=rules.parts({"the hot keys spread over every shard": h["hot_shard_min"] > 0,
                          "one hot key's reads spread over more than one node": h["hot_key_share_pct"] < 99}),
        inputs=("hot_products",), proof=f"{PROOF}#scale-out")
    rec("redis.io-threads", claim="Redis 7+ adds threaded I/O; command execution stays single-threaded",
        seed_value="Redis 7+",
        measured=(f"threaded I/O (io-threads) arrived in Redis 6.0; execution is single-threaded. Here: "
                  f"{h['single_rps']:.0f} rps with 1 thread, {h['io_threads_rps']:.0f} rps with io-threads 2 (2 cores)"),
        rule=rules.parts({"io-threads is a Redis 7 addition": IO_THREADS_SINCE >= 7,
                          "command execution stays single-threaded": EXECUTION_SINGLE_THREADED}),
        proof=f"{PROOF}#threads")
    return ledger.table()


def summary_row(h: dict[str, float]) -> pd.DataFrame:
    """The seed's summary-table row for Redis beside the row this chapter measured, from its
    `headline` numbers (which the summary chapter reads back from the results)."""
    return pd.DataFrame([
        {"column": "Latency", "seed": "<2ms",
         "measured": f"event → key gone p99 {h['pubsub_p99_ms']:.2f} ms; GET p99 well under 1 ms on loopback (chapter 1)"},
        {"column": "Invalidation", "seed": "Event-driven (SNS pub/sub)",
         "measured": f"event-driven, p99 {h['pubsub_p99_ms']:.2f} ms — but at-most-once: a missed event is stale until its TTL"},
        {"column": "Consistency", "seed": "Strong (single source)",
         "measured": "eventual: replication is asynchronous; an acknowledged DEL can be lost in failover"},
        {"column": "Key failure risk", "seed": "Node failure causes 30-60s promotion staleness",
         "measured": (f"failover {h['promotion_s']:.1f} s with {h['base_down_after_ms']:.0f} ms detection, all keys kept; "
                      f"lost invalidations stale for up to the TTL ({h['lost_stale_s']:.0f} s) unless replayed")},
    ])
