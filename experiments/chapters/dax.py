"""The DAX chapter's numbers, findings and ledger rows, computed from its models' and measurements' results."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments import rules
from experiments.caches.keydesign import load as load_key_design
from experiments.findings import Timing, timing
from experiments.models.cachemodel import hit_probability
from experiments.models.daxmodel import GB, ProjectionWorkload, predict
from experiments.models.daxsim import DEFAULT_TTL_S
from experiments.models.daxstale import RECOMMENDATION
from experiments.probes import tlscost
from experiments.results import Results, declared
from experiments.seed import PRODUCT_READS_INPUTS, figure, product_reads_per_s

PROOF = "dax.ipynb"
SEED_EXPECTED_HIT = figure("dax_expected_hit_rate")
SEED_FAILED_HIT = figure("dax_failed_hit_rate")
SEED_PROJECTIONS = int(figure("dax_projections"))
SEED_NODE_BYTES = figure("dax_node_gb") * GB


def seed_workload(alpha: float = 1.0, projections: int = 1, keyed_by: str = "projection") -> ProjectionWorkload:
    """The seed's product traffic: 500K ASINs of 2 KB, read at the implied rate."""
    return ProjectionWorkload(catalog=int(figure("dax_catalog")), alpha=alpha, reads_per_s=product_reads_per_s(),
                              item_bytes=int(figure("dax_item_bytes")), projections=projections, keyed_by=keyed_by)


@dataclass
class DaxResults(Results):
    """What the chapter modelled and measured: the DAX models' and simulations' tables at the note's figures,
    and the TLS probe's declared table and record (`experiments.results`)."""

    alpha: float
    alpha_85: float
    at_seed: pd.DataFrame
    validation: pd.DataFrame
    region: pd.DataFrame
    alphas: pd.DataFrame
    benchmark: dict
    cold_tail: dict
    stale: pd.DataFrame
    stale_summary: pd.DataFrame
    tls: pd.DataFrame = declared(tlscost.COMPARE)
    tls_overhead: dict = declared(tlscost.OVERHEAD)


def _seed_row(r: DaxResults, reading: str, projections: int) -> pd.Series:
    t = r.at_seed
    return t[(t.reading == reading) & (t.projections == projections)].iloc[0]


def headline(r: DaxResults) -> dict[str, float]:
    """Numbers quoted by the chapter's prose and the decision record."""
    one = _seed_row(r, "seed: entry per projection", 1)
    four = _seed_row(r, "seed: entry per projection", SEED_PROJECTIONS)
    docs = r.at_seed[r.at_seed.reading == "docs: entry per item"].iloc[0]
    stale = r.stale_summary.set_index("path")
    p4 = r.region[r.region.projections == SEED_PROJECTIONS]
    bound = p4[p4.memory_bound & (p4.catalog == int(figure("dax_catalog")))]
    items_per_node = SEED_NODE_BYTES / figure("dax_item_bytes")
    numbers = {
        "alpha": r.alpha, "alpha_85": r.alpha_85,
        "reads_per_s": product_reads_per_s(), "reads_per_min": 60 * product_reads_per_s(),
        "hit_p1_pct": 100 * one.model_hit_rate, "hit_p4_pct": 100 * four.model_hit_rate,
        "sim_hit_p4_pct": 100 * four.simulated_hit_rate, "hit_docs_pct": 100 * docs.model_hit_rate,
        "footprint_p1_gb": one.footprint_gb, "footprint_p4_gb": four.footprint_gb,
        "node_gb": SEED_NODE_BYTES / GB, "origin_ratio": (1 - four.model_hit_rate) / (1 - one.model_hit_rate),
        "seed_origin_ratio": (1 - SEED_FAILED_HIT) / (1 - SEED_EXPECTED_HIT),
        "max_gap_pp": float(pd.concat([r.validation.gap_pp, r.region.gap_pp]).abs().max()),
        "validation_points": len(r.validation) + len(r.region),
        "validation_requests": int(min(r.validation.requests.min(), r.region.requests.min())),
        "replay_per_s": r.benchmark["replay_per_s"], "end_to_end_per_s": r.benchmark["end_to_end_per_s"],
        "region_min_hit_pct": 100 * float(p4.hit_rate.min()),
        "region_bound_min_kb": float(bound.item_kb.min()) if len(bound) else float("nan"),
        "stale_around_mean_s": float(stale.loc["write around DAX", "mean_stale_s"]),
        "stale_around_longest_s": float(stale.loc["write around DAX", "longest_stale_s"]),
        "stale_through_longest_s": float(stale.loc["write through DAX", "longest_stale_s"]),
        "stale_consistent_longest_s": float(stale.loc["write around, price read consistently", "longest_stale_s"]),
        "tls_get_ratio": r.tls_overhead["get_p50_ratio"], "tls_get_extra_us": r.tls_overhead["get_p50_extra_us"],
        "tls_connect_extra_ms": r.tls_overhead["connect_extra_ms"],
        "items_per_node_m": items_per_node / 1e6,
        "items_per_node_binary_m": figure("dax_node_gb") * 2**30 / (figure("dax_item_bytes") / 1000 * 1024) / 1e6,
        "hit_p4_at_85_pct": 100 * predict(seed_workload(r.alpha_85, 4), capacity_bytes=SEED_NODE_BYTES)["hit_rate"],
        "catalog_share_of_node_pct": 100 * figure("dax_catalog") / items_per_node,
        "cold_item_pct": 100 * r.cold_tail["cold_item_share"], "cold_read_pct": 100 * r.cold_tail["cold_read_share"],
        "hot_hit_pct": 100 * float(hit_probability(np.array([1.0]), math.inf, DEFAULT_TTL_S)[0]),
    }
    return {key: value.item() if isinstance(value, np.generic) else value for key, value in numbers.items()}


