"""The Memcached chapter's numbers, findings and ledger rows, computed from its experiments' results."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments import rules
from experiments.findings import EVENT_P99_BOUND_MS, Timing, percentile_timing
from experiments.lab import loadgen
from experiments.models import pollmodel
from experiments.probes import coldnode, evictions, hashing, invalidation, listupdates
from experiments.results import Results, declared
from experiments.seed import figure, product_reads_per_min

THROUGHPUT_UNDECIDABLE = ("not decidable here: 2 cores are shared by the server threads and the load generator, and "
                          "the two tools run different mixes (memaslap 90 % GET / 10 % SET, redis-benchmark GET only)")
"""Why the throughput claims stay unverifiable (this chapter's and the summary's large-value row)."""

PROOF = "memcached.ipynb"
SEED_STALE_USERS = figure("stale_coupon_users")
SEED_POLL_S = figure("poll_interval_s")


@dataclass
class MemcachedResults(Results):
    """What the chapter's notebook measured and modelled: each probe's or model's declared table or record
    (`experiments.results`), the queue's event-to-gone latencies (ms, in time order) and the implied rate of
    changes a second."""

    throughput: pd.DataFrame = declared(loadgen.COMPARE_THROUGHPUT)
    queue_ms: np.ndarray
    missed: dict = declared(invalidation.MISSED)
    polling: pd.DataFrame = declared(pollmodel.SWEEP)
    implied_rate: float
    cold: pd.DataFrame = declared(coldnode.REPLACEMENT)
    cold_summary: dict = declared(coldnode.SUMMARY)
    remap_insilico: pd.DataFrame = declared(hashing.REMAP)
    vnodes: pd.DataFrame = declared(hashing.VNODES)
    remap_nodes: pd.DataFrame = declared(hashing.REMAP_ON_NODES)
    lists: pd.DataFrame = declared(listupdates.COMPARE)
    memcached_evictions: dict = declared(evictions.WATCH)
    redis_evictions: dict = declared(evictions.WATCH)


def _rps(r: MemcachedResults, server: str, size: int) -> float:
    t = r.throughput
    return float(t[(t.server == server) & (t.value_bytes == size)].rps.iloc[0])


def headline(r: MemcachedResults) -> dict[str, float]:
    """Numbers quoted by the chapter's prose and the decision record."""
    nodes = r.remap_nodes.set_index("scheme")
    lists = r.lists.set_index("store")
    poll60 = r.polling.set_index("poll_s").loc[int(SEED_POLL_S)]
    big = int(r.throughput.value_bytes.max())
    return {
        "mc_t1_small_rps": _rps(r, "memcached -t 1", 2048), "mc_t2_small_rps": _rps(r, "memcached -t 2", 2048),
        "mc_t4_small_rps": _rps(r, "memcached -t 4", 2048), "redis_small_rps": _rps(r, "redis (1 thread)", 2048),
        "mc_t1_big_rps": _rps(r, "memcached -t 1", big), "mc_t4_big_rps": _rps(r, "memcached -t 4", big),
        "redis_big_rps": _rps(r, "redis (1 thread)", big), "big_kb": big / 1024,
        "queue_p50_ms": float(np.percentile(r.queue_ms, 50)), "queue_p99_ms": float(np.percentile(r.queue_ms, 99)),
        "queue_events": len(r.queue_ms), "queue_missed_stale_s": float(r.missed["stale_window_s"]),
        "implied_rate": r.implied_rate, "poll60_mean_users": float(poll60.simulated_mean_users),
        "poll60_model_users": float(poll60.model_mean_users), "poll60_p95_users": float(poll60.simulated_p95_users),
        "push_stale_users": r.implied_rate * float(np.percentile(r.queue_ms, 99)) / 1000,
        "cold_peak_per_min": r.cold_summary["peak_origin_per_min"],
        "cold_seconds_over": r.cold_summary["seconds_over_capacity"],
        "cold_extra_calls": r.cold_summary["extra_origin_calls"],
        "cold_lowest_hit_pct": 100 * r.cold_summary["lowest_hit_rate"],
        "remap_measured_pct": 100 * float(nodes.loc["rendezvous (pymemcache default)", "moved_fraction"]),
        "remap_modulo_pct": 100 * float(nodes.loc["modulo", "moved_fraction"]),
        "remap_replace_pct": 100 * float(nodes.loc["rendezvous, node replaced", "moved_fraction"]),
        "remap_replace_named_pct": 100 * float(nodes.loc["rendezvous on endpoint names, node replaced", "moved_fraction"]),
        "remap_replace_named_model_pct": 100 * float(nodes.loc["rendezvous on endpoint names, node replaced",
                                                               "analytic_fraction"]),
        "remap_keys": int(r.remap_nodes.keys_used.iloc[0]),
        "storm_per_min": float(nodes.loc["rendezvous (pymemcache default)", "moved_fraction"]) * product_reads_per_min(),
        "product_reads_per_min": product_reads_per_min(),
        "ketama_max_load_200": float(r.vnodes.set_index("vnodes").loc[200, "max_over_mean_load"]),
        "ketama_max_load_1": float(r.vnodes.set_index("vnodes").loc[1, "max_over_mean_load"]),
        "ketama_remap_1": float(r.vnodes.set_index("vnodes").loc[1, "remap_pct"]),
        "ketama_remap_200": float(r.vnodes.set_index("vnodes").loc[200, "remap_pct"]),
        "lost_without_cas": int(lists.loc["Memcached get/set", "lost_updates"]),
        "list_updates": int(lists.loc["Memcached get/set", "updates"]),
        "cas_retries": int(lists.loc["Memcached gets/cas", "retries"]),
        "cas_round_trips": float(lists.loc["Memcached gets/cas", "round_trips_per_update"]),
        "cas_kb": float(lists.loc["Memcached gets/cas", "kb_moved_per_update"]),
        "cas_p99_ms": float(lists.loc["Memcached gets/cas", "p99_ms"]),
        "zadd_p99_ms": float(lists.loc["Redis sorted set", "p99_ms"]),
        "mc_evictions": int(r.memcached_evictions["evictions_counted"]),
        "mc_watch_lines": int(r.memcached_evictions["evictions_named"]),
    }


