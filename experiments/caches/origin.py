"""Simulated origin services (catalog, recommendations, promotions, reviews) with the seed's latencies.

The real origins are not on this machine, so each is a stand-in that sleeps for a latency drawn
from a log-normal distribution whose median is the seed's figure (``data/origins.csv``) and returns
a deterministic JSON document of the size chosen for its family (``data/value_sizes.csv``). The
stand-in counts its calls, which is what the stampede and cold-start experiments measure.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import socket
import sys
import threading
import time

import numpy as np

from experiments.errors import BookError
from experiments.lab.spawner import LOOPBACK, make_workdir, spawn_worker
from experiments.params import positive


def document(family: str, ident: str, size_bytes: int) -> dict:
    """A deterministic JSON document of the given family whose encoding is ``size_bytes`` long (±1).

    Fields follow the seed: a product has the attributes its intents project (title, format,
    page count, language, image, review score) and a price, which must never be cached.
    """
    positive("size_bytes", size_bytes)
    rng = random.Random(f"{family}:{ident}")
    if family == "product" or family == "price":
        doc = {"asin": ident, "title": f"Manga vol. {rng.randint(1, 40)}", "format": "paperback",
               "page_count": rng.randint(150, 250), "language": "ja", "image_url": f"https://img/{ident}.jpg",
               "review_score": round(rng.uniform(3, 5), 1), "price_cents": rng.randint(500, 2500)}
    elif family == "reco":
        doc = {"key": ident, "items": [{"asin": f"B{rng.randrange(10**9):09d}", "score": round(rng.random(), 3)}
                                        for _ in range(20)]}
    elif family == "promo":
        doc = {"section": ident, "name": "Golden Week Sale", "discount_pct": 20, "starts": "10:00"}
    else:
        doc = {"asin": ident, "average": round(rng.uniform(3, 5), 2),
               "histogram": [rng.randint(0, 500) for _ in range(5)]}
    filler = "description" if family in ("product", "price") else "text"
    doc[filler] = ""
    pad = size_bytes - len(json.dumps(doc))
    doc[filler] = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(max(pad, 0)))
    return doc


class Origin:
    """A stand-in origin service: log-normal latency with a given median, deterministic documents."""

    def __init__(self, family: str, median_ms: float, sigma: float, size_bytes: int, seed: int) -> None:
        positive("median_ms", median_ms, integer=False)
        self.family, self.median_ms, self.sigma, self.size_bytes = family, median_ms, sigma, size_bytes
        self._rng = np.random.default_rng(seed)
        self.calls = 0

    def draw_ms(self) -> float:
        """One latency from the log-normal distribution (median = ``median_ms``)."""
        return float(self._rng.lognormal(math.log(self.median_ms), self.sigma))

    def fetch(self, key: str) -> dict:
        """Serve one request: wait the drawn latency, then return the document for ``key``."""
        self.calls += 1
        time.sleep(self.draw_ms() / 1000)
        return document(self.family, key.split(":", 1)[-1], self.size_bytes)


class OriginLink:
    """One connection per caller thread to an `OriginProcess`; a timeout closes it (the origin keeps
    working on the abandoned request, as a real service would)."""

    def __init__(self, port: int, timeout_s: float, host: str = LOOPBACK) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.local = threading.local()

    def load(self, key: str) -> bytes:
        """The origin's one-line answer for ``key`` over this thread's connection (opened on first use);
        on a timeout or a closed connection, the connection is closed and the error raised."""
        conn = getattr(self.local, "conn", None)
        if conn is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            conn = self.local.conn = (sock, sock.makefile("rb"))
        try:
            conn[0].sendall(f"GET {key}\n".encode())
            answer = conn[1].readline()
        except OSError:
            self.close()
            raise
        if not answer:
            self.close()
            raise ConnectionError("the origin closed the connection")
        return answer.strip()

    def close(self) -> None:
        """Close the calling thread's connection (each thread closes its own)."""
        conn = getattr(self.local, "conn", None)
        if conn is not None:
            conn[1].close()
            conn[0].close()
            self.local.conn = None


class OriginProcess:
    """A real origin service in its own process (`experiments.caches.origin_server`): a pool of ``workers``
    slots, log-normal service time, first come first served. Started with ``with``; stopped (stdin
    closed, reaped, directory removed) on exit. `stats`, `reset` and `wait_idle` talk to it over TCP.
    In the network lab it listens on its host's address (``host``) and starts behind ``prefix`` (the lab's
    ``ip netns exec`` for that host); its controls are then called from inside a lab host.
    """

    def __init__(self, *, workers: int, service_ms: float | None = None, sigma: float | None = None, seed: int = 0,
                 host: str = LOOPBACK, prefix: list[str] | tuple[str, ...] = ()) -> None:
        from experiments.seed import origin as seed_origin  # not at import: the origin's workers need no pandas

        positive("workers", workers)
        product = seed_origin("product")  # by default the note's Product Catalog: 120 ms median, our spread
        service_ms = float(product.seed_origin_ms) if service_ms is None else service_ms
        sigma = float(product.latency_sigma) if sigma is None else sigma
        self.args = [str(workers), str(service_ms), str(sigma), str(seed), host]
        self.host, self.prefix = host, list(prefix)
        self.process = None
        self.workdir = None
        self.port: int | None = None

    def __enter__(self) -> "OriginProcess":
        self.workdir = make_workdir("origin")
        try:
            self.process = spawn_worker([*self.prefix, sys.executable, "-m", "experiments.caches.origin_server", *self.args],
                                        self.workdir / "origin.log", self.workdir)
            line = self.process.stdout.readline()
            if not line:
                raise BookError(f"the origin server exited at start; log: {self.workdir / 'origin.log'}")
            self.port = json.loads(line)["port"]
        except BaseException:
            self.__exit__()
            raise
        return self

    def _control(self, command: str) -> dict:
        with socket.create_connection((self.host, self.port), timeout=5) as conn:
            conn.sendall(command.encode() + b"\n")
            return json.loads(conn.makefile("rb").readline())

    def stats(self) -> dict:
        """Counters since the last `reset`: calls, peak requests in the building, first/last arrival."""
        return self._control("STATS")

    def reset(self) -> dict:
        """Zero the counters (requests still in the building stay counted as in flight)."""
        return self._control("RESET")

    def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Wait until no request is queued or in service (abandoned requests are still served)."""
        deadline = time.monotonic() + timeout_s
        while self.stats()["in_flight"]:
            if time.monotonic() > deadline:
                raise BookError(f"the origin still had requests in flight after {timeout_s:.0f} s")
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=5)
            except Exception:
                self.process.kill()
                self.process.wait()
            self.process.stdout.close()
            self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
