"""The chosen option as a deployment an operator could type in: engine and version, node type, shards, replicas,
durability, eviction policy, client timeouts — and the AWS CLI command that creates it.

Versions are the lowest that carry what the option relies on: Valkey 8.1 for the guarded fill (``SET … IFEQ``),
9.0 for durability and DynamoDB caching, Redis OSS 7.1 (the last ElastiCache sells), memcached 1.6. The client
on the turn's path connects within AWS's sample 100 ms; its command timeout is derived
(`experiments.models.timeouts.plan`): above what a GET that lost one packet waits for TCP's retransmission,
plus 10 ms for a healthy read across zones, rounded up to 50 ms, with no retries, and checked against the
workload's turn budget with the origin's p99 behind it — the plan says at which budget a dead cache would break
the turn. The invalidator keeps its own client with AWS's redis-py sample (a 2 s socket timeout), whose reconnect
sets what a replay leaves stale (`experiments.decide.staleness.RECONNECT_S`). Every key carries a TTL, so
``volatile-lru`` (ElastiCache's default) evicts among them. Names follow AWS's rules: a letter first, letters,
digits and single hyphens, at most 40 characters (20 for DAX).
"""

from __future__ import annotations

from experiments.decide.workload import Workload
from experiments.models import timeouts as timeout_model
from experiments.seed import origin_table, service_default

VERSIONS = {"redis": "7.1", "valkey": "8.1", "valkey-durable": "9.0", "near-cache": "8.1", "read-through": "7.1",
            "memcached": "1.6.22", "valkey-serverless": "8", "valkey-dynamodb": "9"}
WARM_TTL_JITTER = 0.5
"""The TTL jitter (±, a share of the TTL) for keys warmed together before a peak. A key filled on a miss needs
none: misses arrive spread out, so their expiries are too. N keys warmed at once with TTLs drawn uniformly from
TTL·(1 ± j) expire over a window 2·j·TTL wide, at N / (2·j·TTL) a second; at j = ½ that is N / TTL, the rate at
which a cache in its steady state refills the same N resident keys anyway (the misses the plan already counts)."""
ORIGIN_SIGMA = float(origin_table().latency_sigma.max())
"""The spread of an origin call's latency (log-normal shape, ``data/origins.csv``): a workload gives the median."""


def timeout_plan(w: Workload) -> timeout_model.TimeoutPlan:
    """The turn's cache timeout for ``w``: its budget, and its origin's p99 behind a dead cache."""
    return timeout_model.plan(budget_s=w.turn_budget_ms / 1000,
                              origin_p99_s=timeout_model.origin_p99_s(w.origin_latency_ms / 1000, ORIGIN_SIGMA))