def findings(r: MemcachedResults) -> dict[str, bool | Timing]:
    """The chapter's conclusions as statements that must hold (asserted; compared by nbval)."""
    h = headline(r)
    agree = (abs(r.polling.simulated_mean_users - r.polling.model_mean_users) <= 0.05 * r.polling.model_mean_users).all()
    lists = r.lists.set_index("store")
    return {
        "an event-driven subscriber deletes the memcached key in < 50 ms at p99": percentile_timing(r.queue_ms, 99,
                                                                                             below=EVENT_P99_BOUND_MS),
        "a queued invalidation survives the subscriber's restart": bool(r.missed["caught_up"]),
        "the polling model and its simulation agree within 5 % at every interval": bool(agree),
        "replacing a node overloaded the catalog for < 60 s, not 8 minutes": h["cold_seconds_over"] < 60,
        "adding a 4th node moved 1/(N+1) of the keys within 1 point (pymemcache default, real nodes)":
            abs(h["remap_measured_pct"] - 25.0) < 1.0,
        "modulo hashing moved over 70 % of the keys": h["remap_modulo_pct"] > 70,
        "replacing a node by a new address moved 40-60 % of the keys (rendezvous)": 40 < h["remap_replace_pct"] < 60,
        "replacing it under its endpoint name lost only its own share, within 2 points":
            abs(h["remap_replace_named_pct"] - h["remap_replace_named_model_pct"]) < 2,
        "200 virtual nodes keep the busiest ring node within 25 % of the mean": h["ketama_max_load_200"] < 1.25,
        "concurrent get/set lost list updates": h["lost_without_cas"] > 0,
        "gets/cas and the Redis sorted set lost none": int(lists.loc["Memcached gets/cas", "lost_updates"]) == 0
            and int(lists.loc["Redis sorted set", "lost_updates"]) == 0,
        "memcached's watch named every eviction its counter counted": h["mc_watch_lines"] == h["mc_evictions"] > 0,
    }


