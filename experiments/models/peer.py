"""libCacheSim as the peer simulator: the same request stream replayed by a simulator nobody here wrote.

The book's own replay (`experiments.models.lrusim`) is checked against libCacheSim's LRU (the C
simulator of Yang et al., through its Python bindings), and libCacheSim supplies the policies the book
does not implement (FIFO, S3-FIFO, SIEVE, W-TinyLFU, LFU). Streams are handed over in libCacheSim's
``oracleGeneral`` binary format — 24 bytes per request: ``uint32`` time (s), ``uint64`` object id,
``uint32`` size, ``int64`` next access — so the simulation runs in its compiled loop, never a
per-request Python loop.

That format carries no TTL and whole-second times, so libCacheSim never expires an entry here: it agrees
with the book's replay exactly without a TTL, and a TTL replay stays the book's own.
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


def hits(policy: str, entry: np.ndarray, times: np.ndarray, sizes: np.ndarray, *, capacities: list[float]) -> list[int]:
    """Hit counts of libCacheSim's ``policy`` for the stream at each capacity (bytes; entries when every
    size is 1), all from one oracleGeneral file written under ``_build``."""
    if policy not in POLICIES:
        raise ParameterError(f"policy={policy!r} is not one of {POLICIES}")
    if not capacities or min(capacities) < 1:
        raise ParameterError(f"capacities={capacities!r} must be one or more sizes of at least 1")
    import libcachesim as lcs

    BUILD.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="peer-", suffix=".oracleGeneral.bin", dir=BUILD)
    os.close(fd)
    try:
        oracle_general(entry, times, sizes).tofile(path)
        counts = []
        for capacity in capacities:
            reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
            miss_ratio, _ = _policies()[policy](int(capacity)).process_trace(reader)
            counts.append(entry.size - round(miss_ratio * entry.size))
        return counts
    finally:
        os.remove(path)
