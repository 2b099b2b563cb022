"""Redis data structures for the key design: what each layout costs in memory, bytes and time.

The seed chose Redis partly for its data structures ("Hashes for structured objects, Sets for
recommendation lists"). Two questions, measured on a real server:

* a product as one JSON string or as a hash — an intent then reads only the fields it needs
  (``HMGET``) instead of the whole document (``GET`` and parse);
* a recommendation list as a JSON string or as a sorted set — an ordered list needs scores, which a
  plain Set does not keep; ``ZREVRANGE`` reads the top of the list without the rest.

Every read is one round trip in both layouts; what changes is memory, bytes on the wire and
client-side work.
"""

from __future__ import annotations

import json

import pandas as pd

from experiments.caches.keydesign import load as load_key_design
from experiments.caches.origin import document
from experiments.measure import summarize_ms, time_calls_ms
from experiments.results import Table

INTENT_FIELDS = {
    "product_question": ("title", "description", "format", "page_count", "language"),
    "recommendation": ("title", "image_url", "review_score"),  # the seed also wants price_cents: read live
}
"""The attributes each intent fetches (seed, DAX section), minus the price, which is never cached."""

TOP_N = 5
"""How many recommendations a chatbot turn shows."""


def _memory(client, key: str) -> int:
    return int(client.memory_usage(key, samples=0))


LAYOUTS = Table("structures.LAYOUTS", (
    "layout", "read", "memory_bytes", "ttl_s", "design_ttl_s", "encoding", "bytes_returned", "round_trips", "p50_us",
    "p99_us"))
"""`compare_product_layouts` and `compare_reco_layouts`: one row per layout and read, in the order compared."""


def _row(layout: str, read: str, client, key: str, call, repetitions: int, returned: int, ttl_s: int) -> dict:
    """One layout and read: memory, encoding, bytes returned, latency, and the key's own TTL read back
    beside the key design's (``ttl_s`` against ``design_ttl_s``)."""
    stats = summarize_ms(time_calls_ms(call, repetitions))
    return {"layout": layout, "read": read, "memory_bytes": _memory(client, key),
            "ttl_s": int(client.ttl(key)), "design_ttl_s": ttl_s,
            "encoding": client.object("encoding", key).decode(), "bytes_returned": returned,
            "round_trips": 1, "p50_us": stats["p50_ms"] * 1000, "p99_us": stats["p99_ms"] * 1000}


def compare_product_layouts(target, *, size_bytes: int, repetitions: int) -> pd.DataFrame:
    """A product as a JSON string vs a hash: memory and the read each intent makes."""
    client = target.client
    family = load_key_design()["product"]
    payload = load_key_design().cacheable_payload("product:B08X1YRSTR", document("product", "B08X1YRSTR", size_bytes))
    as_string, as_hash = target.key("product:B08X1YRSTR"), target.key("product:B08X1YRSTR:hash")
    client.set(as_string, json.dumps(payload), ex=family.ttl_s)
    client.hset(as_hash, mapping={k: json.dumps(v) for k, v in payload.items()})
    client.expire(as_hash, family.ttl_s)
    rows = []
    for intent, fields in INTENT_FIELDS.items():
        def from_string(fields=fields):
            doc = json.loads(client.get(as_string))
            return {f: doc[f] for f in fields}

        def from_hash(fields=fields):
            return dict(zip(fields, (json.loads(v) for v in client.hmget(as_hash, fields))))

        assert from_string() == from_hash()
        rows.append(_row("JSON string", f"{intent}: GET + parse", client, as_string, from_string,
                         repetitions, len(client.get(as_string)), family.ttl_s))
        rows.append(_row("hash", f"{intent}: HMGET {len(fields)} fields", client, as_hash, from_hash,
                         repetitions, sum(len(v) for v in client.hmget(as_hash, fields)), family.ttl_s))
    return LAYOUTS.frame(rows)


def compare_reco_layouts(target, *, repetitions: int) -> pd.DataFrame:
    """A recommendation list as a JSON string vs a sorted set: memory and reading the top ``TOP_N``."""
    client = target.client
    family = load_key_design()["reco"]
    items = document("reco", "u42:B08X1YRSTR", 1024)["items"]
    as_string, as_zset = target.key("reco:u42:B08X1YRSTR"), target.key("reco:u42:B08X1YRSTR:zset")
    client.set(as_string, json.dumps(items), ex=family.ttl_s)
    client.zadd(as_zset, {i["asin"]: i["score"] for i in items})
    client.expire(as_zset, family.ttl_s)

    def from_string():
        ranked = sorted(json.loads(client.get(as_string)), key=lambda i: (i["score"], i["asin"]), reverse=True)[:TOP_N]
        return [i["asin"] for i in ranked]

    def from_zset():
        return [a.decode() for a in client.zrevrange(as_zset, 0, TOP_N - 1)]

    assert from_string() == from_zset()
    return LAYOUTS.frame([
        _row("JSON string", f"top {TOP_N}: GET + parse + sort", client, as_string, from_string, repetitions,
             len(client.get(as_string)), family.ttl_s),
        _row("sorted set", f"top {TOP_N}: ZREVRANGE", client, as_zset, from_zset, repetitions,
             sum(len(a) for a in client.zrevrange(as_zset, 0, TOP_N - 1, withscores=False)), family.ttl_s),
    ])
