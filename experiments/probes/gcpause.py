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
from collections import deque
from collections.abc import Callable

import numpy as np
import pandas as pd

from experiments.errors import BookError
from experiments.lab.quiet import quiet
from experiments.measure import spread_between_rounds
from experiments.results import Table

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


def _full_collection_timer(pauses: list[float]) -> Callable[[str, dict], None]:
    """A ``gc.callbacks`` hook that appends the length of each full (generation-2) collection to ``pauses`` (ms)."""
    started: dict[str, float] = {}

    def timer(phase: str, info: dict) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started["t"] = time.perf_counter()
            elif "t" in started:
                pauses.append(1000 * (time.perf_counter() - started.pop("t")))

    return timer


def _measure_here(entries: int, representation: str, size_kb: int, repeats: int) -> dict:
    """Fill a cache in this process and time its collections (runs inside the child interpreter)."""
    template = product_json(0, size_kb)
    pauses: list[float] = []
    timer = _full_collection_timer(pauses)

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
            "full_collect_p50_ms": float(np.median(explicit)), "full_collect_max_ms": max(explicit),
            "full_collect_spread_ms": spread_between_rounds(explicit)}


def _in_fresh_interpreter(what: str, timeout_s: float, **kwargs) -> dict:
    """Run ``_measure_here`` or ``_traffic_here`` (``kwargs`` as JSON) in a new interpreter; one-line errors."""
    command = [sys.executable, "-m", "experiments.probes.gcpause", json.dumps({"what": what, **kwargs})]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BookError(f"the GC measurement {kwargs} took over {timeout_s:.0f} s") from None
    if done.returncode != 0:
        raise BookError(f"the GC measurement failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def measure(entries: int, representation: str, *, size_kb: int = 100, repeats: int = 5,
            timeout_s: float = 120) -> dict:
    """`_measure_here` in a fresh interpreter; a one-line error if it fails or takes too long."""
    if representation not in REPRESENTATIONS:
        raise BookError(f"representation={representation!r} is not one of {REPRESENTATIONS}")
    with quiet(f"full collections, {entries} entries as {representation}"):
        return _in_fresh_interpreter("fill", timeout_s, entries=entries, representation=representation,
                                     size_kb=size_kb, repeats=repeats)


SWEEP = Table("gcpause.SWEEP", (
    "representation", "entries", "entry_kb", "rss_growth_mb", "tracked_objects", "automatic_full_collections",
    "longest_automatic_pause_ms", "full_collect_p50_ms", "full_collect_max_ms", "full_collect_spread_ms"))
"""`sweep`: one `measure` per representation and entry count."""

UNDER_TRAFFIC = Table("gcpause.UNDER_TRAFFIC", (
    "messages", "tracked_per_turn", "tracked_objects", "turns", "full_collections", "pause_p50_ms", "explicit_full_ms",
    "in_flight", "traffic_s", "interval_s", "gc_time_share_pct"))
"""`under_traffic`: one row per turn size (``pause_p50_ms`` None: no automatic full collection seen)."""


def sweep(entry_counts: list[int], *, size_kb: int = 100, repeats: int = 5) -> pd.DataFrame:
    """`measure` for every entry count and both representations."""
    return SWEEP.frame(measure(n, rep, size_kb=size_kb, repeats=repeats)
                       for rep in REPRESENTATIONS for n in entry_counts)


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


def turn_document(messages: int) -> bytes:
    """The JSON one chatbot turn parses and holds until it answers: a chat request with ``messages`` of
    history and the model's reply calling a tool (the shape is ours: chat-completions-style messages)."""
    history = [{"role": ("user", "assistant")[i % 2], "content": f"message {i} about manga volume {i % 40 + 1}",
                "tool_calls": [{"id": f"call-{i}", "function": {"name": "get_product", "arguments": {"asin": f"B{i:09d}"}}}]}
               for i in range(messages)]
    reply = {"choices": [{"message": {"role": "assistant", "tool_calls": [
        {"id": "call-new", "function": {"name": "get_price", "arguments": {"asin": "B000000001"}}}]}}]}
    return json.dumps({"messages": history, "reply": reply}).encode()


