"""The book's LRU+TTL cache model (`experiments.models.cachemodel`) against exact replays (`experiments.models.lrusim`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.errors import ParameterError
from experiments.models import cachemodel, daxmodel, lrusim


def _renewal_hit_rate(rate: float, t_char: float, ttl: float, n: int = 200_000, seed: int = 1) -> float:
    """One entry, Poisson reads: hit while the last read is < t_char ago and the fetch < ttl ago."""
    times = np.cumsum(np.random.default_rng(seed).exponential(1 / rate, n))
    hits, fetched, last = 0, -math.inf, -math.inf
    for now in times:
        if now - last < t_char and now - fetched < ttl:
            hits += 1
        else:
            fetched = now
        last = now
    return hits / n


@pytest.mark.parametrize("rate,t_char,ttl", [(1, 0.5, 3), (1, 2, 3), (0.1, 5, 30), (3, 0.2, 10), (5, 1, 3)])
def test_closed_form_matches_a_renewal_simulation(rate, t_char, ttl):
    model = float(cachemodel.hit_probability(np.array([rate]), t_char, ttl)[0])
    assert model == pytest.approx(_renewal_hit_rate(rate, t_char, ttl), abs=0.005)


def test_closed_form_limits():
    rates = np.geomspace(1e-4, 1e3, 50)
    ttl_only = cachemodel.hit_probability(rates, math.inf, 300)
    assert np.allclose(ttl_only, rates * 300 / (1 + rates * 300))
    che = cachemodel.hit_probability(rates, 2.0, 1e9)
    assert np.allclose(che, -np.expm1(-rates * 2.0), atol=1e-9)
    assert np.all(np.diff(cachemodel.hit_probability(rates, 20.0, 300)) >= 0)


def test_zipf_groups_match_the_item_by_item_model():
    workload = daxmodel.ProjectionWorkload(catalog=300_000, alpha=0.9, projections=3)
    mass, count = cachemodel.zipf_groups(workload.catalog, workload.alpha)
    assert mass.sum() == pytest.approx(1) and count.sum() == workload.catalog
    exact_pop = workload.item_popularity()
    rates = np.repeat(workload.reads_per_s * exact_pop / 3, 3)
    sizes = np.full(rates.size, float(workload.entry_bytes))
    capacity = 0.2e9
    t_char = cachemodel.characteristic_time(rates, sizes, capacity)
    exact = float((rates * cachemodel.hit_probability(rates, t_char, 300)).sum() / rates.sum())
    assert daxmodel.predict(workload, capacity_bytes=capacity)["hit_rate"] == pytest.approx(exact, abs=2e-4)


@pytest.mark.parametrize("expiry", cachemodel.EXPIRY)
def test_model_matches_the_replay_for_both_expiry_rules(expiry):
    """A small count-based cache where capacity and TTL both bind (the in-process chapter's shape)."""
    rng = np.random.default_rng(4)
    mass, count = cachemodel.zipf_groups(20_000, 0.8)
    assert (count == 1).all()
    reads, n = 40.0, 600_000
    entry = rng.choice(20_000, size=n, p=mass)
    times = np.cumsum(rng.exponential(1 / reads, n))
    ttl, capacity = 120.0, 1000
    sim = lrusim.replay(entry, times, np.ones(20_000), capacity=capacity, ttl_s=ttl, warmup_s=2 * ttl, expiry=expiry)
    model = cachemodel.mixture(reads * mass, np.ones(20_000), reads * mass, capacity=capacity, ttl=ttl, expiry=expiry)
    assert model["hit_rate"] == pytest.approx(sim["hit_rate"], abs=0.01)
    assert math.isfinite(model["t_char_s"])


def test_eager_expiry_frees_room_that_lazy_expiry_keeps():
    entry = np.array([0, 1, 2, 0])
    times = np.array([0.0, 1.0, 20.0, 21.0])  # 0 and 1 expire at 10 s and 11 s; capacity 2
    lazy = lrusim.replay(entry, times, np.ones(3), capacity=2, ttl_s=10, warmup_s=0, expiry="lazy")
    eager = lrusim.replay(entry, times, np.ones(3), capacity=2, ttl_s=10, warmup_s=0, expiry="eager")
    assert lazy["evictions"] == 2 and eager["evictions"] == 0  # lazy: 0 then 1 pushed out by LRU
    with pytest.raises(ParameterError):
        lrusim.replay(entry, times, np.ones(3), capacity=2, ttl_s=10, warmup_s=0, expiry="never")
