"""libCacheSim as the peer simulator: the same request stream replayed by a simulator nobody here wrote.

The book's own replay (`experiments.models.lrusim`) is checked against libCacheSim's LRU (the C
simulator of Yang et al., through its Python bindings), and libCacheSim supplies the policies the book
does not implement (FIFO, S3-FIFO, SIEVE, W-TinyLFU, LFU). Streams are handed over in libCacheSim's
``oracleGeneral`` binary format — 24 bytes per request: ``uint32`` time (s), ``uint64`` object id,
``uint32`` size, ``int64`` next access — so the simulation runs in its compiled loop, never a
per-request Python loop.

The format carries whole-second times and no TTL, and the bindings (0.3.5) expire nothing even when given
one (a cache's ``default_ttl`` or a request's ``ttl``: an entry still hits long after either): libCacheSim
agrees with the book's replay exactly without a TTL, and a TTL replay stays the book's own.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from experiments.errors import ParameterError
from experiments.paths import BUILD

ORACLE_GENERAL = np.dtype([("time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access", "<i8")])


def _policies() -> dict:
    import libcachesim as lcs  # imported on use: the C extension is only needed by the peer

    return {"lru": lcs.LRU, "fifo": lcs.FIFO, "s3fifo": lcs.S3FIFO, "sieve": lcs.Sieve,
            "wtinylfu": lcs.WTinyLFU, "lfu": lcs.LFU}


POLICIES = ("lru", "fifo", "s3fifo", "sieve", "wtinylfu", "lfu")


def oracle_general(entry: np.ndarray, times: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The stream as oracleGeneral records; ids are shifted by one (libCacheSim reserves 0)."""
    if entry.shape != times.shape:
        raise ParameterError(f"entry ({entry.size}) and times ({times.size}) must have one value per request")
    if entry.size == 0:
        raise ParameterError("the request stream is empty; give at least one request")
    records = np.zeros(entry.size, ORACLE_GENERAL)
    records["time"] = np.asarray(times, np.float64).astype(np.uint32)
    records["obj_id"] = np.asarray(entry, np.int64) + 1
    records["obj_size"] = np.asarray(sizes, np.float64)[entry].astype(np.uint32)
    records["next_access"] = -1
    return records


HASHPOWER = 20
"""log2 of the slots of libCacheSim's object table: 2^20 is ample for the book's streams and three times faster
to set up than the default 2^24 (same hits, the table only indexes objects)."""


class Stream:
    """One request stream written once as an oracleGeneral file under ``_build`` (removed on `close`),
    replayed by any policy at any capacity (bytes; entries when every size is 1).

    `hits` runs libCacheSim's compiled loop; `hit_flags` feeds the same requests one by one through the
    same policy's ``get`` (a Python loop, ≈ 1 M requests/s) to tell which requests hit — what the compiled
    loop does not report — and a test checks the two agree exactly."""

    def __init__(self, entry: np.ndarray, times: np.ndarray, sizes: np.ndarray):
        self.entry, self.times, self.sizes = entry, times, sizes
        records = oracle_general(entry, times, sizes)
        BUILD.mkdir(parents=True, exist_ok=True)
        fd, self.path = tempfile.mkstemp(prefix="peer-", suffix=".oracleGeneral.bin", dir=BUILD)
        os.close(fd)
        records.tofile(self.path)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove the stream's file (closing twice is harmless)."""
        if os.path.exists(self.path):
            os.remove(self.path)

    @staticmethod
    def _cache(policy: str, capacity: float):
        if policy not in POLICIES:
            raise ParameterError(f"policy={policy!r} is not one of {POLICIES}")
        if not capacity >= 1:
            raise ParameterError(f"capacity={capacity!r} must be at least 1")
        return _policies()[policy](int(capacity), hashpower=HASHPOWER)

    def hits(self, policy: str, capacity: float) -> int:
        """Requests that hit under ``policy`` at ``capacity``, from libCacheSim's compiled loop."""
        import libcachesim as lcs

        cache = self._cache(policy, capacity)
        miss_ratio, _ = cache.process_trace(lcs.TraceReader(self.path, lcs.TraceType.ORACLE_GENERAL_TRACE))
        return self.entry.size - round(miss_ratio * self.entry.size)

    def hit_flags(self, policy: str, capacity: float) -> np.ndarray:
        """Whether each request hits under ``policy`` at ``capacity``: the requests fed one at a time."""
        import libcachesim as lcs

        cache, request = self._cache(policy, capacity), lcs.Request()
        sizes = np.asarray(self.sizes, np.float64)[self.entry].astype(np.int64).tolist()
        flags = np.empty(self.entry.size, bool)
        for i, (obj, size, now) in enumerate(zip((self.entry + 1).tolist(), sizes,
                                                 np.asarray(self.times).astype(np.int64).tolist())):
            request.obj_id, request.obj_size, request.clock_time = obj, size, now
            flags[i] = cache.get(request)
        return flags


def hits(policy: str, entry: np.ndarray, times: np.ndarray, sizes: np.ndarray, *, capacities: list[float]) -> list[int]:
    """Hit counts of libCacheSim's ``policy`` for the stream at each capacity (bytes; entries when every
    size is 1), all from one oracleGeneral file."""
    if not capacities:
        raise ParameterError(f"capacities={capacities!r} must be one or more sizes of at least 1")
    with Stream(entry, times, sizes) as stream:
        return [stream.hits(policy, capacity) for capacity in capacities]