def price_in_cached_projection() -> bool:
    """Whether the seed's recommendation projection carries a field the key design says is never cached."""
    live = set(load_key_design()["product"].live_fields)
    return bool(live & set(RECOMMENDATION))


def findings(r: DaxResults) -> dict[str, bool | Timing]:
    """The chapter's conclusions as statements that must hold (asserted; compared by nbval)."""
    h = headline(r)
    return {
        "the analytic hit rate is within 2 points of the simulator at every charted point": h["max_gap_pp"] < 2,
        "every simulated point replayed at least 1,000,000 requests": h["validation_requests"] >= 1_000_000,
        "at the seed's numbers, four full-size projections fit in one 13 GB node": h["footprint_p4_gb"] < h["node_gb"],
        "at the seed's numbers, four projections cost less than 10 points of hit rate, not 45":
            h["hit_p1_pct"] - h["hit_p4_pct"] < 10,
        "keyed by item (the documented reading), projections cost nothing": abs(h["hit_docs_pct"] - h["hit_p1_pct"]) < 0.01,
        "hit rates rise with the Zipf exponent, so no popularity gives 85 % with one projection and 40 % with four":
            bool((r.alphas.diff().dropna() > 0).all().all()) and h["hit_p4_pct"] > 40,
        "in the charted region the hit rate with four projections stays above 40 %": h["region_min_hit_pct"] > 40,
        "a price written around DAX stays stale for most of a TTL (> 270 s at worst)": h["stale_around_longest_s"] > 270,
        "written through DAX, or read with ConsistentRead, the price is never stale":
            h["stale_through_longest_s"] == 0 and h["stale_consistent_longest_s"] == 0,
        "the seed's recommendation projection caches price_cents, a field the key design never caches":
            price_in_cached_projection(),
        "TLS adds less than 1 ms to a cache GET at p50 on loopback":
            timing(h["tls_get_extra_us"], below=1000, spread=r.tls_overhead["get_p50_extra_spread_us"], unit="µs"),
    }


