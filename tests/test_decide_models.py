"""The decide engine's models against hand-computed cases: the resident set (closed form and replay), clusters bound
by memory, network and a hot key, transfer in both layouts, staleness under failures, the team's cost, and the
breaking point found by bisection against its closed form."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from experiments.decide import engine, resident, sizing, staleness
from experiments.decide.workload import Family, Team, Workload
from experiments.models import decision, pricing
from experiments.paths import ROOT
from experiments.seed import service_default


def family(**changes) -> Family:
    base = Family(name="f", reads_per_s=100.0, value_kb=10.0, ttl_s=60.0, max_stale_s=600.0, changed_by_events=False,
                  cacheable=True, in_dynamodb=False, keys=1000, zipf_alpha=1e-9)
    return dataclasses.replace(base, **changes)


def workload(*families: Family, **changes) -> Workload:
    base = Workload(name="w", tasks=10, peak_multiple=1.0, turn_budget_ms=2000, origin_capacity_per_s=100.0,
                    origin_latency_ms=20, families=families or (family(),))
    return dataclasses.replace(base, **changes)


def test_the_resident_set_of_a_uniform_catalog_is_lambda_tau_over_one_plus_lambda_tau():
    # 1,000 keys at 0.1 reads/s each, TTL 60 s: each key is resident 6/7 of the time
    assert resident.resident_keys_closed_form(1000, 1e-9, 100.0, 60.0) == pytest.approx(1000 * 6 / 7, rel=1e-6)


def test_the_replayed_resident_set_matches_the_closed_form():
    rng = np.random.default_rng(7)
    keys, rate, ttl, duration = 2000, 50.0, 30.0, 3000.0
    count = rng.poisson(rate * duration)
    times = np.sort(rng.uniform(0, duration, count))
    weights = np.arange(1, keys + 1, dtype=float) ** -0.9
    entry = rng.choice(keys, count, p=weights / weights.sum())
    replayed = resident.resident_keys_replayed(entry, times, ttl)
    closed = resident.resident_keys_closed_form(keys, 0.9, rate, ttl)
    assert replayed == pytest.approx(closed, rel=0.05)


def test_the_note_s_chatbot_holds_ten_thousand_documents_not_its_catalog():
    held = resident.resident_keys_closed_form(500_000, 1.33388, 666.667, 300)
    assert 9_000 < held < 11_000


def demand(**changes) -> sizing.Demand:
    base = sizing.Demand(resident_gb=1.0, primary_reads_per_s=0.0, primary_read_bytes_per_s=0.0,
                         replica_reads_per_s=0.0, replica_read_bytes_per_s=0.0, fills_per_s=0.0, fill_bytes_per_s=0.0)
    return dataclasses.replace(base, **changes)


def test_a_memory_bound_cluster_has_the_shards_its_resident_set_needs():
    # 100 GB on cache.r7g.2xlarge: usable 52.82 x 0.75 = 39.6 GiB, 80 % of it 31.7 GiB -> 100e9/2^30/31.7 = 2.94 -> 3
    s = sizing.size("valkey", demand(resident_gb=100.0), zones=3, node_types=("cache.r7g.2xlarge",))
    usable = 52.82 * (1 - service_default("elasticache_reserved_memory_pct") / 100)
    assert s.shards == math.ceil(100e9 / 2**30 / (usable * sizing.NODE_MAX_UTILIZATION)) == 3
    assert s.binding == "memory" and s.replicas == 1


def test_a_network_bound_cluster_has_the_shards_its_bytes_need():
    # 1 GB/s of primary reads on cache.r7g.large: 0.937 Gbit/s x 0.8 = 93.7 MB/s per node -> 11 shards
    s = sizing.size("valkey", demand(primary_reads_per_s=10_000, primary_read_bytes_per_s=1e9), zones=3,
                    node_types=("cache.r7g.large",))
    assert s.binding == "network" and s.shards == math.ceil(1e9 / (0.937e9 / 8 * 0.8)) == 11
    assert s.utilization["network"] == pytest.approx(1e9 / 11 / (0.937e9 / 8), rel=1e-9)


def test_replica_reads_spread_a_shard_s_bytes_over_its_replicas():
    # the same bytes, readable from replicas: with r replicas a primary carries 1/(1+r) -> fewer, cheaper shards
    primary = sizing.size("valkey", demand(primary_reads_per_s=10_000, primary_read_bytes_per_s=1e9), zones=1,
                          node_types=("cache.r7g.large",))
    replica = sizing.size("valkey", demand(replica_reads_per_s=10_000, replica_read_bytes_per_s=1e9), zones=1,
                          node_types=("cache.r7g.large",))
    assert replica.nodes_usd_per_month < primary.nodes_usd_per_month


def test_a_hot_key_that_one_node_cannot_carry_gets_copies():
    # one key at 300 MB/s on primaries only: 93.7 MB/s per r7g.large node at 80 % -> 4 copies, so 4 shards
    d = demand(primary_reads_per_s=3000, primary_read_bytes_per_s=3e8, hot_key_reads_per_s=3000,
               hot_key_bytes_per_s=3e8)
    s = sizing.size("valkey", d, zones=1, node_types=("cache.r7g.large",))
    assert s.hot_key_copies == math.ceil(3e8 / (0.937e9 / 8 * 0.8)) == 4 and s.shards >= 4


def test_transfer_is_priced_both_ways():
    # 20 MB/s of reads and 0.1 MB/s of fills over 3 zones: 2/3 cross; zone-local keeps the replica reads home
    d = demand(replica_reads_per_s=2000, replica_read_bytes_per_s=2e7, fills_per_s=10, fill_bytes_per_s=1e5)
    month = 3600 * pricing.HOURS_PER_MONTH / 1e9 * 0.01
    assert sizing.transfer(d, zones=3, layout="spread") == pytest.approx(2.01e7 * 2 / 3 * month)
    assert sizing.transfer(d, zones=3, layout="zone-local") == pytest.approx(1e5 * 2 / 3 * month)
    s = sizing.size("valkey", d, zones=3)
    assert s.layout == "zone-local" and s.replicas >= 2  # a replica in each zone pays for itself here


def test_the_breaking_point_found_by_bisection_is_the_closed_form():
    """A uniform catalog of N keys under a TTL τ: misses are N·r/(1 + rτ) with r = mλ/N, so the origin passes
    U·C at m* = (N/λ)·x/(1 − xτ) with x = U·C/N."""
    f = family(keys=1000, reads_per_s=100.0, ttl_s=60.0)
    w = workload(f, origin_capacity_per_s=10.0)
    x = w.origin_max_utilization * w.origin_capacity_per_s / f.keys
    closed = f.keys / f.reads_per_s * x / (1 - x * f.ttl_s)
    assert engine.breaks_at(w, "valkey") == pytest.approx(closed, rel=0.01)
    # no cache: the reads themselves, U·C/λ
    assert engine.breaks_at(w, "no-cache") == pytest.approx(0.8 * 10 / 100, rel=0.01)
    # misses never exceed N/τ = 16.7/s: with a capacity of 25, U·C = 20 is never passed
    assert engine.breaks_at(workload(f, origin_capacity_per_s=25.0), "valkey") == math.inf


def test_a_plan_at_100_percent_of_its_origin_is_not_viable():
    options = [decision.Assessment("a", 0.9, 0.99, 0.0), decision.Assessment("b", 0.9, 0.5, 0.0)]
    ordered = decision.order(options, max_utilization=0.8)
    assert [a.option for a in ordered] == ["b", "a"] and ordered[1].rejected_because


def test_options_rank_by_their_monthly_total_with_the_team_s_work():
    cheap_to_run = decision.Assessment("x", 0.9, 0.5, 0.0, usd_per_month=600.0, team_usd_per_month=0.0)
    cheap_service = decision.Assessment("y", 0.9, 0.5, 0.0, usd_per_month=25.0, team_usd_per_month=1000.0)
    assert [a.option for a in decision.order([cheap_service, cheap_to_run])] == ["x", "y"]
    tie = decision.Assessment("z", 0.9, 0.5, 0.0, usd_per_month=600.0, builds=["one"])
    ordered = decision.order([tie, dataclasses.replace(cheap_to_run)])
    assert ordered[0].option == "x" and "component" in ordered[0].reasons[-1]


def test_the_team_s_work_is_components_over_the_horizon_and_services_run():
    f = family(changed_by_events=True, max_stale_s=5.0, ttl_s=300.0)
    w = workload(f, team=Team(day_usd=1000, days_per_component=12, days_per_service_month=1, horizon_months=12),
                 origin_capacity_per_s=1000.0)
    a, _ = engine.assess(w, "valkey")
    # cache-aside, a stream, a replay, a guarded fill: 4 components x 12 days x $1,000 / 12 months + 1 day a month
    assert len(a.builds) == 4 and a.team_usd_per_month == pytest.approx(4 * 1000 + 1000)


def test_staleness_counts_the_failures_and_their_mitigations():
    tight = family(changed_by_events=True, max_stale_s=1.5, ttl_s=300.0)
    plain = staleness.judge("valkey", tight)
    assert plain.not_cached_because and plain.worst_s == pytest.approx(staleness.RECONNECT_S)
    assert set(plain.mitigations) == {"stream", "replay", "guarded-fill"}
    durable = staleness.judge("valkey-durable", tight)
    assert durable.not_cached_because is None and "replay" not in durable.mitigations
    # a replica read during the promotion misses the lost deletes: replay with replica reads adds the failover
    loose = family(changed_by_events=True, max_stale_s=30.0, ttl_s=300.0)
    assert staleness.judge("valkey", loose).worst_s == pytest.approx(
        staleness.RECONNECT_S + staleness.FAILOVER_S + staleness.REPLICA_LAG_S)
    # a TTL within the limit needs no mitigation
    assert staleness.judge("valkey", family(changed_by_events=True, ttl_s=60.0, max_stale_s=60.0)).mitigations == ()


def test_the_operation_rate_is_below_what_the_book_measured():
    threads = json.loads((ROOT / "tests/recorded/valkey.json").read_text())["threads"]["frame"]["rows"]
    floor = min(r["mix_rps"] - r["spread_rps"] for r in threads if r["server"] in ("redis", "valkey") and r["threads"] == 1)
    assert service_default("node_ops_per_s") <= floor


def test_every_node_type_of_the_price_table_has_its_limits():
    for engine_name in ("redis", "valkey", "memcached"):
        table = sizing.node_table(engine_name)
        assert table[["baseline_gbps", "max_connections", "vcpus"]].notna().all().all()


def test_the_hot_key_s_shard_carries_the_rest_of_its_share_too():
    """The busiest node holds the hottest key and the average shard's share of the rest: sized so that node stays
    within 80 %, and that is the utilization reported."""
    d = demand(primary_reads_per_s=30_000, primary_read_bytes_per_s=3e9, hot_key_reads_per_s=2_850,
               hot_key_bytes_per_s=2.85e8)
    s = sizing.size("memcached", d, zones=3, min_replicas=0, node_types=("cache.m7g.xlarge",))
    per_node = 1.876e9 / 8
    busiest = (3e9 - 2.85e8) / s.shards + 2.85e8 / s.hot_key_copies
    assert busiest <= 0.8 * per_node and s.utilization["network"] == pytest.approx(busiest / per_node)
    fewer = s.shards - 1  # one shard fewer would overload the hot key's node whatever the copies (up to shards)
    assert all((3e9 - 2.85e8) / fewer + 2.85e8 / c > 0.8 * per_node for c in range(1, fewer + 1))


def test_a_small_catalog_is_modelled_as_it_is():
    """20 keys at 1 read/s each under a 60 s TTL: 60/61 of reads hit — not a catalog padded to the model's minimum."""
    f = family(keys=20, reads_per_s=20.0, ttl_s=60.0)
    assert engine.family_hit(workload(f), f, "valkey") == pytest.approx(60 / 61, rel=1e-3)


