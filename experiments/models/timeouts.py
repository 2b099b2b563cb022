"""A cache client's command timeout on the turn's path, derived from what a lost packet costs and the turn's budget.

* **Floor.** A GET whose request or reply is lost waits for TCP to retransmit it, and Linux never retransmits
  sooner than ``TCP_RTO_MIN``, 200 ms by default (``include/net/tcp.h``) — for a lost request or a reply's last
  segment; a segment that others follow is repaired within a round trip. The network chapter measured it on the
  lab's wire (`experiments.probes.lostpacket`): the GETs that waited for a timer and lost one packet answered in
  204–259 ms. A timeout below that turns each such loss into a failed read and a call to the origin; one above it
  lets the retransmission answer. The floor is the slowest one-loss GET (`LOST_PACKET_S`, a margin above the
  measurements) plus a healthy GET's tail across zones (`CROSS_ZONE_S`).
* **The timeout** is the floor rounded up to the next `STEP_S`, with no retries of the client's own: a retry of
  a read that timed out across a partition waits again, and the turn has no time for it (the network chapter).
* **Ceiling.** A dead cache costs every read the timeout before it goes to the origin, so the timeout and the
  origin's p99 must fit the turn's budget — at most `BUDGET_SHARE` of it, the book's ceiling for a plan
  (a plan at 100 % of a capacity is not a plan). The budget below which it no longer fits is the edge.

AWS's client examples give a 100 ms connect timeout and either a 2 s command timeout (redis-py, "give every
Redis command a 2 second timeout") or 250 ms (Lettuce, measured "with keys and values up to 20 bytes"): the
first is the whole turn's budget, the second sits inside the range a one-loss GET takes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from experiments.errors import ParameterError
from experiments.measure import spread_between_rounds
from experiments.params import PLAN_CEILING
from experiments.seed import figure, origin_table, service_default

TCP_RTO_MIN_S = service_default("tcp_rto_min_s")
"""Linux's minimum retransmission timeout, ``TCP_RTO_MIN = HZ/5`` (``include/net/tcp.h``)."""
LOST_PACKET_S = service_default("tcp_lost_packet_s")
"""What a GET that lost one packet waits at most: 200 ms plus the retransmission's own lateness — the network
chapter measured up to 259 ms and reports each run's slowest beside this bound."""
CROSS_ZONE_S = 0.01
"""A healthy GET's tail across Availability Zones: AWS's zones are close enough for "synchronous replication with
single-digit millisecond latency" — taken at its top."""
STEP_S = 0.05
"""Timeouts are set in steps of 50 ms."""
BUDGET_SHARE = PLAN_CEILING
"""A dead cache's cost (the timeout plus the origin's p99) may take at most this share of the turn's budget: the
book's ceiling for any plan (`experiments.params.PLAN_CEILING`)."""
ORIGIN_P99_Z = 2.326
"""The standard normal's 99th percentile: an origin with log-normal latency has p99 = median·exp(z·sigma)."""


@dataclass(frozen=True)
class TimeoutPlan:
    """The command timeout a turn's cache client should use, and why."""

    command_timeout_s: float
    retries: int
    floor_s: float
    dead_cache_turn_s: float
    budget_s: float
    budget_used: float
    fits: bool
    budget_breaks_below_s: float

    def as_dict(self) -> dict:
        """The plan's fields, for a deployment's JSON."""
        return asdict(self)


def origin_p99_s(median_s: float, sigma: float) -> float:
    """The p99 of an origin whose latency is log-normal with ``median_s`` and shape ``sigma``."""
    return float(median_s * math.exp(ORIGIN_P99_Z * sigma))


def plan(*, budget_s: float, origin_p99_s: float, lost_packet_s: float = LOST_PACKET_S,
         healthy_p99_s: float = CROSS_ZONE_S) -> TimeoutPlan:
    """The command timeout for a cache read on a turn with ``budget_s`` whose fallback is an origin call of
    ``origin_p99_s`` at p99: the floor a one-loss GET sets, rounded up to `STEP_S`, checked against the budget."""
    for name, value in (("budget_s", budget_s), ("origin_p99_s", origin_p99_s), ("lost_packet_s", lost_packet_s)):
        if not value > 0:
            raise ParameterError(f"{name}={value} must be positive")
    if healthy_p99_s < 0:
        raise ParameterError(f"healthy_p99_s={healthy_p99_s} must not be negative")
    floor, origin_p99_s, budget_s = float(lost_packet_s + healthy_p99_s), float(origin_p99_s), float(budget_s)
    timeout = math.ceil(round(floor / STEP_S, 9)) * STEP_S
    dead = timeout + origin_p99_s
    return TimeoutPlan(command_timeout_s=round(timeout, 3), retries=0, floor_s=floor, dead_cache_turn_s=dead,
                       budget_s=budget_s, budget_used=dead / budget_s, fits=dead <= BUDGET_SHARE * budget_s,
                       budget_breaks_below_s=dead / BUDGET_SHARE)


