"""Bytes per cached item, measured: each layout of the key design on Redis, Valkey and memcached.

A cache is sized, and ElastiCache Serverless is billed, by the memory its items take, not by the
size of the values. Each layout is loaded ``items`` times (distinct keys, the family's TTL, so the
expiry index counts too) into a fresh server of its own:

* Redis and Valkey: ``used_memory`` after the load minus before, over ``items`` — the value's
  encoding, the key, the dictionary entry, the expiry entry and jemalloc's size-class rounding;
* memcached: ``stats slabs`` after the load — chunk size times used chunks over every slab class,
  over ``items`` (slab-class rounding at the growth factor included) — and ``stats``' ``bytes``
  over ``items``, the item itself (header, key, value) before rounding.

memcached stores bytes only, so a sorted set is stored there as its JSON string, and a hash is not
measured there (it would be the 2 KB product's JSON string again). Values
within a layout are one document repeated: none of the three servers compresses or deduplicates
values, so their content does not change the memory they take.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from tqdm import tqdm

from experiments.caches.keydesign import load as load_key_design
from experiments.caches.origin import document
from experiments.lab.servers import MemcachedServer, RedisServer, server_identity
from experiments.lab.spawner import require_binary
from experiments.results import Table
from experiments.seed import figure

BATCH = 5000


@dataclass(frozen=True)
class Layout:
    """One way the key design stores a family: ``kind`` is ``string``, ``hash`` or ``zset``."""

    name: str
    family: str
    kind: str
    size_bytes: int

    def key(self, i: int) -> str:
        """The ``i``-th key of this layout's family, as the key design spells it."""
        return f"{self.family}:B{i:09d}" if self.family != "reco" else f"reco:u{i:07d}:B08X1YRSTR"

    def payload(self) -> dict:
        """The document one key holds: the key design's, with a product's live fields stripped."""
        doc = document(self.family, "B08X1YRSTR", self.size_bytes)
        if self.family == "product":
            doc = load_key_design().cacheable_payload("product:B08X1YRSTR", doc)
        return doc

    def json_bytes(self) -> bytes:
        """The value as stored in the string layout (a sorted set's members as one JSON list)."""
        doc = self.payload()
        return json.dumps(doc["items"] if self.kind == "zset" else doc).encode()

    def fields(self) -> dict[str, float | str]:
        """The hash's fields or the sorted set's members and scores."""
        doc = self.payload()
        if self.kind == "zset":
            return {i["asin"]: i["score"] for i in doc["items"]}
        return {k: json.dumps(v) for k, v in doc.items()}

    def own_bytes(self, engine: str) -> int:
        """What the item holds, before any engine's overhead: the key and the value's bytes (a hash's
        field names and values; a sorted set's members and their 8-byte scores)."""
        key = len(self.key(0))
        if self.kind == "string" or engine == "memcached":
            return key + len(self.json_bytes())
        if self.kind == "hash":
            return key + sum(len(k) + len(v) for k, v in self.fields().items())
        return key + sum(len(m) + 8 for m in self.fields())


LAYOUTS = (
    Layout("product, 2 KB JSON", "product", "string", 2048),
    Layout("product, 100 KB JSON", "product", "string", 102400),
    Layout("product, hash", "product", "hash", 2048),
    Layout("reco, sorted set", "reco", "zset", 1024),
    Layout("promo, 1 KB JSON", "promo", "string", 1024),
    Layout("review, 4 KB JSON", "review", "string", 4096),
)
"""The key design's families as the Redis chapter stores them (sizes from ``data/value_sizes.csv``)."""


def _batches(items: int) -> Iterator[range]:
    for start in range(0, items, BATCH):
        yield range(start, min(items, start + BATCH))


def _resp(*parts: bytes | str) -> bytes:
    """One command in the Redis protocol (RESP), as ``redis-cli --pipe`` reads it."""
    encoded = [p if isinstance(p, bytes) else str(p).encode() for p in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded)


def load_commands(layout: Layout, keys: range, ttl_s: int) -> bytes:
    """The commands that store ``layout`` under the keys numbered ``keys``, each with its TTL. Only the key
    varies, so the rest of each command is encoded once."""
    value, fields = layout.json_bytes(), layout.fields()
    if layout.kind == "string":
        verb, args = "SET", [value, "EX", ttl_s]
    else:
        verb = "HSET" if layout.kind == "hash" else "ZADD"
        args = [str(x) for pair in fields.items() for x in (pair[::-1] if layout.kind == "zset" else pair)]
    head = b"*%d\r\n$%d\r\n%s\r\n" % (2 + len(args), len(verb), verb.encode())
    tail = _resp(*args)[len(b"*%d\r\n" % len(args)):]
    out = []
    for i in keys:
        key = layout.key(i).encode()
        encoded_key = b"$%d\r\n%s\r\n" % (len(key), key)
        out.append(head + encoded_key + tail)
        if layout.kind != "string":
            out.append(b"*3\r\n$6\r\nEXPIRE\r\n" + encoded_key + _resp(ttl_s)[len(b"*1\r\n"):])
    return b"".join(out)


