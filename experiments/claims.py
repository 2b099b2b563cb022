"""Rules for the note's claims that more than one chapter judges: one function per claim.

One claim of the note has one verdict across the book (``data/seed_claims.csv`` lists every ledger row that
judges it, and the summary asserts that they agree). Where two chapters bring evidence to the same claim, both
apply the function here to their own measurements, so the rule — the quantity judged and the condition it is
judged under — is written once.
"""

from __future__ import annotations

from experiments import rules
from experiments.seed import service_default

FAILOVER_RANGE_S = (30.0, 60.0)
"""The note's summary table, Redis row: "Node failure causes 30-60s promotion staleness"."""

ELASTICACHE_FAILOVER_S = service_default("elasticache_failover_s")
"""ElastiCache's documented Multi-AZ promotion ("typically just a few seconds"), read at its upper end. The note
names ElastiCache, which runs no Sentinel: its failover is the service's, not Sentinel's 30 s default."""

RANGE_SLACK = 0.1
"""A duration within 10 % of the note's range counts as in it (the documented figure is a reading of words)."""


def _in_range(seconds: float) -> bool:
    low, high = FAILOVER_RANGE_S
    return (1 - RANGE_SLACK) * low <= seconds <= (1 + RANGE_SLACK) * high


def failover_staleness(lost_invalidation_stale_s: float) -> rules.Rule:
    """"A node failure means 30–60 s of promotion staleness", judged on ElastiCache (Redis OSS or Valkey alike):
    the staleness a failure causes is the promotion itself (the documented failover, during which no
    invalidation lands) and, for an invalidation the old primary acknowledged and lost, the rest of the entry's
    TTL — ``lost_invalidation_stale_s``, measured by the chapter (0 if none was lost)."""
    return rules.parts({
        f"ElastiCache's documented failover (≤ {ELASTICACHE_FAILOVER_S:.0f} s) keeps promotions stale 30–60 s":
            _in_range(ELASTICACHE_FAILOVER_S),
        "an invalidation lost in the failover leaves the promotion stale no longer than 60 s":
            lost_invalidation_stale_s <= (1 + RANGE_SLACK) * FAILOVER_RANGE_S[1]})


LAUNCH_READING = ("how the note's 50,000 \"simultaneous\" users arrive (the note: \"50,000 concurrent requests\", "
                  "\"10× the planned load\")")
"""What every verdict on the launch rests on: the note gives a count, not a rate (`experiments.models.flashsale`)."""
LAUNCH_SUSTAINED = "ten times the capacity offered for the launch (the book's reading)"
LAUNCH_ONCE = "50,000 requests arriving once, at one instant"


def launch_reading(sustained: rules.Rule, once: rules.Rule) -> rules.Rule:
    """A launch claim judged under both readings of its size: offered at ten times the catalog's capacity for the
    launch (the book's reading, `experiments.seed.launch_reads_per_s`) and as one burst of 50,000 at once."""
    return rules.depends_on(LAUNCH_READING, {LAUNCH_SUSTAINED: sustained, LAUNCH_ONCE: once})
