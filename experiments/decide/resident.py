"""What a shared TTL cache holds: the resident set, not the catalog.

A cache that fills a key on a miss and drops it when its TTL runs out (non-renewing: a hit does not extend
it) holds each key for the share of time it is live. Under Poisson reads at rate λ a key is fetched, stays
τ seconds, and is fetched again at its next read, so it is resident λτ / (1 + λτ) of the time — the same
fraction the in-process chapter's model gives as the key's hit probability (`experiments.models.cachemodel`,
eager expiry, no capacity limit). Summed over a Zipf catalog that is the closed form; for a trace the
replay measures it: with no capacity limit every miss is one fill that stays min(τ, what is left of the
trace), so by Little's law the mean resident count is fills × min(τ, duration) / duration.

For the note's chatbot (500,000 products, 40,000 reads a minute, Zipf 1.33, 5-minute TTL) that is about
10,000 documents, not 500,000: sizing a cluster (or billing Serverless storage) for the whole catalog prices
keys the cache never holds.
"""

from __future__ import annotations

import numpy as np

from experiments.decide.workload import Family
from experiments.models import lrusim
from experiments.models.cachemodel import hit_probability, zipf_groups


def resident_keys_closed_form(keys: int, alpha: float, reads_per_s: float, ttl_s: float) -> float:
    """Mean keys resident in an unbounded non-renewing TTL cache: Σ λᵢτ / (1 + λᵢτ) over a Zipf catalog."""
    mass, count = zipf_groups(keys, alpha)
    rate = reads_per_s * mass / count
    return float((count * hit_probability(rate, float("inf"), ttl_s)).sum())


def resident_keys_replayed(entry: np.ndarray, times: np.ndarray, ttl_s: float) -> float:
    """Mean keys resident when a trace is replayed through an unbounded TTL cache (Little's law on its fills)."""
    duration = float(times[-1] - times[0]) if times.size > 1 else 0.0
    out = lrusim.replay(entry, times, np.ones(int(entry.max()) + 1), capacity=float("inf"), ttl_s=ttl_s,
                        warmup_s=0, expiry="eager")
    fills = out["requests_counted"] - out["hits"]
    if duration <= 0:
        return float(fills)
    return fills * min(ttl_s, duration) / duration


def resident_keys(f: Family, multiple: float) -> float:
    """Keys of family ``f`` a shared cache holds at ``multiple`` times its normal reads (a trace: as recorded)."""
    if f.trace is not None:
        return resident_keys_replayed(f.trace.entry, f.trace.times, f.ttl_s)
    return resident_keys_closed_form(f.keys, f.zipf_alpha, f.reads_per_s * multiple, f.ttl_s)


def resident_gb(families: list[Family], *, multiple: float, overhead: float) -> float:
    """Bytes (10⁹) a shared cache holds for ``families`` at ``multiple`` times normal traffic, with the memory
    per item over its own bytes (``overhead``, the Valkey chapter's measurement or the reader's endpoint's)."""
    return sum(resident_keys(f, multiple) * f.value_kb * 1000 * overhead for f in families) / 1e9


def catalog_gb(families: list[Family], *, overhead: float) -> float:
    """Bytes (10⁹) of every key of ``families``: what the first edition sized for, kept to show the difference."""
    return sum((f.keys if f.trace is None else f.trace.sizes.size) * f.value_kb * 1000 * overhead
               for f in families) / 1e9