def cluster_name(workload_name: str, *, limit: int = 40) -> str:
    """A name AWS accepts for the workload's cache: a letter first, then letters, digits and single hyphens."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in workload_name.lower()).split()
    base = "-".join(words)
    base = base if base[:1].isalpha() else ("c-" + base).rstrip("-")
    return base[:limit - len("-cache")].rstrip("-") + "-cache"


def deployment(w: Workload, option: str, numbers: dict) -> dict | None:
    """The option's deployment as fields and a CLI command (None for no cache and per-task caches, which deploy
    with the application)."""
    plan = timeout_plan(w)
    timeouts = {"connect_timeout_s": service_default("elasticache_client_connect_timeout_s"),
                "command_timeout_s": plan.command_timeout_s, "retries": plan.retries,
                "dead_cache_turn_s": round(plan.dead_cache_turn_s, 3),
                "timeout_breaks_below_budget_s": round(plan.budget_breaks_below_s, 3),
                "invalidator_socket_timeout_s": service_default("elasticache_client_socket_timeout_s")}
    if not plan.fits:
        timeouts["timeout_warning"] = (
            f"a dead cache costs a turn {plan.dead_cache_turn_s:.2f} s (the {plan.command_timeout_s:.2f} s timeout, "
            f"then the origin's p99), {100 * plan.budget_used:.0f} % of its {plan.budget_s:g} s budget: over "
            f"{100 * timeout_model.BUDGET_SHARE:.0f} %; a lost packet alone costs up to {timeout_model.LOST_PACKET_S:.2f} s, "
            f"so read the cache off the turn's path (a per-task copy, a breaker) or lengthen the budget")
    name = cluster_name(w.name)
    if option in ("valkey-serverless", "valkey-dynamodb"):
        cli = (f"aws elasticache create-serverless-cache --serverless-cache-name {name} --engine valkey "
               f"--major-engine-version {VERSIONS[option]}")
        spec = {"engine": "valkey", "version": VERSIONS[option], "deployment": "serverless", **timeouts, "cli": cli}
        if option == "valkey-dynamodb":
            spec["dynamodb_caching"] = ("enable DynamoDB caching when the cache is created (it cannot be added later); "
                                        "the pages read (2026-12-07) do not give its CLI option")
        if any("pre-scaling" in b for b in numbers.get("builds", [])):
            spec["prescale"] = (f"aws elasticache modify-serverless-cache --serverless-cache-name {name} "
                                f"--cache-usage-limits 'ECPUPerSecond={{Minimum=<peak ECPU/s>}}' an hour before each peak")
        return spec
    cluster = numbers.get("cluster")
    if option == "dax" and cluster:
        dax = cluster_name(w.name, limit=20)
        return {"engine": "dax", "node_type": cluster["node_type"], "nodes": cluster["nodes"], **timeouts,
                "cli": f"aws dax create-cluster --cluster-name {dax} --node-type {cluster['node_type']} "
                       f"--replication-factor {cluster['nodes']} --iam-role-arn <role>"}
    if not cluster or option not in VERSIONS:
        return None
    engine = {"redis": "redis", "read-through": "redis", "memcached": "memcached"}.get(option, "valkey")
    durable = option == "valkey-durable"
    zone_local = cluster["layout"] == "zone-local"
    spec = {"engine": engine, "version": VERSIONS[option], "node_type": cluster["node_type"],
            "shards": cluster["shards"], "replicas": cluster["replicas"], "nodes": cluster["nodes"],
            "reads": "a replica in each zone serves its zone's reads" if zone_local else "spread",
            "durability": "sync" if durable else "none", **timeouts}
    if engine == "memcached":
        spec["cli"] = (f"aws elasticache create-cache-cluster --cache-cluster-id {name} --engine memcached "
                       f"--engine-version {VERSIONS[option]} --cache-node-type {cluster['node_type']} "
                       f"--num-cache-nodes {cluster['nodes']} --az-mode cross-az")
        return spec
    spec["maxmemory_policy"] = "volatile-lru"
    placement = ""
    if zone_local:  # one node of every shard in each zone: a primary in one, its replicas in the others
        zones = [f"<zone-{chr(ord('a') + i)}>" for i in range(cluster["replicas"] + 1)]
        groups = " ".join(f"NodeGroupId={i + 1:04d},PrimaryAvailabilityZone={zones[i % len(zones)]},"
                          f"ReplicaAvailabilityZones={','.join(z for z in zones if z != zones[i % len(zones)])}"
                          for i in range(cluster["shards"]))
        placement = f" --node-group-configuration {groups}"
    spec["cli"] = (f"aws elasticache create-replication-group --replication-group-id {name} "
                   f"--replication-group-description \"{w.name}\" --engine {engine} --engine-version {VERSIONS[option]} "
                   f"--cache-node-type {cluster['node_type']} --num-node-groups {cluster['shards']} "
                   f"--replicas-per-node-group {cluster['replicas']} --cluster-mode enabled --multi-az-enabled "
                   f"--automatic-failover-enabled --transit-encryption-enabled" + (" --durability sync" if durable else "")
                   + placement)
    return spec
