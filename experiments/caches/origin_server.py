"""A small real origin service (no-cache and read-through chapters): asyncio, loopback only, a worker pool, FCFS.

Run as ``python -m experiments.caches.origin_server WORKERS SERVICE_MS SIGMA SEED [HOST]``. It listens on an
OS-chosen port of HOST (127.0.0.1 unless given: a host of the network lab), prints ``{"port": …}`` on stdout,
and answers one request per line
(``GET <key>``) after waiting for one of ``WORKERS`` slots (first come, first served) and then a
log-normal service time with median ``SERVICE_MS``. Like the seed's catalog it cannot see a client
give up: a queued request is served even if nobody waits for it any more.

``STATS`` returns counters — calls, requests in the building now and at their peak (queued plus in
service: the concurrency the origin is asked for), and the first and last arrival on the machine's
monotonic clock (``time.monotonic``, shared by all processes) — and ``RESET`` zeroes them between
experiments. The process ends when its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import time


def _fresh() -> dict:
    return {"calls": 0, "served": 0, "peak_in_flight": 0, "peak_queue": 0, "first_arrival": None,
            "last_arrival": None}


async def _main(workers: int, service_ms: float, sigma: float, seed: int, host: str) -> None:
    slots = asyncio.Semaphore(workers)
    rng = random.Random(seed)
    stats = _fresh()
    now = {"in_flight": 0, "queued": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if line.startswith((b"STATS", b"RESET")):
                    if line.startswith(b"RESET"):
                        stats.update(_fresh())
                    writer.write(json.dumps(stats | now).encode() + b"\n")
                    await writer.drain()
                    continue
                arrived = time.monotonic()
                stats["calls"] += 1
                stats["first_arrival"] = stats["first_arrival"] or arrived
                stats["last_arrival"] = arrived
                now["in_flight"] += 1
                now["queued"] += 1
                stats["peak_in_flight"] = max(stats["peak_in_flight"], now["in_flight"])
                stats["peak_queue"] = max(stats["peak_queue"], now["queued"])
                try:
                    async with slots:
                        now["queued"] -= 1
                        await asyncio.sleep(rng.lognormvariate(math.log(service_ms / 1000), sigma))
                        stats["served"] += 1
                finally:
                    now["in_flight"] -= 1
                writer.write(b"OK " + line.split(b" ", 1)[-1])
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # the client gave up and closed: the work is done anyway
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, 0, backlog=4096)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]),
                      sys.argv[5] if len(sys.argv) > 5 else "127.0.0.1"))