def _load_redis(server: RedisServer, layout: Layout, items: int, ttl_s: int) -> None:
    """Mass insertion the way redis.io documents it: the commands piped into ``redis-cli --pipe``
    (written in batches while the server takes them in)."""
    argv = [require_binary(server.engine.cli), "-p", str(server.port), "-a", server.password, "--no-auth-warning", "--pipe"]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as pipe:
        try:
            for batch in _batches(items):
                pipe.stdin.write(load_commands(layout, batch, ttl_s))
            pipe.stdin.close()
            report = pipe.stdout.read().decode(errors="replace")
            pipe.wait(timeout=300)
        except BaseException:
            pipe.kill()
            raise
    if pipe.returncode != 0 or "errors: 0," not in report:
        raise RuntimeError(f"{server.engine.cli} --pipe failed: {report.strip()[-300:]}")


def redis_bytes_per_item(engine: str, layout: Layout, items: int) -> dict:
    """Load ``items`` of ``layout`` into a fresh ``engine`` server; memory per item and encoding."""
    ttl_s = load_key_design()[layout.family].ttl_s
    with RedisServer(name=f"{engine}-bytes", engine=engine) as server, server.client() as client:
        before = int(client.info("memory")["used_memory"])
        _load_redis(server, layout, items, ttl_s)
        after = int(client.info("memory")["used_memory"])
        assert client.dbsize() == items, f"{engine} holds {client.dbsize()} of {items} items"
        encoding = client.object("encoding", layout.key(0)).decode()
        version = server_identity(client)["version"]
    return {"engine": engine, "version": version, "layout": layout.name, "items": items,
            "encoding": encoding, "own_bytes": layout.own_bytes(engine), "bytes_per_item": (after - before) / items}


def _memory_mb(layout: Layout, items: int) -> int:
    return max(64, int(items * (len(layout.json_bytes()) + 200) * 1.5 / 2**20) + 64)


def memcached_bytes_per_item(layout: Layout, items: int) -> dict:
    """Load ``items`` of ``layout`` (as JSON) into a fresh memcached; slab memory per item."""
    ttl_s = load_key_design()[layout.family].ttl_s
    value = layout.json_bytes()
    with MemcachedServer(name="memcached-bytes", memory_mb=_memory_mb(layout, items)) as server:
        client = server.client()
        try:
            for batch in _batches(items):
                client.set_many({layout.key(i): value for i in batch}, expire=ttl_s, noreply=True)
            stats = {k.decode(): v for k, v in client.stats().items()}
            slabs = {k.decode(): v for k, v in client.stats("slabs").items()}
        finally:
            client.close()
    assert stats["curr_items"] == items, f"memcached holds {stats['curr_items']} of {items} items"
    classes = {name.split(":")[0] for name in slabs if ":" in name}
    chunk_bytes = sum(int(slabs[f"{c}:chunk_size"]) * int(slabs[f"{c}:used_chunks"]) for c in classes)
    sizes = sorted(int(slabs[f"{c}:chunk_size"]) for c in classes if int(slabs[f"{c}:used_chunks"]) > 0)
    return {"engine": "memcached", "version": stats["version"].decode(), "layout": layout.name, "items": items,
            "encoding": f"slab chunk {'+'.join(str(s) for s in sizes)} B", "own_bytes": layout.own_bytes("memcached"),
            "item_bytes": int(stats["bytes"]) / items, "bytes_per_item": chunk_bytes / items}


MEASURE = Table("itembytes.MEASURE", ("engine", "version", "layout", "items", "encoding", "own_bytes", "bytes_per_item",
                                      "item_bytes", "overhead_bytes", "overhead_pct"))
"""`measure`: one row per engine and layout (``item_bytes``: memcached's own count of the item, NaN elsewhere)."""


def measure(items: int, *, large_items: int, progress: bool = True) -> pd.DataFrame:
    """Every layout on Redis, Valkey and memcached: ``items`` each, ``large_items`` for the 100 KB one."""
    jobs = [(engine, layout) for layout in LAYOUTS for engine in ("redis", "valkey", "memcached")
            if not (engine == "memcached" and layout.kind == "hash")]  # there: the 2 KB JSON string again
    rows = []
    for engine, layout in tqdm(jobs, desc="bytes per item", disable=not progress):
        n = large_items if layout.size_bytes > 65536 else items
        rows.append(memcached_bytes_per_item(layout, n) if engine == "memcached"
                    else redis_bytes_per_item(engine, layout, n))
    frame = pd.DataFrame(rows)
    frame["overhead_bytes"] = frame.bytes_per_item - frame.own_bytes
    frame["overhead_pct"] = 100 * frame.overhead_bytes / frame.own_bytes
    MEASURE.check(frame)
    return frame


def bytes_per_item(frame: pd.DataFrame, engine: str, layout: str) -> float:
    """Bytes one item of ``layout`` takes on ``engine``, from `measure`'s table."""
    rows = frame[(frame.engine == engine) & (frame.layout == layout)]
    if rows.empty:
        raise KeyError(f"no measurement of {layout!r} on {engine}")
    return float(rows.bytes_per_item.iloc[0])


def catalog_gb(frame: pd.DataFrame, engine: str, layout: str) -> float:
    """Memory, in GB (10⁹ bytes), that the note's whole catalog (``dax_catalog`` items) of ``layout`` takes on
    ``engine``, from `measure`'s table."""
    return figure("dax_catalog") * bytes_per_item(frame, engine, layout) / 1e9
