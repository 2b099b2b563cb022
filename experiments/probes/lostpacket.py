"""What one lost packet costs a cache read: GETs of the 2 KB product over a healthy link, then over a lossy one.

A Redis server runs in a ``cache`` host of the network lab, clients in an ``app`` host. Each client thread has
its own connection and issues GETs one after another, with a socket timeout far above any retransmission
(5 s), so every GET answers and its latency is what the network made it. First over the healthy link, then
with ``loss_pct`` of the packets dropped each way in the lab's switch (`experiments.lab.netlab.NetLab.lose`).
A lost segment that others follow is repaired within a round trip; a lost request or a reply's last segment
waits for TCP's timer — by default never sooner than 200 ms (``TCP_RTO_MIN``) — so the lossy phase shows what
a command timeout must outlast for a lost packet not to become a failed read (`experiments.models.timeouts`).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from experiments.errors import ParameterError
from experiments.lab.netlab import NetLab
from experiments.lab.quiet import quiet
from experiments.lab.servers import RedisServer
from experiments.results import Table
from experiments.seed import value_sizes

GETS = Table("lostpacket.GETS", ("phase", "client", "latency_ms"))
"""`lossy_gets`: one row per GET; ``phase`` is ``"healthy"`` or ``"lossy"``."""

SOCKET_TIMEOUT_S = 5.0
"""Far above three retransmissions (0.2 + 0.4 + 0.8 s): every GET answers and is timed."""


def _gets(lab: NetLab, server: RedisServer, *, count: int, key: str) -> list[float]:
    with lab.inside("app"):
        conn = server.client(socket_timeout=SOCKET_TIMEOUT_S)
        try:
            conn.get(key)  # connect outside the timing
            times = []
            for _ in range(count):
                start = time.perf_counter()
                conn.get(key)
                times.append((time.perf_counter() - start) * 1000)
            return times
        finally:
            conn.close()


def lossy_gets(*, loss_pct: float = 1.0, gets: int = 2000, clients: int = 4) -> pd.DataFrame:
    """``gets`` GETs of the 2 KB product item in each phase, healthy then with ``loss_pct`` % of the packets
    lost each way, split over ``clients`` threads with a connection each. Bounded: at most ``gets`` GETs a
    phase, each answered within `SOCKET_TIMEOUT_S`. The packets are lost on the wire (in the lab's switch), so
TCP learns of each loss as on a real link."""
    if not 0 < loss_pct < 50 or gets < clients or clients < 1:
        raise ParameterError(f"loss_pct={loss_pct} must be in (0, 50) and gets={gets} at least clients={clients} >= 1")
    sizes = value_sizes().set_index(["family", "variant"]).size_bytes
    item = b"x" * int(sizes["product", "item"])
    rows = []
    with quiet("GETs over a lossy link"), NetLab(["cache", "app"], tag="loss") as lab:
        server = lab.place("cache", RedisServer)
        try:
            server.start()
            with lab.inside("app"):
                setup = server.client()
                setup.set("product:B000000001", item)
                setup.close()
            for phase in ("healthy", "lossy"):
                if phase == "lossy":
                    lab.lose("app", "cache", percent=loss_pct)
                with ThreadPoolExecutor(clients) as pool:
                    share = [gets // clients + (i < gets % clients) for i in range(clients)]
                    futures = [pool.submit(_gets, lab, server, count=n, key="product:B000000001") for n in share]
                    for i, future in enumerate(futures):
                        rows += [{"phase": phase, "client": i, "latency_ms": ms} for ms in future.result()]
        finally:
            server.stop()
    return GETS.frame(rows)
