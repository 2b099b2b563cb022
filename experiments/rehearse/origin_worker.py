"""The rehearsal's origin: a capacity in calls per second, first come first served, and a latency on top.

Run as ``python -m experiments.rehearse.origin_worker CAPACITY_PER_S LATENCY_MS SIGMA SEED``; it listens on an
OS-chosen port of 127.0.0.1, prints ``{"port": …}``, and answers each ``GET <key>`` line with ``OK <key>``; a
``STATS`` line returns ``{"calls": …}``, a ``COUNTS <start> <seconds>`` line the calls that arrived in each of
``seconds`` seconds from the wall-clock time ``start`` (the origin's own count, for the rehearsal's load). It ends
when its stdin closes.

Each call takes the next free slot of the origin's throughput — ``1 / CAPACITY_PER_S`` after the previous
call's, or at once if the origin is idle — and is answered a log-normal latency (median LATENCY_MS) after its
slot starts. So the origin serves at most its capacity, queues what exceeds it in arrival order, and cannot see
a caller give up, as the book's catalog is modelled (`experiments.decide.engine.origin_load`, a share of a
capacity). `experiments.caches.origin_server`, a pool of slots each asleep for a service time, is the no-cache
chapter's origin; at a rehearsal's compressed service times (a few milliseconds, one or two slots) its loop's
own work per call would lower its capacity below the plan's, and the run would measure the emulator.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import time


async def _main(capacity_per_s: float, latency_ms: float, sigma: float, seed: int) -> None:
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    state = {"free_at": 0.0, "calls": 0}
    arrivals: list[float] = []
    gap = 1.0 / capacity_per_s

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if line.startswith((b"STATS", b"COUNTS")):
                    if line.startswith(b"STATS"):
                        reply = {"calls": state["calls"]}
                    else:
                        start, seconds = float(line.split()[1]), int(line.split()[2])
                        reply = {"counts": [0] * seconds}
                        for at in arrivals:
                            if 0 <= at - start < seconds:
                                reply["counts"][int(at - start)] += 1
                    writer.write(json.dumps(reply).encode() + b"\n")
                    await writer.drain()
                    continue
                state["calls"] += 1
                arrivals.append(time.time())
                start = max(loop.time(), state["free_at"])
                state["free_at"] = start + gap
                latency = rng.lognormvariate(math.log(latency_ms / 1000), sigma)
                await asyncio.sleep(start + latency - loop.time())
                writer.write(b"OK " + line.split(b" ", 1)[-1])
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # the caller gave up and closed
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()


if __name__ == "__main__":
    asyncio.run(_main(float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
