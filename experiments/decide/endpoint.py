"""The reader's own endpoints measured with the book's non-destructive experiments, for `experiments.decide`.

For each value size of the workload's families: GET latency (median and p99 over rounds, as the economics
chapter measures it) and, on Redis or Valkey, the memory one item takes (``MEMORY USAGE``) over its own bytes.
Keys go under the run's namespace and only those keys are deleted at the end (`experiments.lab.endpoints`);
cluster mode and TLS (``rediss://``) work, so an ElastiCache Serverless endpoint can be measured. The item
overhead then sizes the cluster in place of the book's local figure.
"""

from __future__ import annotations

import redis
from pymemcache.exceptions import MemcacheError

from experiments.decide.workload import Workload
from experiments.errors import EndpointError
from experiments.lab.endpoints import open_memcached, open_redis
from experiments.measure import summarize_rounds_ms, time_calls_ms

READS_PER_SIZE = 300
ROUNDS = 3


def _sizes(w: Workload) -> list[float]:
    return sorted({f.value_kb for f in w.families})


def _time(get, rounds: int = ROUNDS) -> dict[str, float]:
    return summarize_rounds_ms([time_calls_ms(get, READS_PER_SIZE // rounds, warmup=20) for _ in range(rounds)])


def measure_redis(w: Workload, redis_url: str) -> dict:
    """GET latency and memory per item for each of the workload's value sizes on ``redis_url``."""
    target = open_redis(redis_url)
    try:
        return _measure_redis(w, target)
    except (redis.RedisError, OSError) as exc:
        raise EndpointError(f"Redis at {target.address} failed during the measurement: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    finally:
        target.close()


def _measure_redis(w: Workload, target) -> dict:
    rows = []
    for kb in _sizes(w):
        key = target.key(f"decide:probe:{kb:g}kb")
        value = b"x" * int(kb * 1000)
        target.client.set(key, value, ex=600)
        used = int(target.client.memory_usage(key) or 0)
        stats = _time(lambda k=key: target.client.get(k))
        rows.append({"value_kb": kb, "p50_ms": stats["p50_ms"], "p99_ms": stats["p99_ms"],
                     "item_overhead": used / (len(key) + len(value)) if used else None})
    overheads = [r["item_overhead"] for r in rows if r["item_overhead"]]
    return {"kind": "redis", "address": target.address, "sizes": rows,
            "item_overhead": max(overheads) if overheads else None}


def measure_memcached(w: Workload, servers: str) -> dict:
    """GET latency for each of the workload's value sizes on ``servers`` (memcached reports no size per item)."""
    target = open_memcached(servers)
    try:
        rows = []
        for kb in _sizes(w):
            key = target.key(f"decide:probe:{kb:g}kb")
            target.client.set(key, b"x" * int(kb * 1000), expire=600)
            stats = _time(lambda k=key: target.client.get(k))
            rows.append({"value_kb": kb, "p50_ms": stats["p50_ms"], "p99_ms": stats["p99_ms"]})
        return {"kind": "memcached", "address": target.address, "sizes": rows}
    except (MemcacheError, OSError) as exc:
        raise EndpointError(f"memcached at {target.address} failed during the measurement: {exc}") from None
    finally:
        target.close()
