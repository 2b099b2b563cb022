"""An exact replay of an LRU cache with a TTL over millions of requests, compiled with numba.

The book's cache model (`experiments.models.cachemodel`) is an approximation; this is the ground truth it
is checked against. Entries are integers with a size; the cache holds at most ``capacity`` (bytes,
or entries when every size is 1). A read refreshes an entry's LRU position but not its TTL, which
counts from the fetch. Two expiry rules are replayed:

* ``lazy`` — an expired entry stays until it is read (then it is a miss) or LRU evicts it (DAX);
* ``eager`` — before every insertion all expired entries are purged, oldest first, as
  ``cachetools.TTLCache`` does on every write.

The loop is plain Python compiled by numba: ~20–70 million requests/s here, where a per-request
``cachetools`` loop does well under one million (`experiments.models.taskcache.naive_cachetools`).
"""

from __future__ import annotations

import numba
import numpy as np

from experiments.errors import ParameterError

EXPIRY = ("lazy", "eager")


@numba.njit(cache=False)
def _unlink(e, prev, nxt, ends):  # pragma: no cover - compiled
    if prev[e] != -1:
        nxt[prev[e]] = nxt[e]
    else:
        ends[0] = nxt[e]
    if nxt[e] != -1:
        prev[nxt[e]] = prev[e]
    else:
        ends[1] = prev[e]


@numba.njit(cache=False)
def _kernel(entry, times, sizes, capacity, ttl, warmup_s, eager):  # pragma: no cover - compiled
    n = sizes.size
    prev = np.full(n, -1, np.int64)
    nxt = np.full(n, -1, np.int64)
    written = np.zeros(n)
    resident = np.zeros(n, np.bool_)
    ends = np.full(2, -1, np.int64)  # [most recently used, least recently used]
    fifo = np.empty(entry.size, np.int64)  # insertions in time order, for eager expiry
    fifo_time = np.empty(entry.size)
    fifo_head = 0
    fifo_len = 0
    used = 0.0
    hits = 0
    counted = 0
    evicted_age_sum = 0.0
    evictions = 0
    for r in range(entry.size):
        e = entry[r]
        now = times[r]
        measured = now >= warmup_s
        hit = False
        if resident[e]:
            _unlink(e, prev, nxt, ends)
            if now - written[e] < ttl:
                hit = True
            else:
                used -= sizes[e]
                resident[e] = False
        if not hit:
            if eager:
                while fifo_head < fifo_len and now - fifo_time[fifo_head] >= ttl:
                    old = fifo[fifo_head]
                    if resident[old] and written[old] == fifo_time[fifo_head]:
                        _unlink(old, prev, nxt, ends)
                        resident[old] = False
                        used -= sizes[old]
                    fifo_head += 1
            if sizes[e] > capacity:
                if measured:
                    counted += 1
                continue
            while used + sizes[e] > capacity:
                old = ends[1]
                _unlink(old, prev, nxt, ends)
                resident[old] = False
                used -= sizes[old]
                if measured:
                    evicted_age_sum += now - written[old]
                    evictions += 1
            written[e] = now
            resident[e] = True
            used += sizes[e]
            fifo[fifo_len] = e
            fifo_time[fifo_len] = now
            fifo_len += 1
        prev[e] = -1
        nxt[e] = ends[0]
        if ends[0] != -1:
            prev[ends[0]] = e
        ends[0] = e
        if ends[1] == -1:
            ends[1] = e
        if measured:
            counted += 1
            if hit:
                hits += 1
    return hits, counted, evictions, evicted_age_sum, used


def replay(entry: np.ndarray, times: np.ndarray, sizes: np.ndarray, *, capacity: float, ttl_s: float,
           warmup_s: float, expiry: str) -> dict[str, float]:
    """Replay reads of ``entry`` at ``times`` through the cache; statistics count reads after ``warmup_s``.

    ``sizes`` has one size per entry id; ``ttl_s`` may be ``inf`` (pure LRU).
    """
    if expiry not in EXPIRY:
        raise ParameterError(f"expiry={expiry!r} must be one of {EXPIRY}")
    hits, counted, evictions, age_sum, used = _kernel(
        np.ascontiguousarray(entry, np.int64), np.ascontiguousarray(times, np.float64),
        np.ascontiguousarray(sizes, np.float64), float(capacity), float(ttl_s), float(warmup_s), expiry == "eager")
    if counted == 0:
        raise ParameterError(f"no request arrived after the {warmup_s:.0f} s warm-up; simulate more requests")
    return {"hit_rate": hits / counted, "requests_counted": counted, "hits": hits,
            "mean_evicted_age_s": age_sum / evictions if evictions else float("nan"),
            "evictions": evictions, "resident": used}
