"""The chosen option as a deployment an operator could type in: engine and version, node type, shards, replicas,
durability, eviction policy, client timeouts — and the AWS CLI command that creates it.

Versions are the lowest that carry what the option relies on: Valkey 8.1 for the guarded fill (``SET … IFEQ``),
9.0 for durability and DynamoDB caching, Redis OSS 7.1 (the last ElastiCache sells), memcached 1.6. Client
timeouts are AWS's sample settings for ElastiCache clients (connect 100 ms; a command 250 ms in its Lettuce
example), with one retry, so a cache that does not answer costs a turn at most half a second before the read
goes live. Every key carries a TTL, so ``volatile-lru`` (ElastiCache's default) evicts among them.
"""

from __future__ import annotations

from experiments.decide.workload import Workload
from experiments.seed import service_default

VERSIONS = {"redis": "7.1", "valkey": "8.1", "valkey-durable": "9.0", "near-cache": "8.1", "read-through": "7.1",
            "memcached": "1.6.22", "valkey-serverless": "8", "valkey-dynamodb": "9"}
COMMAND_TIMEOUT_S = 0.25
"""AWS's Lettuce example for ElastiCache: ``DEFAULT_COMMAND_TIMEOUT = Duration.ofMillis(250)``."""


def deployment(w: Workload, option: str, numbers: dict) -> dict | None:
    """The option's deployment as fields and a CLI command (None for no cache and per-task caches, which deploy
    with the application)."""
    timeouts = {"connect_timeout_s": service_default("elasticache_client_connect_timeout_s"),
                "command_timeout_s": COMMAND_TIMEOUT_S, "retries": 1}
    name = "".join(c if c.isalnum() else "-" for c in w.name.lower()).strip("-")[:30] + "-cache"
    if option in ("valkey-serverless", "valkey-dynamodb"):
        cli = (f"aws elasticache create-serverless-cache --serverless-cache-name {name} --engine valkey "
               f"--major-engine-version {VERSIONS[option]}")
        return {"engine": "valkey", "version": VERSIONS[option], "deployment": "serverless",
                "dynamodb_caching": option == "valkey-dynamodb", **timeouts, "cli": cli}
    cluster = numbers.get("cluster")
    if option == "dax" and cluster:
        return {"engine": "dax", "node_type": cluster["node_type"], "nodes": cluster["nodes"], **timeouts,
                "cli": f"aws dax create-cluster --cluster-name {name} --node-type {cluster['node_type']} "
                       f"--replication-factor {cluster['nodes']} --iam-role-arn <role>"}
    if not cluster or option not in VERSIONS:
        return None
    engine = {"redis": "redis", "read-through": "redis", "memcached": "memcached"}.get(option, "valkey")
    durable = option == "valkey-durable"
    spec = {"engine": engine, "version": VERSIONS[option], "node_type": cluster["node_type"],
            "shards": cluster["shards"], "replicas": cluster["replicas"], "nodes": cluster["nodes"],
            "reads": "replicas in the reader's zone" if cluster["layout"] == "zone-local" else "spread",
            "durability": "sync" if durable else "none", **timeouts}
    if engine == "memcached":
        spec["cli"] = (f"aws elasticache create-cache-cluster --cache-cluster-id {name} --engine memcached "
                       f"--engine-version {VERSIONS[option]} --cache-node-type {cluster['node_type']} "
                       f"--num-cache-nodes {cluster['nodes']} --az-mode cross-az")
        return spec
    spec["maxmemory_policy"] = "volatile-lru"
    spec["cli"] = (f"aws elasticache create-replication-group --replication-group-id {name} "
                   f"--replication-group-description \"{w.name}\" --engine {engine} --engine-version {VERSIONS[option]} "
                   f"--cache-node-type {cluster['node_type']} --num-node-groups {cluster['shards']} "
                   f"--replicas-per-node-group {cluster['replicas']} --cluster-mode enabled --multi-az-enabled "
                   f"--automatic-failover-enabled --transit-encryption-enabled" + (" --durability sync" if durable else ""))
    return spec
