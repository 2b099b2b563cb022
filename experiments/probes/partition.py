"""Cache clients and nodes on a real network that fails: silent partitions, a flapping node, a capped link.

Issue 16's probes, on `experiments.lab.netlab`: `client_timeouts` (what redis-py and pymemcache do across a
silent partition), `memcached_flap` (a node ejected and taken back by pymemcache's ``HashClient``),
`saturated_link` (a hot product behind a capped link — as JSON, compressed, or as its 2 KB item:
`hot_product_values`).

For `client_timeouts`, a cache server runs in one lab host and the client in another. The client connects,
then the two hosts are partitioned — packets dropped both ways, no reset — and the client issues one GET,
with the library's defaults (``timeout_s=None``: nothing passed) and with the timeouts a turn budget needs —
which for redis-py 8 includes its retries: by default it waits 5 s for a reply and retries a timed-out call
10 times with jittered exponential backoff (`redis_py_retry_bound_s`); pymemcache's default timeout is
none at all. A call is watched for at most ``cap_s``: one still blocked then is reported as blocked for at
least that long. The partition is healed before the call is waited for
again — up to twice ``cap_s`` more (at least 30 s, at most 130 s: TCP's next retransmission can be that far
away) —, so the retransmission completes or fails it.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from experiments.caches import keydesign
from experiments.caches.origin import document
from experiments.errors import ParameterError
from experiments.lab.netlab import NetLab
from experiments.lab.quiet import busy, quiet
from experiments.lab.servers import MemcachedServer, RedisServer
from experiments.measure import spread_between_rounds
from experiments.results import Table
from experiments.seed import value_sizes

CLIENTS = ("redis-py", "pymemcache")


def redis_py_retry_bound_s(timeout_s: float | None = None) -> float:
    """The longest a redis-py command can block across a silent partition with its default retries, from the
    library's own constants: every attempt (the first and each retry) waits the socket timeout
    (``timeout_s``, or the library's default), and each retry first sleeps at most the backoff's cap."""
    from redis import _defaults

    timeout = _defaults.DEFAULT_SOCKET_TIMEOUT if timeout_s is None else timeout_s
    return (_defaults.DEFAULT_RETRY_COUNT + 1) * timeout + _defaults.DEFAULT_RETRY_COUNT * _defaults.DEFAULT_RETRY_CAP


def _client(kind: str, server, timeout_s: float | None, retries: int | None):
    """A client with the library's defaults where ``timeout_s``/``retries`` are None (nothing is passed)."""
    if kind == "redis-py":
        options = {} if timeout_s is None else {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        if retries is not None:
            options["retry"] = Retry(NoBackoff(), retries)
        return redis.Redis(host=server.host, port=server.port, password=server.password, **options)
    from pymemcache.client.base import Client
    options = {} if timeout_s is None else {"timeout": timeout_s, "connect_timeout": timeout_s}
    return Client((server.host, server.port), **options)


def blocked_call(lab: NetLab, server, kind: str, *, timeout_s: float | None, cap_s: float,
                 retries: int | None = None) -> dict:
    """One GET across a silent partition: how long it blocked (at most ``cap_s`` watched) and how it ended.
    ``retries``: redis-py's retry count (None: its default, which redis-py 8 sets to 10 with backoff)."""
    if kind not in CLIENTS:
        raise ParameterError(f"client {kind!r} is not one of {CLIENTS}")
    outcome: dict = {}
    with lab.inside("app"):
        client = _client(kind, server, timeout_s, retries)
        client.set("probe", b"x")  # the connection exists before the network goes silent

    def call() -> None:
        with lab.inside("app"):
            start = time.monotonic()
            try:
                client.get("probe")
                outcome["ended"] = "answered"
            except Exception as exc:
                outcome["ended"] = type(exc).__name__
            outcome["took_s"] = time.monotonic() - start

    lab.partition("app", "cache")
    worker = threading.Thread(target=call, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(cap_s)
    still_blocked = worker.is_alive()
    watched = time.monotonic() - started
    lab.heal()
    worker.join(min(max(30.0, 2 * cap_s), 130.0))
    client.close()
    return {"client": kind, "timeout_s": timeout_s, "retries": "default" if retries is None else retries,
            "blocked_s": watched if still_blocked else outcome.get("took_s", watched),
            "still_blocked_at_cap": still_blocked, "ended": outcome.get("ended", "blocked") if not still_blocked
            else f"blocked past {cap_s:g} s", "after_heal": outcome.get("ended")}


TIMEOUTS = Table("partition.TIMEOUTS", (
    "client", "timeout_s", "retries", "blocked_s", "still_blocked_at_cap", "ended", "after_heal", "blocked_spread_s",
    "rounds"))
"""`client_timeouts`: one row per client and setting (``timeout_s`` NaN: the library's default; ``retries``
``"default"`` or a count)."""


def client_timeouts(*, budget_timeout_s: float, cap_s: float, rounds: int = 3) -> pd.DataFrame:
    """redis-py and pymemcache, each with its default timeouts and with ``budget_timeout_s`` (redis-py also
    with its retries turned off), across a silent partition between an ``app`` host and a ``cache`` host, in a
    quiet section. A read that gave up before the cap is repeated ``rounds`` times: ``blocked_s`` is the median
    and ``blocked_spread_s`` the spread between rounds (0 for a read still blocked at the cap, which is timed by
    the cap, not by the client)."""
    rows = []
    with quiet("reads across a silent partition"), NetLab(["cache", "app"]) as lab:
        servers = {"redis-py": lab.place("cache", RedisServer), "pymemcache": lab.place("cache", MemcachedServer)}
        try:
            for server in servers.values():
                server.start()
            for kind, server in servers.items():
                configs = [(None, None), (budget_timeout_s, None)] + ([(budget_timeout_s, 0)] if kind == "redis-py" else [])
                for timeout_s, retries in configs:
                    row = blocked_call(lab, server, kind, timeout_s=timeout_s, cap_s=cap_s, retries=retries)
                    times = [row["blocked_s"]]
                    while not row["still_blocked_at_cap"] and len(times) < rounds:
                        times.append(blocked_call(lab, server, kind, timeout_s=timeout_s, cap_s=cap_s,
                                                  retries=retries)["blocked_s"])
                    rows.append({**row, "blocked_s": float(np.median(times)),
                                 "blocked_spread_s": spread_between_rounds(times), "rounds": len(times)})
        finally:
            for server in servers.values():
                server.stop()
    return TIMEOUTS.frame(rows)


def memcached_flap(*, keys: int, dead_timeout_s: float, replace: bool = False, timeout_s: float = 0.25,
                   eject_within_s: float = 10.0) -> dict:
    """The note's Memcached failure on a real network: pymemcache's ``HashClient`` over two nodes ejects a node
    it cannot reach — with its default retries (2 attempts, 1 s apart) — and takes it back ``dead_timeout_s``
    later (its default is 60 s). While the node is out its keys hash to the other node: each read there
    misses and is refilled, and every invalidation (a DEL) lands there too. Then either the node comes back
    as it was (a flap: it still holds the old copies) or, with ``replace``, a new empty memcached takes its
    place at the same address (ElastiCache keeps a replaced node's DNS name). Entries carry the product TTL
    (5 minutes), which is how long a stale one can stay. Counts the misses while it is out, and the misses and
    stale reads after it is back."""
    from pymemcache.client.hash import HashClient

    if keys < 1 or not dead_timeout_s > 0:
        raise ParameterError(f"keys={keys} and dead_timeout_s={dead_timeout_s} must be positive")
    ttl_s = keydesign.load()["product"].ttl_s  # the note's key design: product:{asin}, 5 minutes
    with NetLab(["mc1", "mc2", "app"], tag="replaced" if replace else "flap") as lab:
        nodes = {h: lab.place(h, MemcachedServer) for h in ("mc1", "mc2")}
        try:
            for node in nodes.values():
                node.start()
            names = [f"product:B{i:09d}" for i in range(keys)]
            first = (nodes["mc1"].host, nodes["mc1"].port)
            with lab.inside("app"):
                client = HashClient([(n.host, n.port) for n in nodes.values()], timeout=timeout_s,
                                    connect_timeout=timeout_s, dead_timeout=dead_timeout_s, ignore_exc=True,
                                    default_noreply=False)
                for name in names:
                    client.set(name, b"v1", expire=ttl_s)
                on_first = sum(client._get_client(n).server == first for n in names)
                lab.isolate("mc1")
                isolated = time.monotonic()
                while first not in client._dead_clients and time.monotonic() - isolated < eject_within_s:
                    for name in names[:50]:  # the orchestrator's reads fail, are retried, then the node is ejected
                        client.get(name)
                    time.sleep(0.05)
                ejected_after = time.monotonic() - isolated
                ejected = first in client._dead_clients
                missed_out = 0
                for name in names:  # a read, a refill, then the product changes: invalidate and refill again
                    if client.get(name) is None:
                        missed_out += 1
                        client.set(name, b"v1", expire=ttl_s)
                    client.delete(name)
                    client.set(name, b"v2", expire=ttl_s)
                if replace:
                    old = nodes["mc1"]
                    old.stop()
                    nodes["mc1"] = lab.place("mc1", MemcachedServer, port=old.port).start()
                lab.heal()
                deadline = time.monotonic() + dead_timeout_s + 5
                while first in client._dead_clients and time.monotonic() < deadline:
                    client.get(names[0])  # each read checks whether the dead node's time is up
                    time.sleep(0.05)
                back = [client.get(name) for name in names]
                client.close()
        finally:
            for node in nodes.values():
                node.stop()
    return {"keys": keys, "ttl_s": ttl_s, "timeout_s": timeout_s, "replaced": replace, "keys_on_node": on_first,
            "ejected": ejected, "ejected_after_s": ejected_after, "dead_timeout_s": dead_timeout_s,
            "misses_while_out": missed_out,
            "misses_after_return": sum(v is None for v in back), "stale_reads_after_return": sum(v == b"v1" for v in back)}


FLAPS = Table("partition.FLAPS", (
    "keys", "ttl_s", "timeout_s", "replaced", "keys_on_node", "ejected", "ejected_after_s", "dead_timeout_s",
    "misses_while_out", "misses_after_return", "stale_reads_after_return"))
"""`memcached_flaps`: one row for the node replaced, one for the node back as it was."""


def memcached_flaps(*, keys: int, dead_timeout_s: float) -> pd.DataFrame:
    """`memcached_flap` twice at once, each in a lab of its own: the node replaced, and the node back as it was
    (both mostly wait: for the ejection, then for ``dead_timeout_s``). The chapter runs them in the background,
    so they hold a busy section (`experiments.lab.quiet`) of their own while they run."""
    with busy(), ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(memcached_flap, keys=keys, dead_timeout_s=dead_timeout_s, replace=replace)
                for replace in (True, False)]
    return FLAPS.frame(run.result() for run in runs)


def hot_product_values(asin: str = "B000000001", level: int = 3) -> dict[str, bytes]:
    """The hot product three ways: the note's ~100 KB page as JSON (`experiments.caches.origin.document`), the
    same compressed with zstd at ``level``, and the 2 KB item the DAX section sizes the catalog with. The
    document's filler is random letters — about 4.75 bits of information per byte — so its compression ratio
    is a floor for a real description's."""
    import zstandard

    sizes = value_sizes().set_index("variant").size_bytes
    page = json.dumps(document("product", asin, int(sizes["page"]))).encode()
    return {"100 KB JSON": page, "100 KB JSON, zstd": zstandard.ZstdCompressor(level=level).compress(page),
            "2 KB item": json.dumps(document("product", asin, int(sizes["item"]))).encode()}


LINK = Table("partition.LINK", (
    "value", "value_bytes", "gets_per_s", "gets_spread_per_s", "link_limit_gets_per_s", "link_share",
    "link_share_spread"))
"""`saturated_link`: one row per value (`hot_product_values`' labels)."""


def saturated_link(*, mbit: float, values: dict[str, bytes], seconds: float = 1.0, depth: int = 16,
                   rounds: int = 5) -> pd.DataFrame:
    """A hot product behind a capped link: a Redis server in a ``cache`` host whose link is capped at ``mbit``
    Mbit/s (``tbf``), read from an ``app`` host as fast as one client with ``depth`` pipelined GETs can, for
    ``seconds`` per value split into ``rounds`` rounds, in a quiet section. The GETs per second the link lets
    through (the median of the rounds, with their spread), against the cap divided by the bytes a reply
    carries (the value plus the protocol's framing)."""
    if not mbit > 0 or not values or min(map(len, values.values())) < 1 or not 0 < seconds <= 10 or depth < 1:
        raise ParameterError("mbit, every value's size and depth must be positive, seconds in (0, 10]")
    rates: dict[str, list[float]] = {label: [] for label in values}
    with quiet("GETs through a capped link"), NetLab(["cache", "app"], tag="link") as lab:
        server = lab.place("cache", RedisServer)
        clients = {}
        try:
            server.start()
            lab.limit("cache", mbit=mbit)
            with lab.inside("app"):  # one connection per value, made and filled before any round is timed
                for label, value in values.items():
                    clients[label] = server.client(socket_timeout=5)
                    clients[label].set(f"hot:{label}", value)
            for _ in range(rounds):  # the values take turns, so drift falls on all of them alike
                for label, client in clients.items():
                    with lab.inside("app"):
                        gets, start = 0, time.monotonic()
                        while time.monotonic() - start < seconds / rounds:
                            pipe = client.pipeline(transaction=False)
                            for _ in range(depth):
                                pipe.get(f"hot:{label}")
                            pipe.execute()
                            gets += depth
                        rates[label].append(gets / (time.monotonic() - start))
        finally:
            for client in clients.values():
                client.close()
            server.stop()
    rows = []
    for label, value in values.items():
        reply = len(value) + len(f"${len(value)}\r\n\r\n")
        per_s = float(np.median(rates[label]))
        rows.append({"value": label, "value_bytes": len(value), "gets_per_s": per_s,
                     "gets_spread_per_s": spread_between_rounds(rates[label]),
                     "link_limit_gets_per_s": mbit * 1e6 / 8 / reply, "link_share": per_s * reply * 8 / (mbit * 1e6),
                     "link_share_spread": spread_between_rounds(rates[label]) * reply * 8 / (mbit * 1e6)})
    return LINK.frame(rows)
