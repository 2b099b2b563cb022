"""Per-task in-process caches: what N independent ``cachetools.TTLCache`` caches hit, against one shared cache.

Each orchestrator task keeps its own ``TTLCache(maxsize, ttl)`` and a load balancer spreads the
product reads over the tasks at random. By Poisson splitting, every task then sees the whole
catalog's popularity at 1/N of the rate, so each key is fetched up to N times per TTL instead of
once — the effect behind the seed's Q1. The model is `experiments.models.cachemodel` with *eager* expiry
(cachetools purges expired entries on every insertion) and entries counted, not sized; the
simulation routes every request to a task and replays each task's stream exactly
(`experiments.models.lrusim`). `naive_cachetools` runs the same stream through real ``TTLCache`` objects,
one request at a time, to check the replay and to show why the sweep needs a compiled loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import pandas as pd
from cachetools import TTLCache
from tqdm import tqdm

from experiments.errors import ParameterError
from experiments.measure import spread_between_rounds
from experiments.models.cachemodel import hit_probability, mixture, zipf_groups
from experiments.models.lrusim import replay
from experiments.seed import product_reads_per_s

HOT_ITEMS = 500
"""The seed's hot set: the top 100 ASINs with 5 variant pages each."""


@dataclass(frozen=True)
class TaskTraffic:
    """Product reads over a Zipf catalog, spread at random over ``tasks`` orchestrator tasks."""

    catalog: int = 500_000
    alpha: float = 1.0
    reads_per_s: float = field(default_factory=product_reads_per_s)

    def __post_init__(self) -> None:
        if self.catalog <= HOT_ITEMS or self.alpha <= 0 or self.reads_per_s <= 0:
            raise ParameterError(f"catalog must exceed {HOT_ITEMS} items and alpha, reads_per_s be positive")

    def popularity(self) -> np.ndarray:
        """Each product's share of the reads, most popular first: Zipf with exponent ``alpha``."""
        weights = np.arange(1, self.catalog + 1, dtype=float) ** -self.alpha
        return weights / weights.sum()


def predict(traffic: TaskTraffic, *, tasks: int, maxsize: float, ttl_s: float) -> dict[str, float]:
    """Cluster-wide hit rate of ``tasks`` caches of ``maxsize`` entries, and the hot set's hit rate."""
    if tasks < 1 or maxsize < 1:
        raise ParameterError(f"tasks={tasks} and maxsize={maxsize} must be at least 1")
    mass, count = zipf_groups(traffic.catalog, traffic.alpha)
    rate = traffic.reads_per_s / tasks * mass / count
    out = mixture(rate, count, traffic.reads_per_s * mass, capacity=maxsize, ttl=ttl_s, expiry="eager")
    hot = hit_probability(rate[:HOT_ITEMS], out["t_char_s"], ttl_s)
    return {"hit_rate": out["hit_rate"], "hot_hit_rate": float((mass[:HOT_ITEMS] * hot).sum() / mass[:HOT_ITEMS].sum()),
            "t_char_s": out["t_char_s"], "entries_per_task": out["resident"]}


