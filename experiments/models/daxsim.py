"""A simulator of DAX's two caches, built from the rules AWS documents, and a fast one for sweeps.

DAX cannot run on this machine, so the chapter rests on two simulators that share one definition
of the item cache (LRU by bytes, TTL counted from the write into the cache, expiry noticed on read):

* `DaxNode` follows the documentation rule by rule — item cache and query cache, write-through and
  write-around, negative caching, strongly consistent reads — over a `Table` standing in for
  DynamoDB. It is readable and slow; ``tests/test_dax.py`` holds one test per documented rule.
* `simulate` runs the item cache alone over millions of GetItem requests (`experiments.models.lrusim`,
  compiled), for the hit-rate sweeps that check `experiments.models.daxmodel`. A test checks that both simulators
  give the same hits on the same request stream.

The seed and the documentation disagree on how projections are keyed; ``keyed_by`` models both.
Sources: AWS, *DynamoDB developer guide*, sections "DAX: how it works" (item and query cache, TTL,
LRU), "DAX and DynamoDB consistency models" (write-through, write-around, negative caching,
strongly consistent reads) and "Configuring TTL settings" (5-minute defaults).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from tqdm import tqdm

from experiments.errors import ParameterError
from experiments.models.cachemodel import zipf_groups
from experiments.models.daxmodel import ITEM_TTL_S, KB, ProjectionWorkload, predict, region
from experiments.models.lrusim import replay
from experiments.seed import service_default

DEFAULT_TTL_S = ITEM_TTL_S
"""Default item-cache TTL of a DAX cluster (5 minutes), the one the simulations run with."""

QUERY_TTL_S = service_default("dax_query_ttl_s")
"""Default query-cache TTL of a DAX cluster (query-ttl-millis of its default parameter group: 5 minutes)."""


class WriteFailed(Exception):
    """DynamoDB refused a write (throttling, a failed condition): DAX must not cache the item."""


class Table:
    """A DynamoDB table stand-in: items by key, with counters of the reads that reach it."""

    def __init__(self) -> None:
        self.items: dict[str, dict] = {}
        self.reads = 0
        self.failing = False

    def get(self, key: str) -> dict | None:
        """A ``GetItem`` that reached the table (counted): a copy of the item, or None."""
        self.reads += 1
        item = self.items.get(key)
        return None if item is None else dict(item)

    def put(self, key: str, item: dict) -> None:
        """A write straight to DynamoDB (what a service that bypasses DAX does)."""
        if self.failing:
            raise WriteFailed(key)
        self.items[key] = dict(item)

    def query(self, prefix: str) -> list[dict]:
        """A ``Query`` that reached the table (counted): copies of the items whose key starts with ``prefix``."""
        self.reads += 1
        return [dict(v) for k, v in sorted(self.items.items()) if k.startswith(prefix)]


def item_bytes(item: dict | None) -> int:
    """Bytes an entry takes in the model: its JSON encoding (an empty entry takes 1)."""
    return max(1, len(json.dumps(item, separators=(",", ":")))) if item else 1


def _project(item: dict | None, projection: tuple[str, ...] | None) -> dict | None:
    if item is None or projection is None:
        return item
    return {name: item[name] for name in projection if name in item}


class _LruTtl:
    """Entries with a byte size and the time they were written; LRU order refreshed by reads."""

    def __init__(self, capacity_bytes: int, ttl_s: float) -> None:
        self.capacity, self.ttl = capacity_bytes, ttl_s
        self.entries: OrderedDict = OrderedDict()  # key -> (value, size, written_at)
        self.used = 0
        self.evicted_ages: list[float] = []

    def get(self, key, now: float):
        """``(True, value)`` on a hit; an expired entry is dropped and reported as a miss."""
        if key not in self.entries:
            return False, None
        value, _, written = self.entries[key]
        if now - written >= self.ttl:
            self._drop(key)
            return False, None
        self.entries.move_to_end(key)
        return True, value

    def put(self, key, value, size: int, now: float) -> None:
        if key in self.entries:
            self._drop(key)
        if size > self.capacity:
            return
        while self.used + size > self.capacity:
            oldest = next(iter(self.entries))
            self.evicted_ages.append(now - self.entries[oldest][2])
            self._drop(oldest)
        self.entries[key] = (value, size, now)
        self.used += size

    def _drop(self, key) -> None:
        self.used -= self.entries.pop(key)[1]


class DaxNode:
    """One DAX node (item cache + query cache) in front of a `Table`, following the documented rules.

    Every call takes the simulated time ``now`` (seconds), so timelines are deterministic.
    ``keyed_by="item"`` caches the full item under its key and applies the projection on the way out
    (the documentation's "stored by their primary key values"); ``"projection"`` keeps one entry per
    key and projection, as the seed describes.
    """

    def __init__(self, table: Table, *, capacity_bytes: int = 10**9, item_ttl_s: float = DEFAULT_TTL_S,
                 query_ttl_s: float = QUERY_TTL_S, keyed_by: str = "item") -> None:
        if keyed_by not in ("item", "projection"):
            raise ParameterError(f"keyed_by={keyed_by!r} must be 'item' or 'projection'")
        self.table, self.keyed_by = table, keyed_by
        self.item_cache = _LruTtl(capacity_bytes, item_ttl_s)
        self.query_cache = _LruTtl(capacity_bytes, query_ttl_s)
        self.hits = self.misses = 0

    def _cache_key(self, key: str, projection: tuple[str, ...] | None):
        return (key, projection) if self.keyed_by == "projection" else key

    def get_item(self, key: str, now: float, *, projection: tuple[str, ...] | None = None,
                 consistent: bool = False) -> dict | None:
        """GetItem: strongly consistent reads go to the table and are not cached."""
        if consistent:
            return _project(self.table.get(key), projection)
        cache_key = self._cache_key(key, projection)
        hit, value = self.item_cache.get(cache_key, now)
        if hit:
            self.hits += 1
        else:
            self.misses += 1
            fetched = self.table.get(key)  # a miss is an eventually consistent read of DynamoDB
            value = _project(fetched, projection) if self.keyed_by == "projection" else fetched
            self.item_cache.put(cache_key, value, item_bytes(value), now)  # None: a negative entry
        return value if self.keyed_by == "projection" else _project(value, projection)

    def put_item(self, key: str, item: dict, now: float) -> None:
        """Write-through: DynamoDB first; only a successful write updates the item cache, TTL restarted."""
        self.table.put(key, item)
        if self.keyed_by == "projection":
            for cache_key in [k for k in self.item_cache.entries if k[0] == key]:
                self.item_cache._drop(cache_key)
        else:
            self.item_cache.put(key, dict(item), item_bytes(item), now)

    def query(self, prefix: str, now: float) -> list[dict]:
        """Query: results cached by their parameters, independent of the item cache."""
        hit, value = self.query_cache.get(prefix, now)
        if not hit:
            value = self.table.query(prefix)
            self.query_cache.put(prefix, value, sum(item_bytes(v) for v in value) or 1, now)
        return value


@dataclass(frozen=True)
class Requests:
    """A GetItem stream: the cache entry each request reads and its arrival time (s)."""

    entry: np.ndarray
    times: np.ndarray
    sizes: np.ndarray


def sample_items(catalog: int, alpha: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` item ranks (0 = most popular) from a Zipf law, for any catalog size.

    The popularity is the model's grouped one (`experiments.models.cachemodel.zipf_groups`: the head item by
    item, the tail in groups within which popularity varies by under 0.3 %), so a 50-million-item
    catalog needs no 50-million-entry table; the model and the replay share the popularity, not the cache.
    """
    mass, size = zipf_groups(catalog, alpha)
    start = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    group = np.minimum(np.searchsorted(np.cumsum(mass), rng.random(count) * mass.sum()), mass.size - 1)
    return start[group] + (rng.random(count) * size[group]).astype(np.int64)


def requests(workload: ProjectionWorkload, count: int, seed: int) -> Requests:
    """``count`` Poisson arrivals at the workload's rate; Zipf items, projections chosen uniformly.

    Entry ids are renumbered densely over the entries the stream touches, so the replay's arrays
    scale with the stream, not with the catalog.
    """
    rng = np.random.default_rng(seed)
    items = sample_items(workload.catalog, workload.alpha, count, rng)
    per_item = workload.entries_per_item
    entry = items * per_item + (rng.integers(0, per_item, count) if per_item > 1 else 0)
    touched, dense = np.unique(entry, return_inverse=True)
    times = np.cumsum(rng.exponential(1 / workload.reads_per_s, count))
    return Requests(dense.astype(np.int64), times, np.full(touched.size, float(workload.entry_bytes)))


def run(stream: Requests, *, capacity_bytes: float, ttl_s: float = DEFAULT_TTL_S,
        warmup_s: float | None = None) -> dict[str, float]:
    """Replay ``stream`` through DAX's item cache (lazy expiry); statistics after ``warmup_s`` (default 2 TTLs)."""
    return replay(stream.entry, stream.times, stream.sizes, capacity=capacity_bytes, ttl_s=ttl_s,
                  warmup_s=2 * ttl_s if warmup_s is None else warmup_s, expiry="lazy")


def simulate(workload: ProjectionWorkload, *, capacity_bytes: float, requests_count: int, seed: int,
             ttl_s: float = DEFAULT_TTL_S) -> dict[str, float]:
    """Hit rate of ``workload`` on one node of ``capacity_bytes``, simulated over ``requests_count`` reads."""
    return run(requests(workload, requests_count, seed), capacity_bytes=capacity_bytes, ttl_s=ttl_s)


def benchmark(workload: ProjectionWorkload, *, requests_count: int, seed: int, capacity_bytes: float) -> dict:
    """Simulated requests per second of wall time: the replay alone, and with generating the stream."""
    run(requests(workload, 1000, seed), capacity_bytes=capacity_bytes, warmup_s=0)  # compile first
    start = time.perf_counter()
    stream = requests(workload, requests_count, seed)
    generated = time.perf_counter()
    run(stream, capacity_bytes=capacity_bytes, warmup_s=0)
    done = time.perf_counter()
    return {"requests": requests_count, "replay_per_s": requests_count / (done - generated),
            "end_to_end_per_s": requests_count / (done - start)}


def validation(workload: ProjectionWorkload, *, capacities_gb: list[float], projections: list[int],
               requests_count: int, seed: int, ttl_s: float = DEFAULT_TTL_S, progress: bool = True) -> pd.DataFrame:
    """Model (`experiments.models.daxmodel.predict`) and simulation side by side over memory budgets."""
    rows = []
    points = [(p, gb) for p in projections for gb in capacities_gb]
    for i, (p, gb) in enumerate(tqdm(points, desc="simulated budgets", disable=not progress)):
        w = replace(workload, projections=p)
        model = predict(w, capacity_bytes=gb * 1e9, ttl_s=ttl_s)
        sim = simulate(w, capacity_bytes=gb * 1e9, requests_count=requests_count, seed=seed + i, ttl_s=ttl_s)
        rows.append({"projections": p, "capacity_gb": gb, "model_hit_rate": model["hit_rate"],
                     "simulated_hit_rate": sim["hit_rate"], "t_char_s": model["t_char_s"],
                     "mean_evicted_age_s": sim["mean_evicted_age_s"], "requests": requests_count})
    frame = pd.DataFrame(rows)
    return frame.assign(gap_pp=100 * (frame.model_hit_rate - frame.simulated_hit_rate))


def readings(workload: ProjectionWorkload, *, projections: list[int], capacity_bytes: float,
             requests_count: int, seed: int, ttl_s: float = DEFAULT_TTL_S) -> pd.DataFrame:
    """Both readings of projection keying at one node size: modelled and simulated hit rate, memory."""
    rows = []
    cases = [("seed: entry per projection", "projection", p) for p in projections]
    cases.append(("docs: entry per item", "item", max(projections)))
    for i, (label, keyed_by, p) in enumerate(cases):
        w = replace(workload, projections=p, keyed_by=keyed_by)
        model = predict(w, capacity_bytes=capacity_bytes, ttl_s=ttl_s)
        sim = simulate(w, capacity_bytes=capacity_bytes, requests_count=requests_count, seed=seed + i, ttl_s=ttl_s)
        rows.append({"reading": label, "projections": p, "model_hit_rate": model["hit_rate"],
                     "simulated_hit_rate": sim["hit_rate"], "footprint_gb": w.footprint_bytes() / 1e9,
                     "memory_bound": model["memory_bound"], "origin_reads_per_s": model["origin_reads_per_s"]})
    return pd.DataFrame(rows)


def region_with_simulation(workload: ProjectionWorkload, *, item_kb: list[int], catalogs: list[int],
                           projections: list[int], capacity_bytes: float, requests_count: int, seed: int,
                           ttl_s: float = DEFAULT_TTL_S, progress: bool = True) -> pd.DataFrame:
    """`experiments.models.daxmodel.region` with every point also simulated (``requests_count`` reads each)."""
    frame = region(workload, item_kb=item_kb, catalogs=catalogs, projections=projections,
                   capacity_bytes=capacity_bytes, ttl_s=ttl_s)
    simulated = []
    for i, row in enumerate(tqdm(list(frame.itertuples()), desc="simulated region", disable=not progress)):
        w = replace(workload, catalog=int(row.catalog), item_bytes=int(row.item_kb * KB),
                    projections=int(row.projections))
        simulated.append(simulate(w, capacity_bytes=capacity_bytes, requests_count=requests_count, seed=seed + i,
                                  ttl_s=ttl_s)["hit_rate"])
    frame = frame.assign(simulated_hit_rate=simulated, requests=requests_count)
    return frame.assign(gap_pp=100 * (frame.hit_rate - frame.simulated_hit_rate))
