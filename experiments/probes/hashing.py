"""How client-side hashing spreads keys over cache nodes, and how many keys move when nodes change.

Memcached nodes do not know about each other; the client picks the node for each key. Four
schemes, each usable as a pymemcache ``HashClient(hasher=...)`` so it can be measured on real nodes:

* `ModuloHash` — ``hash(key) mod N``: adding a node to ``N`` moves ``N/(N+1)`` of the keys;
* `KetamaRing` — a ring of ``vnodes`` points per node (MD5, as in libketama): adding a node moves
  about ``1/(N+1)``, with a spread that narrows as ``vnodes`` grows;
* `JumpHash` — Lamping and Veach's jump consistent hash: exactly even, ``1/(N+1)`` moves, but nodes
  can only be added or removed at the end of the list;
* pymemcache's default, ``RendezvousHash`` (highest random weight, MurmurHash3 of ``"host:port-key"``):
  ``1/(N+1)`` moves on adding a node — but replacing a node by one with a new address changes the
  winner for keys on the *other* nodes too.
"""

from __future__ import annotations

import bisect
import hashlib
from functools import partial

import numpy as np
import pandas as pd
from pymemcache.client.rendezvous import RendezvousHash

from experiments.results import Table


def _h64(text: str) -> int:
    return int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "little")


class _NodeList:
    """Shared add/remove of the pymemcache hasher interface."""

    def __init__(self) -> None:
        self.nodes: list[str] = []

    def add_node(self, node: str) -> None:
        if node not in self.nodes:
            self.nodes.append(node)
            self._changed()

    def remove_node(self, node: str) -> None:
        self.nodes.remove(node)
        self._changed()

    def _changed(self) -> None:
        pass


class ModuloHash(_NodeList):
    """``node = nodes[hash(key) mod N]``."""

    def get_node(self, key: str) -> str | None:
        """The node at the key's MD5 hash modulo the node count, or None with no nodes."""
        return self.nodes[_h64(key) % len(self.nodes)] if self.nodes else None


class KetamaRing(_NodeList):
    """A consistent-hash ring with ``vnodes`` points per node (32-bit MD5 points, binary search)."""

    def __init__(self, vnodes: int = 160) -> None:
        super().__init__()
        self.vnodes = vnodes
        self._points: list[int] = []
        self._owners: list[str] = []

    def _changed(self) -> None:
        ring = sorted((_h64(f"{node}#{i}") >> 32, node) for node in self.nodes for i in range(self.vnodes))
        self._points = [p for p, _ in ring]
        self._owners = [n for _, n in ring]

    def get_node(self, key: str) -> str | None:
        """The owner of the first ring point after the key's hash (wrapping round), or None with no nodes."""
        if not self._points:
            return None
        index = bisect.bisect(self._points, _h64(key) >> 32) % len(self._points)
        return self._owners[index]


class JumpHash(_NodeList):
    """Jump consistent hash (Lamping & Veach, 2014) over the node list, in the order nodes were added."""

    def get_node(self, key: str) -> str | None:
        """The node at the index jump hash picks for the key among ``len(nodes)`` buckets, or None with no nodes."""
        if not self.nodes:
            return None
        k, b, j = _h64(key), -1, 0
        while j < len(self.nodes):
            b = j
            k = (k * 2862933555777941757 + 1) % 2**64
            j = int((b + 1) * (2**31 / ((k >> 33) + 1)))
        return self.nodes[b]


SCHEMES = {
    "modulo": ModuloHash,
    "ketama ring (160 vnodes)": partial(KetamaRing, 160),
    "jump hash": JumpHash,
    "rendezvous (pymemcache default)": RendezvousHash,
}


def analytic_remap(scheme: str, n: int) -> float:
    """Expected fraction of keys that move when a node is added to ``n`` nodes."""
    return n / (n + 1) if scheme == "modulo" else 1 / (n + 1)


def _placement(hasher_factory, nodes: list[str], keys: list[str]) -> list[str]:
    hasher = hasher_factory()
    for node in nodes:
        hasher.add_node(node)
    return [hasher.get_node(k) for k in keys]


def node_names(n: int) -> list[str]:
    """Stable node names for the in-silico experiments (addresses as HashClient would name them)."""
    return [f"10.0.0.{i + 1}:11211" for i in range(n)]


def remap_fraction(hasher_factory, n: int, keys: list[str]) -> float:
    """Fraction of ``keys`` whose node changes when node ``n+1`` joins ``n`` nodes."""
    before = _placement(hasher_factory, node_names(n), keys)
    after = _placement(hasher_factory, node_names(n + 1), keys)
    return sum(a != b for a, b in zip(before, after)) / len(keys)


REMAP = Table("hashing.REMAP", ("scheme", "nodes_before", "analytic_pct", "computed_pct"))
"""`remap_table`: one row per scheme and node count."""

VNODES = Table("hashing.VNODES", ("vnodes", "remap_pct", "analytic_pct", "max_over_mean_load"))
"""`vnode_table`: one row per count of virtual nodes."""

REMAP_ON_NODES = Table("hashing.REMAP_ON_NODES", ("scheme", "moved_fraction", "analytic_fraction", "keys_used"))
"""`remap_on_nodes_table`: one row per scheme, then the two replacements."""