def _traffic_here(entries: int, size_kb: int, message_counts: list[int], in_flight: int, refills_per_turn: float,
                  turns: int) -> list[dict]:
    """A full parsed-JSON cache, then for each turn size ``turns`` turns, ``in_flight`` alive at once, the
    cache refilled at its TTL rate; counts and times the full collections CPython starts by itself.
    Runs in the child interpreter; the cache is filled once and the sizes run one after another."""
    template = product_json(0, size_kb)
    cache = {i: json.loads(template) for i in range(entries)}
    pauses: list[float] = []
    timer = _full_collection_timer(pauses)

    rows, refilled = [], 0
    for messages in message_counts:
        turn = turn_document(messages)
        gc.collect()
        gc.disable()
        tracked = len(gc.get_objects())
        probe = json.loads(turn)
        tracked_per_turn = len(gc.get_objects()) - tracked - 1
        del probe
        gc.enable()
        window: deque = deque(maxlen=in_flight)
        due = 0.0
        pauses.clear()
        gc.callbacks.append(timer)
        for _ in range(turns):
            window.append(json.loads(turn))
            due += refills_per_turn
            while due >= 1:
                cache[refilled % entries] = json.loads(template)
                refilled, due = refilled + 1, due - 1
        gc.callbacks.remove(timer)
        window.clear()
        start = time.perf_counter()
        gc.collect()
        rows.append({"messages": messages, "tracked_per_turn": tracked_per_turn, "tracked_objects": tracked,
                     "turns": turns, "full_collections": len(pauses),
                     "pause_p50_ms": float(np.median(pauses)) if pauses else None,
                     "explicit_full_ms": 1000 * (time.perf_counter() - start)})
    return rows


def under_traffic(message_counts: list[int], *, turns_per_s: float, in_flight_s: float, entries: int, ttl_s: float,
                  size_kb: int = 100, turns: int = 3000, timeout_s: float = 300) -> pd.DataFrame:
    """Full collections with the request path counted: `_traffic_here` for each turn size, at ``turns_per_s``
    turns per task each alive ``in_flight_s``, the cache refilled once per ``ttl_s``.

    Each size's run covers ``turns / turns_per_s`` seconds of a task's traffic. ``gc_time_share_pct`` is
    the full collections' share of that time; a run that saw none counts one (an upper bound)."""
    if turns_per_s <= 0 or in_flight_s <= 0 or turns < 1 or not message_counts:
        raise BookError(f"turns_per_s={turns_per_s}, in_flight_s={in_flight_s}, turns={turns}, "
                        f"message_counts={message_counts}: all must be positive and the list not empty")
    in_flight = max(1, round(turns_per_s * in_flight_s))
    with quiet("full collections under a task's traffic"):
        table = pd.DataFrame(_in_fresh_interpreter(
            "traffic", timeout_s, entries=entries, size_kb=size_kb, message_counts=list(message_counts),
            in_flight=in_flight, refills_per_turn=entries / ttl_s / turns_per_s, turns=turns))
    covered_s = table.turns / turns_per_s
    pause = table.pause_p50_ms.fillna(table.explicit_full_ms)
    table = table.assign(in_flight=in_flight, traffic_s=covered_s,
                         interval_s=covered_s / table.full_collections.where(table.full_collections > 0),
                         gc_time_share_pct=100 * table.full_collections.clip(lower=1) * pause / 1000 / covered_s)
    UNDER_TRAFFIC.check(table)
    return table


def tracked_per_turn_for_share(traffic: pd.DataFrame, share_pct: float) -> float:
    """Tracked objects per turn at which full collections take ``share_pct`` of the time, interpolated
    (log-log) between the measured turn sizes around it; infinite if no measured size reaches it."""
    rows = traffic[traffic.full_collections > 0].sort_values("tracked_per_turn")
    above = rows[rows.gc_time_share_pct >= share_pct]
    if above.empty:
        return float("inf")
    hi = above.iloc[0]
    below = rows[rows.tracked_per_turn < hi.tracked_per_turn]
    if below.empty:
        return float(hi.tracked_per_turn)
    lo = below.iloc[-1]
    x = np.log([lo.tracked_per_turn, hi.tracked_per_turn])
    y = np.log([lo.gc_time_share_pct, hi.gc_time_share_pct])
    return float(np.exp(x[0] + (np.log(share_pct) - y[0]) * (x[1] - x[0]) / (y[1] - y[0])))


if __name__ == "__main__":
    job = json.loads(sys.argv[1])
    run = {"fill": _measure_here, "traffic": _traffic_here}[job.pop("what")]
    print(json.dumps(run(**job)))
