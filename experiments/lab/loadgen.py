"""The field's own load generators, run against the book's servers and parsed.

* `redis_benchmark` — ``redis-benchmark`` (redis-tools) or ``valkey-benchmark`` (valkey-tools): GET
  throughput and latency percentiles. A SET pass fills the key space first, so every GET returns a
  value of the requested size; its rate is reported too.
* `memaslap` — ``memcaslap`` (libmemcached-tools): its default mix of 90 % GET and 10 % SET over
  a 10k-key window per connection; the values are ``value_bytes`` long.

Both print requests per second for the whole run; on a 2-core machine the load generator and the
server share the cores, which caps what multi-threading can show.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from typing import TYPE_CHECKING

import redis

from experiments.lab.servers import engine_named
from experiments.lab.spawner import LOOPBACK, require_binary
from experiments.results import Table

if TYPE_CHECKING:  # pandas is imported lazily: these modules load in worker processes too
    import pandas as pd

MEMORY_BUDGET_BYTES = 32 * 2**20
"""Key space of a benchmark is capped so that it fits in this much memory whatever the value size."""


def _keyspace(value_bytes: int) -> int:
    return max(100, min(100_000, MEMORY_BUDGET_BYTES // value_bytes))


def redis_benchmark(port: int, password: str, *, requests: int, clients: int = 50, cluster: bool = False,
                    threads: int = 1, value_bytes: int = 2048, tool: str = "redis", keys: int | None = None) -> dict:
    """``redis-benchmark -t get`` (``valkey-benchmark`` for ``tool="valkey"``, against either engine) after a SET pass: GET
    requests per second and p50/p99 latency (ms), and the SET pass's requests per second. ``keys``: the
    key space (default: as many values as fit `MEMORY_BUDGET_BYTES`).

    redis-benchmark retries a dead endpoint forever, so the server is pinged first.
    """
    try:
        with redis.Redis(host=LOOPBACK, port=port, password=password, socket_timeout=2,
                         socket_connect_timeout=2) as probe:
            probe.ping()
    except (redis.RedisError, OSError) as exc:
        raise RuntimeError(f"redis-benchmark has nothing to measure: 127.0.0.1:{port} does not answer ({exc})") from None
    keys = keys or _keyspace(value_bytes)

    def run(test: str, count: int) -> subprocess.CompletedProcess:
        argv = [require_binary(engine_named(tool).benchmark), "-h", LOOPBACK, "-p", str(port), "-a", password,
                "-t", test, "-n", str(count), "-c", str(clients), "-d", str(value_bytes), "-r", str(keys),
                "--threads", str(threads), "--csv"] + (["--cluster"] if cluster else [])
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {out.stderr.strip()[-300:]}")
        table = out.stdout[out.stdout.index('"test"'):]  # cluster mode prints its node list first
        return [r for r in csv.DictReader(io.StringIO(table)) if r.get("test", "").startswith(test.upper())][-1]

    fill = run("set", 3 * keys)  # -r draws keys at random: three passes leave few keys missing
    row = run("get", requests)
    return {"rps": float(row["rps"]), "p50_ms": float(row["p50_latency_ms"]), "p99_ms": float(row["p99_latency_ms"]),
            "set_rps": float(fill["rps"])}




def memaslap(address: str, *, seconds: int, value_bytes: int, threads: int = 2, clients: int = 50) -> dict:
    """``memcaslap`` for ``seconds``: operations per second (90 % GET, 10 % SET)."""
    argv = [require_binary("memcaslap"), "-s", address, "-T", str(threads), "-c", str(clients),
            "-t", f"{seconds}s", "-X", str(value_bytes)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"TPS: (\d+)", out.stdout)
    if out.returncode != 0 or not match:
        raise RuntimeError(f"memcaslap failed: {(out.stderr or out.stdout).strip()[-300:]}")
    misses = re.search(r"get_misses: (\d+)", out.stdout)
    gets = re.search(r"cmd_get: (\d+)", out.stdout)
    return {"rps": float(match.group(1)),
            "get_miss_pct": 100 * int(misses.group(1)) / max(1, int(gets.group(1))) if misses and gets else None}


COMPARE_THROUGHPUT = Table("loadgen.COMPARE_THROUGHPUT", ("server", "tool", "value_bytes", "rps", "get_miss_pct"))
"""`compare_throughput`: one row per server and value size (``get_miss_pct`` None for Redis)."""


def compare_throughput(*, seconds: int, requests: int, value_sizes: tuple[int, ...] = (2048, 131072)) -> "pd.DataFrame":
    """memcached with 1, 2 and 4 worker threads (memaslap) and Redis (redis-benchmark), per value size."""
    from experiments.lab.servers import MemcachedServer, RedisServer

    rows = []
    for size in value_sizes:
        for threads in (1, 2, 4):
            with MemcachedServer(name=f"memcached-t{threads}", threads=threads, memory_mb=1024) as node:
                result = memaslap(node.address, seconds=seconds, value_bytes=size)
            rows.append({"server": f"memcached -t {threads}", "tool": "memcaslap (90 % GET)", "value_bytes": size,
                         **result})
        with RedisServer(name="redis-bench") as node:
            result = redis_benchmark(node.port, node.password, requests=requests, value_bytes=size)
        rows.append({"server": "redis (1 thread)", "tool": "redis-benchmark (GET)", "value_bytes": size,
                     "rps": result["rps"], "get_miss_pct": None})
    return COMPARE_THROUGHPUT.frame(rows)
