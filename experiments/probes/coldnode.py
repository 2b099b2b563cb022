"""A memcached node replaced by an empty one, under the seed's hot-product traffic, on real nodes.

The seed's second Memcached failure: a node is drained and replaced, the new node is empty, the
catalog (sized for 2,000 requests/min) receives 15,000 requests/min for the top-100 products and
falls over for eight minutes. `simulate_replacement` replays that traffic through pymemcache's
`HashClient` over real memcached nodes and swaps one node for an empty one mid-run.

Time is simulated so that minutes of traffic take seconds: requests carry virtual timestamps, an
entry's TTL is stored with it and checked against the virtual clock, and requests are processed in
windows one origin latency long — every request for a key that is missing in a window goes to the
origin, because under cache-aside they all arrive before the first one has filled the cache. The
cache contents, the node each key lives on and the remapping are real.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pymemcache.client.hash import HashClient
from pymemcache.client.rendezvous import RendezvousHash

from experiments.caches.keydesign import load as load_key_design
from experiments.models import popularity
from experiments.results import Table
from experiments.seed import figure, origin_table


@dataclass(frozen=True)
class HotTraffic:
    """Traffic of the top-100 products: the seed's figures (``data/``), with the popularity within the hundred
    of the hot set (``zipf_s``: `experiments.models.popularity.hot_set`, the exponent that gives the top 100 their
    15,000 of 40,000 reads a minute). The catalog already serves misses from the rest of the traffic at its full
    capacity (``background_origin_per_min``)."""

    hot_keys: int = int(figure("hot_products"))
    hot_requests_per_min: float = figure("hot_product_requests_per_min")
    background_origin_per_min: float = figure("catalog_capacity_per_min")
    capacity_per_min: float = figure("catalog_capacity_per_min")
    ttl_s: int = load_key_design()["product"].ttl_s
    origin_latency_s: float = float(origin_table().set_index("family").loc["product", "seed_origin_ms"]) / 1000
    zipf_s: float = field(default_factory=lambda: popularity.hot_set().alpha)


class MemoHasher(RendezvousHash):
    """pymemcache's rendezvous hashing, memoized per key (same placement, far fewer MurmurHash calls)."""

    def __init__(self) -> None:
        super().__init__()
        self._memo: dict[str, str] = {}

    def add_node(self, node) -> None:
        """Add a node and forget every memoized placement (some keys move)."""
        super().add_node(node)
        self._memo.clear()

    def remove_node(self, node) -> None:
        """Remove a node and forget every memoized placement (its keys move)."""
        super().remove_node(node)
        self._memo.clear()

    def get_node(self, key):
        """The node for ``key``, hashed once per key until the node list changes."""
        if key not in self._memo:
            self._memo[key] = super().get_node(key)
        return self._memo[key]


def _requests(traffic: HotTraffic, seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Poisson arrival times and Zipf-distributed product ranks of the hot traffic (seeded)."""
    rng = np.random.default_rng(seed)
    rate = traffic.hot_requests_per_min / 60
    times = np.cumsum(rng.exponential(1 / rate, int(rate * seconds * 1.1) + 100))
    times = times[times < seconds]
    weights = 1 / np.arange(1, traffic.hot_keys + 1) ** traffic.zipf_s
    ranks = rng.choice(traffic.hot_keys, size=len(times), p=weights / weights.sum())
    return times, ranks


REPLACEMENT = Table("coldnode.REPLACEMENT", ("t_s", "requests", "hot_misses", "hit_rate", "origin_per_min",
                                             "capacity_per_min"))
"""`simulate_replacement`: one row per second."""

SUMMARY = Table("coldnode.SUMMARY", ("peak_origin_per_min", "seconds_over_capacity", "extra_origin_calls",
                                     "lowest_hit_rate", "window_s", "seed_claim_origin_per_min", "seed_claim_minutes"))
"""`summarize`'s record."""


def simulate_replacement(servers: list, traffic: HotTraffic, *, seconds: float, replace_at_s: float,
                         seed: int) -> pd.DataFrame:
    """Hot traffic through a HashClient over ``servers[:-1]``; at ``replace_at_s`` the last of those is
    replaced by the empty ``servers[-1]``. One row per simulated second."""
    for server in servers:
        server.client().flush_all()
    def connect(nodes):
        return HashClient([(s.host, s.port) for s in nodes], hasher=MemoHasher, default_noreply=False,
                          connect_timeout=2, timeout=5)

    client = connect(servers[:-1])
    times, ranks = _requests(traffic, seconds, seed)
    keys = np.array([f"product:HOT{r:03d}" for r in range(traffic.hot_keys)])
    window = traffic.origin_latency_s
    edges = np.arange(0, seconds + window, window)
    bounds = np.searchsorted(times, edges)
    per_second = np.zeros((int(np.ceil(seconds)), 2))  # requests, origin calls
    replaced = False
    for start, end, t0 in zip(bounds[:-1], bounds[1:], edges[:-1]):
        if not replaced and t0 >= replace_at_s:  # the node list is redeployed with the new address
            client.close()
            client = connect(servers[:-2] + servers[-1:])
            replaced = True
        if start == end:
            continue
        batch = ranks[start:end]
        wanted = sorted(set(keys[batch]))
        found = client.get_many(wanted)
        fresh = {k for k, v in found.items() if struct.unpack("d", v[:8])[0] > t0}
        missing = [k for k in wanted if k not in fresh]
        misses_in_window = sum(1 for r in batch if keys[r] not in fresh)
        if missing:
            expiry = struct.pack("d", t0 + traffic.ttl_s)
            client.set_many({k: expiry + b"product" for k in missing}, expire=0)
        second = int(t0)
        per_second[second, 0] += end - start
        per_second[second, 1] += misses_in_window
    client.close()
    frame = pd.DataFrame({"t_s": np.arange(len(per_second)), "requests": per_second[:, 0],
                          "hot_misses": per_second[:, 1]})
    frame["hit_rate"] = 1 - frame.hot_misses / frame.requests.clip(lower=1)
    frame["origin_per_min"] = frame.hot_misses * 60 + traffic.background_origin_per_min
    frame["capacity_per_min"] = traffic.capacity_per_min
    REPLACEMENT.check(frame)
    return frame


def summarize(frame: pd.DataFrame, traffic: HotTraffic, replace_at_s: float, window_s: int = 60) -> dict:
    """Peak origin load in the ``window_s`` after the replacement, seconds over capacity, extra misses.

    The window stops before the TTL, so entries expiring on their own (which they do with or without
    a replacement) are not counted against it."""
    after = frame[(frame.t_s >= int(replace_at_s)) & (frame.t_s < int(replace_at_s) + window_s)]
    over = after[after.origin_per_min > traffic.capacity_per_min]
    return SUMMARY.record({
        "peak_origin_per_min": float(after.origin_per_min.max()),
        "seconds_over_capacity": len(over),
        "extra_origin_calls": int(after.hot_misses.sum()),
        "lowest_hit_rate": float(after.hit_rate.min()),
        "window_s": window_s,
        "seed_claim_origin_per_min": traffic.hot_requests_per_min,
        "seed_claim_minutes": figure("cold_outage_minutes"),
    })
