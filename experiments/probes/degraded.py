"""The degraded modes of `experiments.caches.degraded` on real servers, while a silent partition cuts the
orchestrator off from its cache: what each sends to a real origin, and how many turns it answers in budget.

Four lab hosts: ``app`` (the orchestrator task, ``workers`` threads serving turns), ``cache`` (Redis),
``gutter`` (a memcached gutter pool) and ``origin`` (the catalog: `experiments.caches.origin_server` with the
note's 120 ms median product latency). Each mode is run on its own, with a fresh breaker:

1. only for the in-process copy: ``warm_ttls`` TTLs of one task's reads go through the reader while the cache
   is reachable (the shared cache holds them: steady state), which fills the copy on a virtual clock that
   follows the reads' timestamps — the task's ten minutes take a second;
2. the origin's counters are zeroed and ``app`` is partitioned from ``cache`` (both ways, silent);
3. the outage reads are served by ``workers`` threads: one task's next ``reads`` reads (the gutter pool: the
   first ``fleet_reads`` of the fleet's stream — the gutter is shared by every task; its entries live
   `LAB_GUTTER_TTL_S`, longer than any run, so the run counts fills, and how an entry's life sets the calls
   is the model's to say);
4. the origin's calls are read and the partition healed.

Beside each mode's calls per read stands what the same reads must cost (``expected_calls_per_read``): every
read (fail open), none (fail fast), the misses of an exact one-read-at-a-time replay of the task's stream
through ``TTLCache`` (`experiments.models.degraded.local_copy_replay`), and the distinct keys of the fleet's
slice (the gutter starts empty and outlives the run, and the task's threads share one fill of a key).

A turn is one product read; it is answered in budget when it returned a document within the orchestrator's
2,000 ms. Every load is bounded by its read count, every call by its timeout.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from cachetools import TTLCache
from redis.backoff import NoBackoff
from redis.retry import Retry

from experiments.caches.degraded import MODES, Breaker, DegradedReader
from experiments.caches.origin import OriginLink, OriginProcess
from experiments.errors import ParameterError
from experiments.lab.netlab import NetLab
from experiments.lab.quiet import quiet
from experiments.lab.servers import MemcachedServer, RedisServer
from experiments.models import degraded as model
from experiments.models.taskcache import TaskTraffic, requests
from experiments.results import Table
from experiments.seed import figure, origin_table

BUDGET_MS = figure("catalog_timeout_ms")
ORIGIN_MS = float(origin_table().set_index("family").loc["product", "seed_origin_ms"])
"""The catalog's median latency for a product (the note's economics table: 120 ms)."""


LAB_GUTTER_TTL_S = 600
"""The gutter entries' life in the lab run: longer than any run (the full profile's slice takes ~15 s), so that
the run checks one fill per key; `experiments.models.degraded` carries the entry life to the fleet."""


class _VirtualClock:
    """The stream's time for the in-process copy's TTLs: the latest timestamp of a read being served."""

    def __init__(self) -> None:
        self.now, self._lock = 0.0, threading.Lock()

    def advance(self, at: float) -> None:
        with self._lock:
            self.now = max(self.now, at)

    def __call__(self) -> float:
        return self.now


def _serve(reader: DegradedReader, keys: list[str], times: np.ndarray, clock: _VirtualClock | None,
           workers: int, lab: NetLab) -> pd.DataFrame:
    def one(key: str, at: float) -> dict:
        if clock is not None:
            clock.advance(at)
        with lab.inside("app"):
            began = time.monotonic()
            value, source = reader.get(key)
            return {"source": source, "answered": value is not None, "ms": 1000 * (time.monotonic() - began)}

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(one, key, float(at)) for key, at in zip(keys, times)]
        return pd.DataFrame([f.result() for f in futures])


OUTAGE = Table("degraded.OUTAGE", (
    "mode", "stream", "reads", "catalog_calls", "calls_per_read", "expected_calls_per_read", "answered", "in_budget",
    "p50_ms", "p99_ms", "max_ms", "cache_timeouts", "from_origin", "from_local_copy", "from_gutter", "from_none"))
"""`outage`: one row per degraded mode, in the order asked."""


def outage(*, reads: int, fleet_reads: int, workers: int = 16, seed: int = 0, warm_ttls: int = 2,
           timeout_s: float = 0.25, modes: tuple[str, ...] = MODES) -> pd.DataFrame:
    """One row per mode: catalog calls, turns answered and in budget, latency, and where reads were served."""
    if reads < 1 or fleet_reads < 1 or workers < 1 or warm_ttls < 1 or not 0 < timeout_s < BUDGET_MS / 1000:
        raise ParameterError("reads, fleet_reads, workers and warm_ttls must be positive and timeout_s within the budget")
    fleet = model.traffic()
    tasks, ttl_s, entries = int(figure("task_count")), figure("product_cache_ttl_s"), int(figure("product_cache_entries"))
    task = TaskTraffic(catalog=fleet.catalog, alpha=fleet.alpha, reads_per_s=fleet.reads_per_s / tasks)
    warm = int(warm_ttls * ttl_s * task.reads_per_s)
    task_items, task_times = requests(task, warm + reads, seed)
    fleet_items, fleet_times = requests(fleet, fleet_reads, seed + 1)
    names = lambda items: [f"product:B{i:09d}" for i in items]
    rows = []
    with NetLab(["app", "cache", "gutter", "origin"], tag="degraded") as lab:
        cache, gutter = lab.place("cache", RedisServer), lab.place("gutter", MemcachedServer)
        with cache, gutter, OriginProcess(workers=4 * workers, service_ms=ORIGIN_MS, seed=seed,
                                          host=lab.address["origin"], prefix=lab.argv("origin", [])) as origin:
            link = OriginLink(origin.port, timeout_s=BUDGET_MS / 1000, host=origin.host)
            with lab.inside("app"):
                client = cache.client(socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0))
                with client.pipeline(transaction=False) as pipe:  # steady state: the shared cache holds what was read
                    for key in set(names(task_items[:warm])):
                        pipe.set(key, b"x" * 2000, ex=int(ttl_s))
                    pipe.execute()
            expected = {"fail open": 1.0, "fail fast": 0.0,
                        "in-process copy": 1 - model.local_copy_replay(task_items, task_times, warm=warm, entries=entries,
                                                                       ttl_s=ttl_s),
                        "gutter pool": len(set(fleet_items.tolist())) / fleet_reads}
            for mode in modes:
                clock = _VirtualClock() if mode == "in-process copy" else None
                reader = DegradedReader(
                    mode, cache=client, origin=link.load, breaker=Breaker(open_s=1.0),
                    local=TTLCache(entries, ttl_s, timer=clock) if clock else None,
                    gutter=((lambda: gutter.client(timeout=timeout_s, connect_timeout=timeout_s))
                            if mode == "gutter pool" else None),
                    gutter_ttl_s=LAB_GUTTER_TTL_S, product_ttl_s=int(ttl_s))
                if mode == "gutter pool":
                    keys, times = names(fleet_items), fleet_times
                else:
                    keys, times = names(task_items[warm:]), task_times[warm:]
                if clock is not None:
                    _serve(reader, names(task_items[:warm]), task_times[:warm], clock, 1, lab)
                with lab.inside("app"):
                    origin.reset()
                lab.partition("app", "cache")
                try:
                    with quiet(f"turns through the outage ({mode})"):
                        served = _serve(reader, keys, times, clock, workers, lab)
                finally:
                    lab.heal()
                with lab.inside("app"):
                    origin.wait_idle()
                    calls = origin.stats()["calls"]
                sources = served.source.value_counts()
                in_budget = served.answered & (served.ms <= BUDGET_MS)
                rows.append({"mode": mode, "stream": "fleet" if mode == "gutter pool" else "one task", "reads": len(served),
                             "catalog_calls": calls, "calls_per_read": calls / len(served),
                             "expected_calls_per_read": expected[mode],
                             "answered": float(served.answered.mean()), "in_budget": float(in_budget.mean()),
                             "p50_ms": float(served.ms.median()), "p99_ms": float(served.ms.quantile(0.99)),
                             "max_ms": float(served.ms.max()), "cache_timeouts": int((served.ms >= 1000 * timeout_s).sum()),
                             **{f"from_{s.replace(' ', '_')}": int(sources.get(s, 0))
                                for s in ("origin", "local copy", "gutter", "none")}})
            client.close()
    return OUTAGE.frame(rows)