def test_a_memcached_cluster_survives_losing_a_node():
    """Losing one of n nodes turns 1/n of the hits into misses: n is at least hits / (capacity − load)."""
    f = family(reads_per_s=1000.0, keys=100, ttl_s=600.0)
    w = workload(f, origin_capacity_per_s=300.0)
    a, numbers = engine.assess(w, "memcached")
    hits = 1000.0 * a.hit_rate
    nodes = numbers["cluster"]["nodes"]
    assert a.origin_load * 300.0 + hits / nodes <= 300.0 < a.origin_load * 300.0 + hits / (nodes - 1)
    assert numbers["cluster"]["binding"] == "node loss"


def test_pre_scaling_is_asked_for_only_before_a_peak():
    f = family(reads_per_s=1000.0, value_kb=100.0, keys=100, ttl_s=600.0)
    steady, _ = engine.assess(workload(f, origin_capacity_per_s=1000.0), "valkey-serverless")
    peaky, _ = engine.assess(workload(f, origin_capacity_per_s=1000.0, peak_multiple=2.0), "valkey-serverless")
    assert not any("pre-scaling" in b for b in steady.builds) and any("pre-scaling" in b for b in peaky.builds)


def test_the_planned_cluster_fills_at_the_multiple_its_busiest_node_allows():
    w = workload(family(), peak_multiple=2.0)
    cluster = {"utilization": {"memory": 0.9, "network": 0.4, "ops": 0.2, "connections": 0.01}}
    assert engine.cluster_full_at(w, cluster) == pytest.approx(2.0 * 0.8 / 0.4)
    assert engine.cluster_full_at(w, None) is None


@pytest.mark.parametrize("name", ["3 stock & levels (EU) for the big warehouse network", "DynamoDB hot set", "ünïcode"])
def test_deployment_names_follow_aws_rules(name):
    from experiments.decide import spec
    for limit in (20, 40):
        made = spec.cluster_name(name, limit=limit)
        assert len(made) <= limit and made[0].isalpha() and "--" not in made and made.endswith("-cache")
        assert all(c.isascii() and (c.isalnum() or c == "-") for c in made)
