"""Memory and garbage-collector pauses of an in-process product cache, measured in a fresh Python process.

The seed's failure 2 says 5,000 cached products of ~100 KB take 500 MB and that Python's GC then
stops the world for 20–80 ms. What the collector walks is *container* objects (dicts, lists), not
bytes: a product cached as the encoded JSON (``bytes``) is one untracked object, the same product
cached parsed is hundreds of dicts. Each measurement runs in its own interpreter (``python -m
experiments.probes.gcpause``), so resident memory is the cache's and nothing else's, and reports:

* resident memory growth while filling the cache (``VmRSS``);
* the pauses of the automatic full (generation-2) collections that happened during the fill, timed
  with ``gc.callbacks`` — the pauses a request would see;
* the time of an explicit ``gc.collect()`` with the cache full, repeated.

A product is ``product_json``: the seed's attributes plus reviews, the part that makes a product
page 100 KB — about 2 objects per 100 bytes.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from experiments.errors import BookError

REPRESENTATIONS = ("bytes", "parsed JSON")


def product_json(index: int, size_kb: int) -> bytes:
    """A product page of about ``size_kb`` KB: attributes and as many reviews as fit."""
    doc = {"asin": f"B{index:09d}", "title": f"Manga vol. {index % 40 + 1}", "format": "paperback",
           "page_count": 180 + index % 70, "language": "ja", "image_url": f"https://img/{index}.jpg",
           "review_score": 4.2, "reviews": []}
    review = 0
    while len(json.dumps(doc)) < size_kb * 1024:
        doc["reviews"].append({"id": review, "rating": 1 + (index + review) % 5, "helpful": review % 17,
                               "title": f"Review {review} of volume {index}",
                               "body": "A gripping volume with " + "art and story " * 12})
        review += 1
    return json.dumps(doc).encode()


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise BookError("/proc/self/status has no VmRSS line (is this Linux?)")


def _measure_here(entries: int, representation: str, size_kb: int, repeats: int) -> dict:
    """Fill a cache in this process and time its collections (runs inside the child interpreter)."""
    template = product_json(0, size_kb)
    pauses: list[float] = []
    started: dict[str, float] = {}

    def timer(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started["t"] = time.perf_counter()
            elif "t" in started:
                pauses.append(1000 * (time.perf_counter() - started.pop("t")))

    gc.collect()
    before = _rss_mb()
    gc.callbacks.append(timer)
    cache = {}
    for i in range(entries):
        raw = template.replace(b"B000000000", f"B{i:09d}".encode())
        cache[i] = json.loads(raw) if representation == "parsed JSON" else raw
    gc.callbacks.remove(timer)
    grown = _rss_mb() - before
    explicit = []
    for _ in range(repeats):
        start = time.perf_counter()
        gc.collect()
        explicit.append(1000 * (time.perf_counter() - start))
    return {"representation": representation, "entries": entries, "entry_kb": len(template) / 1024,
            "rss_growth_mb": grown, "tracked_objects": len(gc.get_objects()),
            "automatic_full_collections": len(pauses), "longest_automatic_pause_ms": max(pauses, default=0.0),
            "full_collect_p50_ms": float(np.median(explicit)), "full_collect_max_ms": max(explicit)}


def measure(entries: int, representation: str, *, size_kb: int = 100, repeats: int = 5,
            timeout_s: float = 120) -> dict:
    """`_measure_here` in a fresh interpreter; a one-line error if it fails or takes too long."""
    if representation not in REPRESENTATIONS:
        raise BookError(f"representation={representation!r} is not one of {REPRESENTATIONS}")
    command = [sys.executable, "-m", "experiments.probes.gcpause", str(entries), representation, str(size_kb), str(repeats)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BookError(f"the GC measurement of {entries} {representation} entries took over {timeout_s:.0f} s") from None
    if done.returncode != 0:
        raise BookError(f"the GC measurement failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def sweep(entry_counts: list[int], *, size_kb: int = 100, repeats: int = 5) -> pd.DataFrame:
    """`measure` for every entry count and both representations."""
    return pd.DataFrame([measure(n, rep, size_kb=size_kb, repeats=repeats)
                         for rep in REPRESENTATIONS for n in entry_counts])


def cache_share_ms(table: pd.DataFrame) -> pd.Series:
    """The cache's own part of a full collection: parsed JSON minus bytes at the same entry count (ms)."""
    by = table.pivot(index="entries", columns="representation", values="full_collect_p50_ms")
    return by["parsed JSON"] - by["bytes"]


def entries_for_pause(table: pd.DataFrame, pause_ms: float) -> float:
    """Parsed-JSON entries whose own part of a full collection reaches ``pause_ms`` (line through 0, fitted)."""
    share = cache_share_ms(table)
    slope = float((share * share.index).sum() / (share.index.to_numpy(float) ** 2).sum())
    return pause_ms / slope


def full_collection_interval_s(table: pd.DataFrame, *, entries: int, ttl_s: float) -> float:
    """Seconds between full collections when a full parsed-JSON cache is refilled once per TTL.

    CPython runs a full (generation-2) collection only when the objects that survived into the old
    generation since the last one exceed 25 % of those already there (``gc`` module documentation,
    CPython 3.11). The cache adds ``tracked`` container objects per entry, all replaced every TTL.
    """
    row = table[(table.representation == "parsed JSON") & (table.entries == entries)].iloc[0]
    base = table[(table.representation == "bytes") & (table.entries == entries)].iloc[0]
    tracked_per_entry = (row.tracked_objects - base.tracked_objects) / entries
    churn_per_s = entries / ttl_s * tracked_per_entry
    return 0.25 * row.tracked_objects / churn_per_s


if __name__ == "__main__":
    count, rep, kb, reps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(_measure_here(count, rep, kb, reps)))
