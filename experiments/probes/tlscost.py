"""What encryption in transit costs a cache client on this machine: real Redis, with and without TLS.

DAX cannot be measured here, but the question behind the seed's Q2 — is turning TLS on a latency
problem? — can be, on the same kind of path: a client and an in-memory server on loopback. Both
servers are real ``redis-server`` processes (Debian's build has TLS); the TLS one only accepts TLS.
Two costs are measured: a GET of a product-sized value on an open connection, and opening a new
connection (TCP, TLS handshake, AUTH, PING), which is what a client pays after every reconnect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.lab.quiet import calm_round, quiet
from experiments.lab.servers import RedisServer
from experiments.measure import spread_between_rounds, time_calls_ms
from experiments.results import Table

KEY = "cachebook:tls:product"


def _connect_once(server: RedisServer) -> None:
    client = server.client()
    try:
        client.ping()
    finally:
        client.close()


COMPARE = Table("tlscost.COMPARE", ("transport", "get_p50_us", "get_p99_us", "get_p50_spread_us", "connect_p50_ms",
                                     "connect_p99_ms", "gets", "connections"))
"""`compare`: plain TCP and TLS."""

OVERHEAD = Table("tlscost.OVERHEAD", ("get_p50_ratio", "get_p50_extra_us", "get_p50_extra_spread_us", "connect_extra_ms"))
"""`overhead`'s record."""


def compare(plain: RedisServer, tls: RedisServer, *, repetitions: int, connections: int,
            value_bytes: int = 2048, rounds: int = 10) -> pd.DataFrame:
    """GET latency (µs) and connection set-up time (ms), p50 and p99, for each server.

    The two servers are timed in alternating rounds, in a quiet section, so that drift of this noisy machine
    (CPU frequency, stalls) falls on both alike rather than on whichever ran second; ``get_p50_spread_us`` is the
    spread of the rounds' GET p50s (`spread_between_rounds`).
    """
    servers = {"plain TCP": plain, "TLS": tls}
    clients = {label: server.client() for label, server in servers.items()}
    gets: dict[str, list[np.ndarray]] = {label: [] for label in servers}
    setups: dict[str, list[np.ndarray]] = {label: [] for label in servers}
    try:
        for client in clients.values():
            client.set(KEY, b"x" * value_bytes)
        with quiet("GET and connection set-up, plain TCP against TLS"):
            for _ in range(rounds):
                for label, server in servers.items():
                    client = clients[label]
                    gets[label].append(calm_round(lambda: time_calls_ms(lambda: client.get(KEY), max(1, repetitions // rounds),
                                                                          warmup=20)))
                    setups[label].append(time_calls_ms(lambda: _connect_once(server), max(1, connections // rounds),
                                                       warmup=1))
        for client in clients.values():
            client.delete(KEY)
    finally:
        for client in clients.values():
            client.close()
    rows = []
    for label in servers:
        get_ms, connect_ms = np.concatenate(gets[label]), np.concatenate(setups[label])
        rows.append({"transport": label, "get_p50_us": 1000 * np.percentile(get_ms, 50),
                     "get_p99_us": 1000 * np.percentile(get_ms, 99),
                     "get_p50_spread_us": 1000 * spread_between_rounds([np.percentile(g, 50) for g in gets[label]]),
                     "connect_p50_ms": np.percentile(connect_ms, 50), "connect_p99_ms": np.percentile(connect_ms, 99),
                     "gets": get_ms.size, "connections": connect_ms.size})
    return COMPARE.frame(rows)


def overhead(table: pd.DataFrame) -> dict[str, float]:
    """TLS over plain: the GET p50 ratio and the extra set-up time per connection (ms)."""
    t = table.set_index("transport")
    return OVERHEAD.record({
            "get_p50_ratio": float(t.loc["TLS", "get_p50_us"] / t.loc["plain TCP", "get_p50_us"]),
            "get_p50_extra_us": float(t.loc["TLS", "get_p50_us"] - t.loc["plain TCP", "get_p50_us"]),
            "get_p50_extra_spread_us": float(t.loc["TLS", "get_p50_spread_us"] + t.loc["plain TCP", "get_p50_spread_us"]),
            "connect_extra_ms": float(t.loc["TLS", "connect_p50_ms"] - t.loc["plain TCP", "connect_p50_ms"])})
