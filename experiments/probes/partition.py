"""Cache clients and nodes on a real network that fails: silent partitions, a flapping node, a capped link.

Issue 16's probes, on `experiments.lab.netlab`: `client_timeouts` (what redis-py and pymemcache do across a
silent partition), `memcached_flap` (a node ejected and taken back by pymemcache's ``HashClient``),
`saturated_link` (a hot product behind a capped link).

For `client_timeouts`, a cache server runs in one lab host and the client in another. The client connects,
then the two hosts are partitioned — packets dropped both ways, no reset — and the client issues one GET,
with the library's default timeouts and with the timeouts a turn budget needs — which for redis-py 8
includes its retries: by default it retries a timed-out call 10 times with backoff. A call is watched for
at most ``cap_s``: one still blocked then is reported as blocked for at least that long (redis-py's and
pymemcache's default socket timeout is none at all). The partition is healed before the call is waited for
again — up to twice ``cap_s`` more (at least 30 s, at most 130 s: TCP's next retransmission can be that far
away) —, so the retransmission completes or fails it.
"""

from __future__ import annotations

import threading
import time

import pandas as pd
from redis.backoff import NoBackoff
from redis.retry import Retry

from experiments.errors import ParameterError
from experiments.lab.netlab import NetLab
from experiments.lab.servers import MemcachedServer, RedisServer

CLIENTS = ("redis-py", "pymemcache")


def _client(kind: str, server, timeout_s: float | None, retries: int | None):
    if kind == "redis-py":
        options = {} if retries is None else {"retry": Retry(NoBackoff(), retries)}
        return server.client(socket_timeout=timeout_s, socket_connect_timeout=timeout_s, **options)
    from pymemcache.client.base import Client
    return Client((server.host, server.port), timeout=timeout_s, connect_timeout=timeout_s)


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
            except Exception as exc:  # noqa: BLE001 - the library's own error is the finding
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


def client_timeouts(*, budget_timeout_s: float, cap_s: float) -> pd.DataFrame:
    """redis-py and pymemcache, each with its default timeouts and with ``budget_timeout_s`` (redis-py also
    with its retries turned off), across a silent partition between an ``app`` host and a ``cache`` host."""
    rows = []
    with NetLab(["cache", "app"]) as lab:
        servers = {"redis-py": lab.place("cache", RedisServer), "pymemcache": lab.place("cache", MemcachedServer)}
        try:
            for server in servers.values():
                server.start()
            for kind, server in servers.items():
                configs = [(None, None), (budget_timeout_s, None)] + ([(budget_timeout_s, 0)] if kind == "redis-py" else [])
                for timeout_s, retries in configs:
                    rows.append(blocked_call(lab, server, kind, timeout_s=timeout_s, cap_s=cap_s, retries=retries))
        finally:
            for server in servers.values():
                server.stop()
    return pd.DataFrame(rows)


def memcached_flap(*, keys: int, dead_timeout_s: float, timeout_s: float = 0.25, eject_within_s: float = 10.0) -> dict:
    """The note's Memcached failure on a real network: pymemcache's ``HashClient`` over two nodes ejects a node
    it cannot reach — with its default retries (2 attempts, 1 s apart) — and takes it back ``dead_timeout_s``
    later (its default is 60 s). While the node is out its keys hash to the other node, so every invalidation
    (a DEL) and every refill of those keys lands there; when the node returns, its keys hash to it again and
    it still holds the old copies. Counts the stale reads after the return."""
    from pymemcache.client.hash import HashClient

    if keys < 1 or not dead_timeout_s > 0:
        raise ParameterError(f"keys={keys} and dead_timeout_s={dead_timeout_s} must be positive")
    with NetLab(["mc1", "mc2", "app"]) as lab:
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
                    client.set(name, b"v1")
                on_first = sum(client._get_client(n).server == first for n in names)
                lab.isolate("mc1")
                isolated = time.monotonic()
                while first not in client._dead_clients and time.monotonic() - isolated < eject_within_s:
                    for name in names[:50]:  # the orchestrator's reads fail, are retried, then the node is ejected
                        client.get(name)
                    time.sleep(0.05)
                ejected_after = time.monotonic() - isolated
                ejected = first in client._dead_clients
                for name in names:  # the product changed: invalidate, and the next read refills from the origin
                    client.delete(name)
                    client.set(name, b"v2")
                lab.heal()
                deadline = time.monotonic() + dead_timeout_s + 5
                while first in client._dead_clients and time.monotonic() < deadline:
                    client.get(names[0])  # each read checks whether the dead node's time is up
                    time.sleep(0.05)
                stale = sum(client.get(name) == b"v1" for name in names)
                client.close()
        finally:
            for node in nodes.values():
                node.stop()
    return {"keys": keys, "keys_on_flapping_node": on_first, "ejected": ejected, "ejected_after_s": ejected_after,
            "dead_timeout_s": dead_timeout_s, "stale_reads_after_return": stale}


def saturated_link(*, mbit: float, value_bytes: list[int], seconds: float = 1.0, depth: int = 16) -> pd.DataFrame:
    """A hot product behind a capped link: a Redis server in a ``cache`` host whose link is capped at ``mbit``
    Mbit/s (``tbf``), read from an ``app`` host as fast as one client with ``depth`` pipelined GETs can, for
    ``seconds`` per value size. The GETs per second the link lets through, against the cap divided by the
    bytes a reply carries (the value plus the protocol's framing)."""
    if not mbit > 0 or not value_bytes or min(value_bytes) < 1 or not 0 < seconds <= 10 or depth < 1:
        raise ParameterError("mbit, every value size and depth must be positive, seconds in (0, 10]")
    rows = []
    with NetLab(["cache", "app"]) as lab:
        server = lab.place("cache", RedisServer)
        try:
            server.start()
            lab.limit("cache", mbit=mbit)
            for size in value_bytes:
                with lab.inside("app"):
                    client = server.client(socket_timeout=5)
                    client.set("hot", b"x" * size)
                    gets, start = 0, time.monotonic()
                    while time.monotonic() - start < seconds:
                        pipe = client.pipeline(transaction=False)
                        for _ in range(depth):
                            pipe.get("hot")
                        pipe.execute()
                        gets += depth
                    elapsed = time.monotonic() - start
                    client.close()
                reply = size + len(f"${size}\r\n\r\n")
                rows.append({"value_bytes": size, "gets_per_s": gets / elapsed,
                             "link_limit_gets_per_s": mbit * 1e6 / 8 / reply,
                             "link_share": gets / elapsed * reply * 8 / (mbit * 1e6)})
        finally:
            server.stop()
    return pd.DataFrame(rows)