@dataclass(frozen=True)
class Launches:
    """Popularity that moves: every ``every_s`` seconds ``new`` products never read before take the top
    ranks (new volumes launched) and every other product slides down ``new`` ranks. The stationary Zipf
    of the model and of the plain simulation is ``Launches(every_s=inf)``."""

    every_s: float
    new: int = 5

    def items(self, ranks: np.ndarray, times: np.ndarray, catalog: int) -> np.ndarray:
        """The product at each read's rank at its time; products launched in epoch e get ids from
        ``catalog + e * new``; a product that slid past the catalog's end is the last one."""
        if not np.isfinite(self.every_s):
            return ranks
        epoch = (times // self.every_s).astype(np.int64)
        launched = ranks < self.new * epoch  # a product launched in an epoch at most `epoch` ago
        born = epoch - ranks // self.new
        original = np.minimum(ranks - self.new * epoch, catalog - 1)
        return np.where(launched, catalog + born * self.new + ranks % self.new, np.maximum(original, 0))


STATIONARY = Launches(every_s=float("inf"))


def requests(traffic: TaskTraffic, count: int, seed: int,
             launches: Launches = STATIONARY) -> tuple[np.ndarray, np.ndarray]:
    """``count`` product reads: the item (0 = most popular at the start) and the arrival time of each (Poisson)."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(traffic.popularity())
    ranks = np.minimum(np.searchsorted(cdf, rng.random(count) * cdf[-1]), traffic.catalog - 1).astype(np.int64)
    times = np.cumsum(rng.exponential(1 / traffic.reads_per_s, count))
    return launches.items(ranks, times, traffic.catalog), times


def simulate(traffic: TaskTraffic, *, tasks: int, maxsize: int, ttl_s: float, requests_count: int,
             seed: int, launches: Launches = STATIONARY) -> dict[str, float]:
    """Route every read to a random task and replay each task's cache exactly (after a 2-TTL warm-up)."""
    items, times = requests(traffic, requests_count, seed, launches)
    route = np.random.default_rng(seed + 1).integers(0, tasks, requests_count)
    ones = np.ones(int(items.max()) + 1)
    per_task = [replay(items[route == k], times[route == k], ones, capacity=maxsize, ttl_s=ttl_s,
                       warmup_s=2 * ttl_s, expiry="eager") for k in range(tasks)]
    hits = sum(r["hits"] for r in per_task)
    counted = sum(r["requests_counted"] for r in per_task)
    rates = [r["hit_rate"] for r in per_task]
    return {"hit_rate": hits / counted, "lowest_task_hit_rate": min(rates), "highest_task_hit_rate": max(rates),
            "requests": requests_count}


def sweep(traffic: TaskTraffic, *, tasks_list: list[int], maxsize: int, ttl_s: float, requests_count: int,
          seed: int, progress: bool = True) -> pd.DataFrame:
    """Model and simulation of the cluster-wide hit rate for each task count, and a shared cache beside them."""
    shared = predict(traffic, tasks=1, maxsize=max(tasks_list) * maxsize, ttl_s=ttl_s)["hit_rate"]
    rows = []
    for i, tasks in enumerate(tqdm(tasks_list, desc="task counts", disable=not progress)):
        model = predict(traffic, tasks=tasks, maxsize=maxsize, ttl_s=ttl_s)
        sim = simulate(traffic, tasks=tasks, maxsize=maxsize, ttl_s=ttl_s, requests_count=requests_count, seed=seed + i)
        rows.append({"tasks": tasks, "model_hit_rate": model["hit_rate"], "simulated_hit_rate": sim["hit_rate"],
                     "model_hot_hit_rate": model["hot_hit_rate"], "lowest_task": sim["lowest_task_hit_rate"],
                     "highest_task": sim["highest_task_hit_rate"], "shared_cache_hit_rate": shared,
                     "requests": requests_count})
    frame = pd.DataFrame(rows)
    return frame.assign(gap_pp=100 * (frame.model_hit_rate - frame.simulated_hit_rate))


def moving_check(traffic: TaskTraffic, *, tasks: int, maxsize: int, ttl_s: float, requests_count: int, seed: int,
                 launches: list[Launches]) -> pd.DataFrame:
    """The stationary model against simulations whose popularity moves (`Launches`): per-task caches and
    one shared cache of the same total size, so a reader sees how far the model's answer moves."""
    model = predict(traffic, tasks=tasks, maxsize=maxsize, ttl_s=ttl_s)["hit_rate"]
    shared_model = predict(traffic, tasks=1, maxsize=tasks * maxsize, ttl_s=ttl_s)["hit_rate"]
    rows = []
    for moving in [STATIONARY, *launches]:
        per_task = simulate(traffic, tasks=tasks, maxsize=maxsize, ttl_s=ttl_s, requests_count=requests_count,
                            seed=seed, launches=moving)["hit_rate"]
        shared = simulate(traffic, tasks=1, maxsize=tasks * maxsize, ttl_s=ttl_s, requests_count=requests_count,
                          seed=seed, launches=moving)["hit_rate"]
        rows.append({"launch_every_s": moving.every_s, "new_products": moving.new if np.isfinite(moving.every_s) else 0,
                     "model_hit_rate": model, "simulated_hit_rate": per_task, "shared_model_hit_rate": shared_model,
                     "shared_simulated_hit_rate": shared})
    frame = pd.DataFrame(rows)
    return frame.assign(moved_pp=100 * (frame.simulated_hit_rate - frame.model_hit_rate),
                        shared_moved_pp=100 * (frame.shared_simulated_hit_rate - frame.shared_model_hit_rate))


def naive_cachetools(items: np.ndarray, times: np.ndarray, *, maxsize: int, ttl_s: float) -> dict[str, float]:
    """One real ``TTLCache`` fed one request at a time (clock = the simulated time): hits and requests/s."""
    clock = [0.0]
    cache = TTLCache(maxsize=maxsize, ttl=ttl_s, timer=lambda: clock[0])
    hits = 0
    start = time.perf_counter()
    for item, now in zip(items.tolist(), times.tolist()):
        clock[0] = now
        if cache.get(item) is not None:
            hits += 1
        else:
            cache[item] = True
    elapsed = time.perf_counter() - start
    return {"hits": hits, "requests_per_s": len(items) / elapsed}


def benchmark(traffic: TaskTraffic, *, maxsize: int, ttl_s: float, requests_count: int, seed: int,
              rounds: int = 9, passes: int = 3) -> dict[str, float]:
    """The compiled replay and a per-request cachetools loop on the same stream, in the same run. The replay is
    timed in ``rounds`` rounds of ``passes`` passes over the stream (a pass takes milliseconds, which one
    preemption by another process would dominate): its rate is the median of the rounds, with their spread
    (`spread_between_rounds`). The caller times it in a quiet section."""
    items, times = requests(traffic, requests_count, seed)
    ones = np.ones(traffic.catalog)
    replay(items[:1000], times[:1000], ones, capacity=maxsize, ttl_s=ttl_s, warmup_s=0, expiry="eager")  # compile
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(passes):
            fast = replay(items, times, ones, capacity=maxsize, ttl_s=ttl_s, warmup_s=0, expiry="eager")
        rates.append(passes * requests_count / (time.perf_counter() - start))
    fast_per_s = float(np.median(rates))
    naive = naive_cachetools(items, times, maxsize=maxsize, ttl_s=ttl_s)
    return {"requests": requests_count, "replay_per_s": fast_per_s, "cachetools_per_s": naive["requests_per_s"],
            "replay_spread_per_s": spread_between_rounds(rates),
            "speedup": fast_per_s / naive["requests_per_s"], "same_hits": fast["hits"] == naive["hits"]}


@lru_cache(maxsize=1)
def calibrate_alpha(traffic: TaskTraffic, *, target_hit: float, ttl_s: float) -> float:
    """The Zipf exponent at which one shared cache without a size limit reaches ``target_hit``."""
    low, high = 0.3, 2.5
    for _ in range(30):
        mid = (low + high) / 2
        hit = predict(replace(traffic, alpha=mid), tasks=1, maxsize=traffic.catalog, ttl_s=ttl_s)["hit_rate"]
        low, high = (mid, high) if hit < target_hit else (low, mid)
    return (low + high) / 2