def lost_packet_costs(gets: pd.DataFrame) -> dict:
    """What the GETs of `experiments.probes.lostpacket.lossy_gets` show: the healthy tail, and for the lossy GETs
    slowed past 100 ms — a lost packet, since a healthy GET takes well under a millisecond — how many lost one
    packet (answered before a second retransmission could come, 2·``TCP_RTO_MIN``), the range they took, and
    their median over the clients (each client a round) with its spread between rounds."""
    healthy = gets.loc[gets.phase == "healthy", "latency_ms"].to_numpy()
    lossy = gets[gets.phase == "lossy"]
    if len(healthy) == 0 or len(lossy) == 0:
        raise ParameterError("the GETs need both phases, healthy and lossy")
    slowed = lossy[lossy.latency_ms > 100]
    one = slowed[slowed.latency_ms < 2000 * TCP_RTO_MIN_S]
    rounds = one.groupby("client").latency_ms.median()
    return {"gets": len(lossy), "healthy_p50_ms": float(np.percentile(healthy, 50)),
            "healthy_p99_ms": float(np.percentile(healthy, 99)), "slowed": len(slowed),
            "slowed_share": len(slowed) / len(lossy), "one_loss": len(one),
            "one_loss_min_ms": float(one.latency_ms.min()) if len(one) else math.nan,
            "one_loss_max_ms": float(one.latency_ms.max()) if len(one) else math.nan,
            "one_loss_median_ms": float(rounds.median()) if len(one) else math.nan,
            "one_loss_median_spread_ms": spread_between_rounds(rounds),
            "more_losses": len(slowed) - len(one),
            "unslowed_max_ms": float(lossy.latency_ms[lossy.latency_ms <= 100].max())}


def candidates(gets: pd.DataFrame, *, budget_s: float, origin_p99_s: float,
               timeouts_s: dict[str, float]) -> pd.DataFrame:
    """Each named timeout against the lossy GETs and the budget: how many GETs it would have failed (each one a
    call to the origin on a healthy cache), and what a dead cache would cost a turn with it."""
    lossy = gets.loc[gets.phase == "lossy", "latency_ms"].to_numpy()
    rows = []
    for name, timeout in timeouts_s.items():
        dead = timeout + origin_p99_s
        rows.append({"timeout": name, "timeout_s": timeout, "gets_failed": int((lossy > 1000 * timeout).sum()),
                     "failed_share": float((lossy > 1000 * timeout).mean()), "dead_cache_turn_s": dead,
                     "budget_used": dead / budget_s, "fits": dead <= BUDGET_SHARE * budget_s})
    return pd.DataFrame(rows)


def catalog_p99_s() -> float:
    """The note's catalog behind a dead cache, at p99: its 120 ms median at the book's spread (``data/origins.csv``)."""
    product = origin_table().set_index("family").loc["product"]
    return origin_p99_s(product.seed_origin_ms / 1000, float(product.latency_sigma))


def note_plan() -> TimeoutPlan:
    """The timeout of the note's turn: its 2,000 ms budget on catalog calls, the catalog's p99 behind a dead cache."""
    return plan(budget_s=figure("catalog_timeout_ms") / 1000, origin_p99_s=catalog_p99_s())


def note_candidates(gets: pd.DataFrame) -> pd.DataFrame:
    """A short timeout, AWS's two samples and the derived one against the lossy GETs and the note's turn."""
    return candidates(gets, budget_s=figure("catalog_timeout_ms") / 1000, origin_p99_s=catalog_p99_s(), timeouts_s={
        "100 ms": 0.1, "AWS Lettuce sample": service_default("elasticache_lettuce_command_timeout_s"),
        "derived here": note_plan().command_timeout_s,
        "AWS redis-py sample": service_default("elasticache_client_socket_timeout_s")})


def slower_than(gets: pd.DataFrame) -> pd.DataFrame:
    """For each phase, how many GETs took longer than each latency on a log grid from 0.05 ms to 2 s: a healthy
    link's curve falls to zero within milliseconds, a lossy link's holds a step at TCP's retransmission timer."""
    grid = np.geomspace(0.05, 2000, 85)
    rows = [{"phase": f"{phase} link", "latency_ms": float(t), "gets_slower": int((g.latency_ms > t).sum())}
            for phase, g in gets.groupby("phase") for t in grid]
    return pd.DataFrame(rows)