def arithmetic(r: DaxResults) -> pd.DataFrame:
    """Every figure of the seed's DAX section beside what its own numbers (or the model) give."""
    h = headline(r)
    return pd.DataFrame([
        {"figure": "catalog requests at 40 % vs 85 % hit", "seed": "2x more than planned",
         "computed": f"{h['seed_origin_ratio']:.1f}x (60 % misses / 15 % misses)"},
        {"figure": "misses that take the 120 ms catalog path", "seed": "60 %",
         "computed": f"{100 * (1 - SEED_FAILED_HIT):.0f} % at the seed's {100 * SEED_FAILED_HIT:.0f} % hit; "
                     f"{100 - h['hit_p4_pct']:.1f} % in the model"},
        {"figure": "memory per ASIN with 4 projections", "seed": "4x",
         "computed": f"4x only if each projected entry is as large as the item: {h['footprint_p4_gb']:.1f} GB vs "
                     f"{h['footprint_p1_gb']:.1f} GB for the whole catalog"},
        {"figure": "memory ceiling on a 13 GB node", "seed": "reached", "computed":
            f"not reached: the 4-projection footprint is {h['footprint_p4_gb']:.1f} GB of {h['node_gb']:.0f} GB"},
        {"figure": "age of evicted entries", "seed": "3 minutes", "computed": "no LRU evictions below 13 GB"},
        {"figure": "items per node at 2 KB", "seed": "(question)",
         "computed": f"{h['items_per_node_m']:.1f} million; the 500K catalog fills {h['catalog_share_of_node_pct']:.1f} %"},
        {"figure": "share of the catalog perpetually a miss", "seed": "(question)",
         "computed": f"0 % for lack of memory; {h['cold_item_pct']:.0f} % of items are read less than once per TTL "
                     f"({h['cold_read_pct']:.0f} % of reads)"},
    ])


DOCUMENTED = {
    "DAX serves only DynamoDB's item and query reads": True,
    "table-management calls go through DAX": False,
    "DAX runs without a cluster of nodes to provision": False,
    "DAX has a per-key invalidation call (InvalidateKey)": False,
    "encryption in transit is an SDK default that older SDKs lack": False,
    "a projection entry is as large as the whole item": False,
}
"""Facts from the DAX developer guide (the chapter's "What DAX is documented to do" cites each page): the
API DAX accepts, its provisioned clusters, its invalidation (TTL, LRU, writes through DAX; no per-key call),
encryption in transit as a cluster setting fixed at creation; a projection returns only the attributes it
names (DynamoDB's ProjectionExpression)."""

NODE_RECONCILED = "the failure scenario names no node size; Q3's 13 GB node is the only one the note gives"
READS_RECONCILED = ("the DAX scenario gives no read rate; the product reads are the Memcached scenario's (a catalog "
                    "sized for 2,000 requests/min at a 95 % hit rate), and the node the Q3's 13 GB")
MODEL_INPUTS = ("dax_expected_hit_rate", "dax_projections", "dax_node_gb", "dax_item_bytes", "dax_catalog",
                *PRODUCT_READS_INPUTS)