def record_claims(ledger, r: MemcachedResults) -> pd.DataFrame:
    """This chapter's ledger rows; verdicts follow from the measurements."""
    h = headline(r)
    rec = ledger.record
    pushed = h["queue_p99_ms"] < EVENT_P99_BOUND_MS and bool(r.missed["caught_up"])  # an event-driven path works without pub/sub
    rec("memcached.multithreaded", claim="Memcached uses every core; for large values it out-serves single-threaded Redis",
        seed_value="higher throughput per node",
        measured=(f"{h['big_kb']:.0f} KB values: memcached -t 1 {h['mc_t1_big_rps']:,.0f}, -t 4 {h['mc_t4_big_rps']:,.0f}, "
                  f"Redis {h['redis_big_rps']:,.0f} ops/s"),
        rule=rules.unmeasurable(THROUGHPUT_UNDECIDABLE), proof=f"{PROOF}#best-case-throughput-and-large-values")
    rec("memcached.no-subscriber", claim="Without pub/sub the invalidation subscriber cannot exist",
        seed_value="cannot exist",
        measured=f"a queue-fed subscriber deleted the key {h['queue_p99_ms']:.2f} ms after the event (p99)",
        rule=rules.parts({"no subscriber can delete keys on events without pub/sub": not pushed}),
        proof=f"{PROOF}#failure-1-invalidation-without-pub-sub")
    users = figure("stale_coupon_users")
    rec("memcached.40000-users", claim="A 60 s poll shows the expired coupon to 40,000 users",
        seed_value="40,000 users",
        measured=(f"implies {h['implied_rate']:.0f} users/s; at that rate a 60 s poll serves the stale coupon to "
                  f"{h['poll60_mean_users']:,.0f} users on average, {h['poll60_p95_users']:,.0f} at the 95th percentile "
                  "(40,000 only if the event lands just after a poll)"),
        rule=rules.parts({"on average over when the event lands, 40,000 users (within 10 %)":
                          h["poll60_mean_users"] >= 0.9 * users,
                          "in the worst 5 % of landings, 40,000 users (within 10 %)": h["poll60_p95_users"] >= 0.9 * users}),
        inputs=("stale_coupon_users", "poll_interval_s"), proof=f"{PROOF}#failure-1-invalidation-without-pub-sub")
    first_minute = h["cold_extra_calls"] + figure("catalog_capacity_per_min")
    rec("memcached.cold-node", claim="A replaced node sends 15,000 requests/min to the catalog, down for 8 minutes",
        seed_value="15,000/min for 8 min",
        measured=(f"{first_minute:,.0f} catalog requests in the minute after the replacement ({h['cold_extra_calls']:,.0f} "
                  f"extra; one-second peak {h['cold_peak_per_min']:,.0f}/min), over capacity {h['cold_seconds_over']} s; "
                  "cache-aside refills each hot key on its first miss"),
        rule=rules.parts({"15,000 requests reach the catalog in the minute after (within 10 %)":
                          first_minute >= 0.9 * figure("hot_product_requests_per_min"),
                          "the catalog is over capacity for 8 minutes (within 10 %)":
                          h["cold_seconds_over"] >= 0.9 * 60 * figure("cold_outage_minutes")}),
        inputs=("hot_product_requests_per_min", "catalog_capacity_per_min", "planned_hit_rate", "cold_outage_minutes"),
        proof=f"{PROOF}#failure-2-a-cold-replacement-node")
    rec("memcached.remap", claim="Consistent hashing moves only the new node's share of keys",
        seed_value="(question)",
        measured=(f"{h['remap_measured_pct']:.2f} % moved 3→4 nodes on real nodes (1/(N+1) = 25 %); modulo "
                  f"{h['remap_modulo_pct']:.1f} %; replacing a node moved {h['remap_replace_pct']:.1f} %"),
        rule=rules.close_to(25.0, h["remap_measured_pct"], unit="% of keys moved", tolerance=0.04, partly=0.2),
        threshold="theory: a fourth node of four takes 1/4 of the keys", proof=f"{PROOF}#q1-remap-on-adding-a-node")
    rec("memcached.ordered-list", claim="An ordered list in Memcached must be maintained by the application",
        seed_value="(question)",
        measured=(f"get/set lost {h['lost_without_cas']} of {h['list_updates']} concurrent updates; gets/cas lost none "
                  f"but needed {h['cas_retries']} retries, {h['cas_round_trips']:.1f} round trips and "
                  f"{h['cas_kb']:.1f} KB per update"),
        rule=rules.parts({"a plain get/set update loses concurrent updates": h["lost_without_cas"] > 0,
                          "a safe (cas) update costs more than one round trip": h["cas_round_trips"] > 1}),
        proof=f"{PROOF}#q2-an-ordered-list-in-memcached")
    rec("memcached.evictions-unknown", claim="With Memcached you cannot tell which keys were evicted",
        seed_value="(implied by the question)",
        measured=f"`watch evictions` named all {h['mc_watch_lines']} evicted keys; neither server keeps a history",
        rule=rules.parts({"memcached could not name the evicted keys": h["mc_watch_lines"] < h["mc_evictions"]}),
        proof=f"{PROOF}#q3-eviction-observability")
    rec("memcached.table.invalidation", claim="Memcached invalidation is pull-based (polling)",
        seed_value="Pull-based (polling)",
        measured=f"push works: event → key gone {h['queue_p99_ms']:.2f} ms at p99 through a queue-fed subscriber",
        rule=rules.parts({"only polling can invalidate a Memcached key": not pushed}),
        proof=f"{PROOF}#failure-1-invalidation-without-pub-sub")
    rec("memcached.table.failure-risk", claim="The key risk is the promotion-invalidation polling workaround",
        seed_value="polling workaround",
        measured=(f"no workaround is needed; the real risks are no replication and remapping: a replaced node "
                  f"loses {h['remap_replace_named_pct']:.0f} % of keys (its own share) to a client hashing on the "
                  f"endpoint name ElastiCache keeps, {h['remap_replace_pct']:.0f} % to one hashing on addresses"),
        rule=rules.parts({"promotions need a polling workaround": not pushed}),
        proof=f"{PROOF}#failure-2-a-cold-replacement-node")
    return ledger.table()


def summary_row(h: dict[str, float]) -> pd.DataFrame:
    """The seed's summary-table row for Memcached beside the row this chapter measured, from its
    `headline` numbers (which the summary chapter reads back from the results)."""
    return pd.DataFrame([
        {"column": "Latency", "seed": "<2ms", "measured": "<2 ms at p99 for 1–100 KB values (chapter 1)"},
        {"column": "Invalidation", "seed": "Pull-based (polling)",
         "measured": f"event-driven through a queue-fed subscriber: {h['queue_p99_ms']:.2f} ms at p99"},
        {"column": "Consistency", "seed": "Weak (60s staleness window)",
         "measured": "as good as the invalidation path: milliseconds with events; TTL-bounded when events are lost"},
        {"column": "Key failure risk", "seed": "Promo invalidation requires polling workaround",
         "measured": (f"no replication: a replaced node is empty — {h['remap_replace_named_pct']:.0f} % of keys cold "
                      f"with clients hashing on its endpoint name, {h['remap_replace_pct']:.0f} % on addresses; "
                      f"hot keys refill in seconds; lists need cas")},
    ])
