"""The book's LRU replay (`experiments.models.lrusim`) against libCacheSim's (`experiments.models.peer`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.errors import ParameterError
from experiments.models import lrusim, peer


def _zipf_stream(n_objects: int, n: int, alpha: float, seed: int):
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, n_objects + 1) ** alpha
    entry = rng.choice(n_objects, size=n, p=weights / weights.sum())
    return entry, np.arange(n) / 100.0, rng.integers(100, 5000, n_objects).astype(float)


def _book_hits(entry, times, sizes, capacity, ttl_s=math.inf):
    return lrusim.replay(entry, times, sizes, capacity=capacity, ttl_s=ttl_s, warmup_s=0, expiry="lazy")["hits"]


@pytest.mark.parametrize("alpha,seed", [(0.9, 7), (1.0, 1)])
def test_the_replay_and_libcachesim_lru_give_identical_hit_counts(alpha, seed):
    entry, times, sizes = _zipf_stream(20_000, 300_000, alpha, seed)
    capacities = [2e5, 1e6, 5e6]
    assert peer.hits("lru", entry, times, sizes, capacities=capacities) == [
        _book_hits(entry, times, sizes, c) for c in capacities]
    ones = np.ones_like(sizes)  # capacity in entries
    assert peer.hits("lru", entry, times, ones, capacities=[500, 5000]) == [
        _book_hits(entry, times, ones, c) for c in (500, 5000)]


def test_libcachesim_never_expires_an_oracle_general_stream_so_a_ttl_stays_the_books():
    entry, times, sizes = _zipf_stream(20_000, 300_000, 0.9, 7)
    (lru,) = peer.hits("lru", entry, times, sizes, capacities=[5e6])
    assert lru == _book_hits(entry, times, sizes, 5e6)
    assert _book_hits(entry, times, sizes, 5e6, ttl_s=60) < lru  # the TTL costs hits only the book sees


def test_the_peer_policies_beat_fifo_on_a_skewed_stream_and_leave_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(peer, "BUILD", tmp_path)
    entry, times, sizes = _zipf_stream(20_000, 200_000, 1.0, 3)
    ones = np.ones_like(sizes)
    counts = {p: peer.hits(p, entry, times, ones, capacities=[1000])[0] for p in peer.POLICIES}
    assert all(counts[p] > counts["fifo"] for p in ("lru", "s3fifo", "sieve", "wtinylfu"))
    assert list(tmp_path.iterdir()) == []


def test_oracle_general_records_are_24_bytes_with_ids_from_one():
    records = peer.oracle_general(np.array([0, 2]), np.array([0.5, 3.7]), np.array([10.0, 20.0, 30.0]))
    assert peer.ORACLE_GENERAL.itemsize == 24
    assert records["obj_id"].tolist() == [1, 3] and records["obj_size"].tolist() == [10, 30]
    assert records["time"].tolist() == [0, 3]


@pytest.mark.parametrize("kwargs,message", [
    ({"policy": "arc"}, "is not one of"),
    ({"capacities": []}, "one or more sizes"),
    ({"capacities": [0]}, "at least 1"),
    ({"entry": np.array([], np.int64), "times": np.array([])}, "empty"),
    ({"times": np.zeros(3)}, "one value per request"),
])
def test_bad_peer_arguments_are_one_line_errors(kwargs, message):
    args = {"policy": "lru", "entry": np.array([0, 1]), "times": np.zeros(2), "sizes": np.ones(2),
            "capacities": [1]} | kwargs
    with pytest.raises(ParameterError, match=message):
        peer.hits(args.pop("policy"), args.pop("entry"), args.pop("times"), args.pop("sizes"), **args)