def record_claims(ledger, r: DaxResults) -> pd.DataFrame:
    """This chapter's ledger rows; DAX facts cite the documentation (`DOCUMENTED`), model verdicts the
    chapter's cells; each verdict is its rule applied to them."""
    h = headline(r)
    rec = ledger.record

    def doc(*facts: str):
        return rules.parts({fact: DOCUMENTED[fact] for fact in facts})

    rec("dax.requires-dynamodb", claim="DAX only caches data that lives in DynamoDB",
        seed_value="catalog must move to DynamoDB",
        measured="documented: DAX serves GetItem/BatchGetItem/Query/Scan for DynamoDB tables in its region",
        rule=doc("DAX serves only DynamoDB's item and query reads"), proof=f"{PROOF}#what-dax-is-documented-to-do")
    rec("dax.zero-code-changes", claim="Adopting DAX needs no code change in the orchestrator",
        seed_value="zero code changes",
        measured="the DAX client replaces the DynamoDB client; table-management calls must still go to DynamoDB",
        rule=rules.parts({"the DAX client serves the orchestrator's item reads": DOCUMENTED[
                              "DAX serves only DynamoDB's item and query reads"],
                          "table-management calls go through DAX": DOCUMENTED["table-management calls go through DAX"]}),
        proof=f"{PROOF}#what-dax-is-documented-to-do")
    rec("dax.no-service", claim="DAX leaves no separate cache service to manage",
        seed_value="no separate cache service",
        measured="a DAX cluster is provisioned nodes: node type and parameter group are fixed once it runs",
        rule=doc("DAX runs without a cluster of nodes to provision"), proof=f"{PROOF}#what-dax-is-documented-to-do")
    rec("dax.projection-keying", claim="GetItem with a projection is cached as a separate entry per projection",
        seed_value="one entry per projection", measured="the chapter models both readings",
        rule=rules.unmeasurable("cannot be run here; the documentation says items are stored by primary key and "
                                "does not mention projections"),
        proof=f"{PROOF}#failure-projections-and-the-hit-rate")
    ratio = h["footprint_p4_gb"] / h["footprint_p1_gb"]
    rec("dax.memory-4x", claim="Per-projection entries cut memory efficiency 4x",
        seed_value="4x",
        measured=f"an upper bound: {h['footprint_p4_gb']:.1f} vs {h['footprint_p1_gb']:.1f} GB only if every projected "
                 "entry is as large as the whole item",
        rule=rules.parts({"four full-size projection entries take 4x the memory (within 10 %)": abs(ratio - 4) <= 0.4,
                          "a projection entry is as large as the whole item":
                          DOCUMENTED["a projection entry is as large as the whole item"]}),
        inputs=("dax_projections",), proof=f"{PROOF}#the-seed-s-arithmetic")
    rec("dax.memory-ceiling", claim="The DAX node hits its memory ceiling",
        seed_value="ceiling reached",
        measured=f"{h['footprint_p4_gb']:.1f} GB needed for the whole catalog in 4 projections, {h['node_gb']:.0f} GB per node",
        rule=rules.at_least(h["node_gb"], h["footprint_p4_gb"], unit="GB needed (the node's memory)"),
        inputs=("dax_projections", "dax_node_gb", "dax_item_bytes", "dax_catalog"), reconciled=NODE_RECONCILED,
        judges="dax_node_gb", proof=f"{PROOF}#failure-projections-and-the-hit-rate")
    rec("dax.hit-40", claim="Projection-keyed entries bring the hit rate from 85 % to 40 %",
        seed_value="40 % instead of 85 %",
        measured=(f"model {h['hit_p4_pct']:.1f} % (simulated {h['sim_hit_p4_pct']:.1f} %) with 4 projections, "
                  f"{h['hit_p1_pct']:.1f} % with one (the note expects 85 %, which would take a flatter popularity, "
                  f"exponent {h['alpha_85']:.2f}); keyed by item {h['hit_docs_pct']:.1f} %"),
        rule=rules.close_to(100 * SEED_FAILED_HIT, h["hit_p4_pct"], unit="% hit", tolerance=0.1, partly=0.5),
        inputs=("dax_failed_hit_rate", *MODEL_INPUTS), reconciled=READS_RECONCILED,
        judges="dax_failed_hit_rate", proof=f"{PROOF}#failure-projections-and-the-hit-rate")
    rec("dax.evict-3min", claim="DAX evicts entries only 3 minutes old",
        seed_value="3 minutes", measured="no LRU evictions at the seed's numbers: everything fits",
        rule=rules.parts({"the projected catalog overflows the node, so LRU evicts": h["footprint_p4_gb"] > h["node_gb"]}),
        inputs=("dax_eviction_age_min", "dax_projections", "dax_node_gb"), reconciled=NODE_RECONCILED,
        proof=f"{PROOF}#the-seed-s-arithmetic")
    rec("dax.origin-2x", claim="At 40 % hit the catalog sees 2x the planned requests",
        seed_value="2x",
        measured=f"the seed's own hit rates give {h['seed_origin_ratio']:.1f}x; the model {h['origin_ratio']:.2f}x",
        rule=rules.parts({"the note's own hit rates (85 % → 40 %) give 2x (within 10 %)":
                          abs(h["seed_origin_ratio"] - 2) <= 0.2,
                          "the model gives 2x (within 10 %)": abs(h["origin_ratio"] - 2) <= 0.2}),
        inputs=("dax_origin_multiplier", "dax_failed_hit_rate", *MODEL_INPUTS), reconciled=READS_RECONCILED,
        proof=f"{PROOF}#the-seed-s-arithmetic")
    rec("dax.latency-60pct", claim="60 % of recommendation reads go from 3 ms to 120 ms",
        seed_value="60 %", measured=f"{100 - h['hit_p4_pct']:.1f} % of reads miss in the model",
        rule=rules.close_to(60, 100 - h["hit_p4_pct"], unit="% of reads missing", tolerance=0.1, partly=0.5),
        inputs=("dax_cache_latency_ms", *MODEL_INPUTS), reconciled=READS_RECONCILED,
        judges="dax_slow_share", proof=f"{PROOF}#the-seed-s-arithmetic")
    rec("dax.q1-price-refresh", claim="DAX serves a changed price only after the TTL or an InvalidateKey call",
        seed_value="TTL or InvalidateKey",
        measured=(f"written around DAX: stale {h['stale_around_mean_s']:.0f} s on average, up to "
                  f"{h['stale_around_longest_s']:.0f} s; written through DAX: at once; DAX has no InvalidateKey or any "
                  "per-key invalidation call"),
        rule=rules.parts({"written around DAX, the new price is served within the item TTL":
                          h["stale_around_longest_s"] <= DEFAULT_TTL_S + 5,
                          "DAX has a per-key invalidation call (InvalidateKey)":
                          DOCUMENTED["DAX has a per-key invalidation call (InvalidateKey)"]}),
        proof=f"{PROOF}#q1-a-changed-price")
    rec("dax.q1-stale-price", claim="DAX in front of the catalog breaks 'never serve a stale price'",
        seed_value="(implied: it does)",
        measured="the recommendation projection caches price_cents; stale for up to a TTL unless every price write "
                 "goes through DAX or prices are read with ConsistentRead",
        rule=rules.parts({"written around DAX, a stale price is served": h["stale_around_longest_s"] > 0,
                          "the recommendation projection carries the price": "price_cents" in RECOMMENDATION}),
        proof=f"{PROOF}#q1-a-changed-price")
    rec("dax.q2-encryption", claim="DAX traffic is unencrypted by default in older SDK versions",
        seed_value="SDK default",
        measured=(f"encryption in transit is a cluster setting chosen at creation (since June 2021) and cannot be "
                  f"added later; TLS cost measured on Redis: {h['tls_get_extra_us']:+.0f} µs per GET at p50, "
                  f"+{h['tls_connect_extra_ms']:.0f} ms per new connection"),
        rule=doc("encryption in transit is an SDK default that older SDKs lack"), proof=f"{PROOF}#q2-encryption-in-transit")
    rec("dax.q3-node-memory", claim="A DAX node has 13 GB of cache memory",
        seed_value="13 GB", measured="used as given (an r4/r5 large node has 15.25-16 GiB of instance memory)",
        rule=rules.unmeasurable("no per-node cache memory is documented in the pages read"),
        inputs=("dax_node_gb",), proof=f"{PROOF}#q3-capacity")
    rec("dax.q3-perpetual-miss", claim="Part of a 500K-ASIN catalog is perpetually a miss on a 13 GB node",
        seed_value="(question)",
        measured=(f"{h['items_per_node_m']:.1f} M items of 2,000 bytes fit in 13e9 bytes; none misses for lack of memory, "
                  f"but {h['cold_item_pct']:.0f} % of items are read less than once per TTL and mostly miss"),
        rule=rules.parts({"part of the catalog misses for lack of memory":
                          h["items_per_node_m"] * 1e6 < figure("dax_catalog"),
                          "part of the catalog mostly misses (read less than once per TTL)": h["cold_item_pct"] > 10}),
        inputs=("dax_node_gb", "dax_item_bytes", "dax_catalog", *PRODUCT_READS_INPUTS),
        reconciled="the read rate behind the cold tail is the Memcached scenario's product reads",
        proof=f"{PROOF}#q3-capacity")
    rec("dax.heuristic-100k", claim="DAX is effective only for small hot datasets (< 100K items)",
        seed_value="< 100K items",
        measured=f"500K items fill {h['catalog_share_of_node_pct']:.0f} % of a node; the TTL, not the item count, limits hits",
        rule=rules.parts({"500K items overflow the node": h["catalog_share_of_node_pct"] > 100,
                          "the planned hit rate is out of reach for 500K items": h["hit_p1_pct"] < 100 * SEED_EXPECTED_HIT - 1}),
        inputs=("dax_hot_dataset_items", "dax_catalog", "dax_node_gb", "dax_item_bytes"), reconciled=NODE_RECONCILED,
        proof=f"{PROOF}#dax-decision-heuristic")
    rec("dax.best-case-hot-keys", claim="DAX works well when the same keys are read thousands of times",
        seed_value="thousands of reads per key",
        measured=f"an item read once a second hits {h['hot_hit_pct']:.1f} % of the time with the 5-minute TTL",
        rule=rules.at_least(99.0, h["hot_hit_pct"], unit="% hit for a key read once a second", partly=1.1),
        threshold="ours: the hit rate of a cache that holds every hot key (99 %)", proof=f"{PROOF}#q3-capacity")
    rec("dax.table.latency", claim="DAX reads take under 1 ms",
        seed_value="<1ms", measured="Redis on loopback answers in ~0.14 ms, so in-memory sub-ms is plausible",
        rule=rules.unmeasurable("DAX cannot run here: no AWS account or network"),
        proof=f"{PROOF}#q2-encryption-in-transit")
    rec("dax.table.invalidation", claim="DAX invalidates by TTL or explicit key invalidation",
        seed_value="TTL or explicit key invalidation",
        measured="TTL, LRU, or a write through DAX; there is no explicit invalidation call",
        rule=rules.parts({"a TTL ends a stale entry": h["stale_around_longest_s"] <= DEFAULT_TTL_S + 5,
                          "DAX has a per-key invalidation call (InvalidateKey)":
                          DOCUMENTED["DAX has a per-key invalidation call (InvalidateKey)"]}),
        proof=f"{PROOF}#q1-a-changed-price")
    rec("dax.table.consistency", claim="DAX is strongly consistent for DynamoDB-only data",
        seed_value="Strong for DynamoDB-only data",
        measured="documented as eventually consistent: node replication < 1 s, writes around DAX unseen until TTL, "
                 "query cache not updated by writes",
        rule=rules.parts({"no write to DynamoDB leaves DAX serving the old value": h["stale_around_longest_s"] == 0}),
        proof=f"{PROOF}#q1-a-changed-price")
    rec("dax.table.failure-risk", claim="Projection mismatch kills the DAX hit rate",
        seed_value="Projection mismatch kills hit rate",
        measured=f"{h['hit_p1_pct'] - h['hit_p4_pct']:.1f} points lost in the seed's reading, none in the documented one",
        rule=rules.at_least(100 * (SEED_EXPECTED_HIT - SEED_FAILED_HIT), h["hit_p1_pct"] - h["hit_p4_pct"],
                            unit="points of hit rate lost to 4 projections", partly=3),
        inputs=("dax_expected_hit_rate", "dax_failed_hit_rate", *MODEL_INPUTS), reconciled=READS_RECONCILED,
        threshold="the drop the note states, its 85 % expected less its 40 % (two figures)",
        proof=f"{PROOF}#failure-projections-and-the-hit-rate")
    return ledger.table()


def summary_row(h: dict[str, float]) -> pd.DataFrame:
    """The seed's summary-table row for DAX beside the row this chapter modelled, from its
    `headline` numbers (which the summary chapter reads back from the results)."""
    return pd.DataFrame([
        {"column": "Latency", "seed": "<1ms",
         "measured": f"not measurable here (no DAX); TLS changes a GET by {h['tls_get_extra_us']:+.0f} µs on loopback Redis"},
        {"column": "Invalidation", "seed": "TTL or explicit key invalidation",
         "measured": "TTL (5 min default), LRU, or writing through DAX; no invalidation call"},
        {"column": "Consistency", "seed": "Strong for DynamoDB-only data",
         "measured": f"eventual: writes around DAX stay stale up to {h['stale_around_longest_s']:.0f} s; prices get cached"},
        {"column": "Key failure risk", "seed": "Projection mismatch kills hit rate",
         "measured": (f"TTL-bound hit rate ({h['hit_p1_pct']:.0f} % → {h['hit_p4_pct']:.0f} % with 4 projections); "
                      "stale prices written around the cache")},
    ])