def remap_table(node_counts: list[int], keys: list[str]) -> pd.DataFrame:
    """Analytic and computed remap fraction per scheme and node count."""
    rows = []
    for scheme, factory in SCHEMES.items():
        for n in node_counts:
            rows.append({"scheme": scheme, "nodes_before": n, "analytic_pct": 100 * analytic_remap(scheme, n),
                         "computed_pct": 100 * remap_fraction(factory, n, keys)})
    return REMAP.frame(rows)


def vnode_table(vnode_counts: list[int], keys: list[str], n: int = 3) -> pd.DataFrame:
    """Ketama ring: remap fraction and load spread (busiest node / mean) against virtual nodes."""
    rows = []
    for v in vnode_counts:
        factory = partial(KetamaRing, v)
        counts = pd.Series(_placement(factory, node_names(n), keys)).value_counts()
        rows.append({"vnodes": v, "remap_pct": 100 * remap_fraction(factory, n, keys),
                     "analytic_pct": 100 / (n + 1), "max_over_mean_load": float(counts.max() / counts.mean())})
    return VNODES.frame(rows)


def sample_keys(count: int, seed: int) -> list[str]:
    """Product keys with random ASINs (seeded)."""
    rng = np.random.default_rng(seed)
    return [f"product:B{n:09d}" for n in rng.choice(10**9, size=count, replace=False)]


class EndpointNameHash:
    """Rendezvous hashing on node *names* instead of addresses: ElastiCache keeps a node's DNS endpoint when
    it replaces the node, so a client that hashes on the endpoint sends the replacement the same keys.
    ``names`` maps each node's ``host:port`` (pymemcache's node key) to its name."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names, self.by_name, self.inner = names, {}, RendezvousHash()

    def add_node(self, node: str) -> None:
        """Hash ``node`` under its name; a replacement given the replaced node's name inherits its keys."""
        self.by_name[self.names[node]] = node
        self.inner.add_node(self.names[node])

    def remove_node(self, node: str) -> None:
        """Stop hashing to ``node``'s name."""
        self.by_name.pop(self.names[node], None)
        self.inner.remove_node(self.names[node])

    def get_node(self, key: str) -> str | None:
        """The address of the node whose name wins ``key``, or None with no nodes."""
        name = self.inner.get_node(key)
        return None if name is None else self.by_name[name]


def measure_remap_on_nodes(servers: list, hasher_factory, keys: list[str], *, replace: bool = False) -> float:
    """On real memcached nodes: write ``keys`` through a HashClient over all but the last server, then
    read them through one that adds the last server (or, with ``replace``, swaps it for the third):
    the fraction of keys no longer found is the fraction that moved."""
    from pymemcache.client.hash import HashClient

    def client(nodes):
        return HashClient([(s.host, s.port) for s in nodes], hasher=hasher_factory, default_noreply=False,
                          connect_timeout=2, timeout=5)

    before_nodes = servers[:-1]
    after_nodes = servers[:-2] + servers[-1:] if replace else servers
    for server in servers:
        server.client().flush_all()
    writer = client(before_nodes)
    for start in range(0, len(keys), 5000):
        failed = writer.set_many({k: b"1" for k in keys[start:start + 5000]}, expire=0)
        assert not failed, f"{len(failed)} writes failed"
    reader = client(after_nodes)
    found = 0
    for start in range(0, len(keys), 5000):
        found += len(reader.get_many(keys[start:start + 5000]))
    writer.close()
    reader.close()
    return 1 - found / len(keys)


def remap_on_nodes_table(servers: list, keys: list[str]) -> pd.DataFrame:
    """`measure_remap_on_nodes` for every scheme (3 → 4 nodes), and for replacing a node (rendezvous)."""
    rows = [{"scheme": name, "moved_fraction": measure_remap_on_nodes(servers, factory, keys),
             "analytic_fraction": analytic_remap(name, len(servers) - 1), "keys_used": len(keys)}
            for name, factory in SCHEMES.items()]
    rows.append({"scheme": "rendezvous, node replaced",
                 "moved_fraction": measure_remap_on_nodes(servers, RendezvousHash, keys, replace=True),
                 "analytic_fraction": 1 / 2, "keys_used": len(keys)})
    # the replacement answers to the replaced node's endpoint name: only that node's own share is lost
    names = {f"{s.host}:{s.port}": f"node{i}" for i, s in enumerate(servers)}
    names[f"{servers[-1].host}:{servers[-1].port}"] = names[f"{servers[-2].host}:{servers[-2].port}"]
    rows.append({"scheme": "rendezvous on endpoint names, node replaced",
                 "moved_fraction": measure_remap_on_nodes(servers, partial(EndpointNameHash, names), keys, replace=True),
                 "analytic_fraction": 1 / (len(servers) - 1), "keys_used": len(keys)})
    return REMAP_ON_NODES.frame(rows)


def remap_chart_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Long table for the remap chart: the share each scheme moved, plus the two analytic curves."""
    computed = table.assign(series=table.scheme + " (computed)", moved_pct=table.computed_pct)
    analytic = table[table.scheme.isin(["modulo", "jump hash"])].assign(
        series=lambda d: d.scheme.map({"modulo": "N/(N+1), modulo", "jump hash": "1/(N+1), consistent"}),
        moved_pct=lambda d: d.analytic_pct)
    return pd.concat([computed, analytic])[["series", "nodes_before", "moved_pct"]]
