"""The decision function: a workload in, the cache options ranked, each with its reasons and numbers.

It applies the book's findings as rules, using the same models the chapters check:

* the load the origins must absorb at peak is every live read (prices, stock: never cached) plus the
  cacheable reads the cache misses, ``reads × (live + (1 − live)(1 − hit rate))``; an option that leaves
  more than the origins' capacity is rejected (the no-cache chapter's collapse), and if every option
  does, nothing is recommended and the reasons say what would help;
* the hit rate of one shared cache and of per-task caches come from `experiments.models.taskcache`
  (the in-process chapter's model, checked against an exact replay);
* the staleness an option can promise is what its invalidation path delivers — milliseconds with
  events (Redis pub/sub; Memcached fed by a queue), the TTL without (per-task caches, DAX written
  around) — and an option that cannot meet the workload's limit is rejected;
* DAX needs the data in DynamoDB and is scored with `experiments.models.daxmodel` for the projections read;
* a per-task cache must fit in the memory a task can spare;
* a cache service costs what the dated price table says (`experiments.models.pricing`): the cheapest
  on-demand cluster of one node type that holds the catalog — primary + replica for Redis OSS and
  Valkey, no replica for Memcached — which is what orders Valkey before Redis, whose behaviour the
  Valkey chapter found the same.

Options that leave the origins comfortable rank by what they ask of the team (a component to build —
a queue-fed invalidator, a near cache —, a service to run, data lost with a node) and then by cost; the
others rank by the origin load they leave. Every verdict carries the numbers behind it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from experiments.errors import ParameterError
from experiments.models import daxmodel, pricing, taskcache
from experiments.models.flashsale import origin_share
from experiments.seed import figure, product_reads_per_s


@dataclass(frozen=True)
class Workload:
    """What the decision depends on. Times in seconds, sizes in KB, rates per second."""

    name: str
    reads_per_s: float
    origin_capacity_per_s: float
    peak_multiple: float = 1.0
    tasks: int = 1
    catalog: int = 500_000
    zipf_alpha: float = 1.0
    item_kb: float = 2.0
    ttl_s: float = 300.0
    max_stale_s: float = 300.0
    changes_by_event: bool = False
    in_dynamodb: bool = False
    projections: int = 1
    task_cache_mb: float = 500.0
    live_share: float = 0.0
    item_overhead: float = 1.15
    """Memory per cached item over its own bytes. The default is the 6–12 % the Valkey chapter measured for
    2–100 KB values on Redis, Valkey and memcached, rounded up; the summary passes that chapter's own
    measurement for the workload's item size."""

    def __post_init__(self) -> None:
        for name in ("reads_per_s", "origin_capacity_per_s", "peak_multiple", "item_kb", "ttl_s", "task_cache_mb",
                     "item_overhead"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"workload {self.name!r}: {name} must be positive")
        if not 0 <= self.live_share <= 1:
            raise ParameterError(f"workload {self.name!r}: live_share must lie in [0, 1]")
        if self.tasks < 1 or self.projections < 1 or self.catalog <= taskcache.HOT_ITEMS or self.max_stale_s < 0:
            raise ParameterError(f"workload {self.name!r}: tasks and projections must be at least 1, the catalog above "
                                 f"{taskcache.HOT_ITEMS} items and max_stale_s not negative")

    @property
    def peak_reads_per_s(self) -> float:
        return self.reads_per_s * self.peak_multiple


@dataclass
class Assessment:
    option: str
    hit_rate: float
    origin_load: float
    stale_bound_s: float
    builds: list[str] = field(default_factory=list)
    survives_node_loss: bool = True
    rejected_because: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    usd_per_month: float = 0.0


ENGINES = {"ElastiCache Redis": "redis", "ElastiCache Valkey": "valkey", "Memcached": "memcached"}
"""The options that are an ElastiCache engine, priced by `pricing.cheapest_cluster`."""


def _catalog_gb(w: Workload) -> float:
    return w.catalog * w.item_kb * 1000 * w.item_overhead / 1e9


def _price(w: Workload, a: "Assessment") -> None:
    """Price an engine option's node-based cluster for the workload's catalog, and say so in its reasons."""
    engine = ENGINES[a.option]
    cluster = pricing.cheapest_cluster(engine, _catalog_gb(w), replicas=0 if engine == "memcached" else 1)
    a.usd_per_month = cluster.usd_per_month
    a.reasons.append(f"{cluster.nodes} × {cluster.node_type} hold the {_catalog_gb(w):,.1f} GB catalog: "
                     f"${cluster.usd_per_month:,.0f}/month on demand")


def _serverless(w: Workload, node_based: "Assessment") -> "Assessment":
    """ElastiCache Serverless for Valkey: the node-based option's numbers, billed per ECPU and GB-hour;
    a peak above what an empty cache supports needs a pre-scaling step before it (TLS is always on)."""
    a = Assessment("ElastiCache Serverless (Valkey)", node_based.hit_rate, node_based.origin_load,
                   node_based.stale_bound_s, list(node_based.builds),
                   rejected_because=list(node_based.rejected_because))
    a.reasons.append(node_based.reasons[0])
    per_read = pricing.ecpus_per_command(w.item_kb)
    cost = pricing.serverless_per_month("valkey", ecpus_per_s=w.reads_per_s * per_read, stored_gb=_catalog_gb(w))
    a.usd_per_month = cost["usd_per_month"]
    a.reasons.append(f"{_catalog_gb(w):,.1f} GB stored and {w.reads_per_s * per_read:,.0f} ECPU/s: "
                     f"${a.usd_per_month:,.0f}/month; TLS always on")
    peak = w.peak_reads_per_s * per_read
    if peak > pricing.SERVERLESS_FLOOR_ECPU_PER_S:
        a.builds.append(f"a pre-scaling step an hour before each known peak ({peak:,.0f} ECPU/s against the "
                        f"{pricing.SERVERLESS_FLOOR_ECPU_PER_S:,} an empty cache supports)")
    return a


SHARED_CACHE_ENTRIES = 5_000_000
"""A shared cluster's capacity in entries (a few GB of 2 KB items): large against the hot set."""


def _hit(w: Workload, *, tasks: int, entries: float) -> float:
    traffic = taskcache.TaskTraffic(catalog=w.catalog, alpha=w.zipf_alpha, reads_per_s=w.peak_reads_per_s)
    return taskcache.predict(traffic, tasks=tasks, maxsize=max(entries, 1.0), ttl_s=w.ttl_s)["hit_rate"]


def _assess(w: Workload, option: str, hit: float, stale_bound_s: float, builds: list[str]) -> Assessment:
    load = w.peak_reads_per_s * origin_share(hit, w.live_share) / w.origin_capacity_per_s
    a = Assessment(option, hit, load, stale_bound_s, builds)
    live = f" ({100 * w.live_share:.0f} % of reads live, never cached)" if w.live_share else ""
    a.reasons.append(f"hit rate {100 * hit:.1f} %; peak origin load {100 * load:.0f} % of capacity{live}")
    if stale_bound_s > w.max_stale_s:
        a.rejected_because.append(f"stale for up to {stale_bound_s:,.0f} s after a change; the limit is "
                                  f"{w.max_stale_s:,.0f} s")
    return a


def assess(w: Workload) -> list[Assessment]:
    """Every option judged against the workload (unranked)."""
    shared = _hit(w, tasks=1, entries=SHARED_CACHE_ENTRIES)
    event_bound = 0.01 if w.changes_by_event else w.ttl_s  # events reach every key in milliseconds
    # pub/sub delivers at most once: a missed event leaves a key stale for its TTL unless events can be replayed
    replay = ["a stream-fed invalidator (pub/sub delivers at most once)"] if (
        w.changes_by_event and w.max_stale_s < w.ttl_s) else []
    options = [
        _assess(w, "no cache", 0.0, 0.0, []),
        _assess(w, "ElastiCache Redis", shared, event_bound, replay),
        _assess(w, "ElastiCache Valkey", shared, event_bound, replay),
        _assess(w, "Memcached", shared, event_bound, ["a queue-fed invalidator"] if w.changes_by_event else []),
    ]
    options[3].survives_node_loss = False
    options[3].reasons.append("no replication: a replaced node starts empty")
    for a in options[1:]:
        _price(w, a)
    options.insert(3, _serverless(w, options[2]))
    per_task_entries = w.task_cache_mb * 1000 / w.item_kb
    per_task = _assess(w, "in-process LRU", _hit(w, tasks=w.tasks, entries=per_task_entries), w.ttl_s, [])
    per_task.survives_node_loss = False
    per_task.reasons.append(f"{w.tasks} tasks with {per_task_entries:,.0f} entries each ({w.task_cache_mb:.0f} MB)")
    options.append(per_task)
    if w.changes_by_event:
        near = _assess(w, "in-process near cache over Redis", shared, 0.01, [*replay, "a tracking near cache per task"])
        near.reasons.append("Redis CLIENT TRACKING drops every task's copy within milliseconds")
        options.append(near)
    if w.in_dynamodb:
        workload = daxmodel.ProjectionWorkload(catalog=w.catalog, alpha=w.zipf_alpha, reads_per_s=w.peak_reads_per_s,
                                               item_bytes=int(w.item_kb * daxmodel.KB), projections=w.projections)
        dax = daxmodel.predict(workload, capacity_bytes=figure("dax_node_gb") * daxmodel.GB)
        # writes that go around DAX stay stale until its item TTL (5 minutes by default)
        options.append(_assess(w, "DAX", dax["hit_rate"], 300.0 if w.changes_by_event else w.ttl_s, []))
    else:
        rejected = Assessment("DAX", 0.0, float("nan"), float("nan"))
        rejected.rejected_because.append("the data is not in DynamoDB")
        options.append(rejected)
    return options


SERVICES_TO_RUN = {"no cache": 0, "in-process LRU": 0, "no-cache": 0, "in-process": 0}
"""Options that add no cache service to operate (by the summary's names and by `experiments.decide`'s ids);
every other option adds one."""

HEADROOM = 0.7
"""Origin load at peak below which the origins are comfortable and lower load stops mattering."""

CAPACITY_TOLERANCE = 0.01
"""A load within 1 % of capacity is the sizing point itself (the note sizes its catalog for exactly its
planned misses), not an overload."""


def _order(a: Assessment) -> tuple:
    """Comfortable options by what they ask of the team; the others by the origin load they leave."""
    simplicity = (len(a.builds), SERVICES_TO_RUN.get(a.option, 1), not a.survives_node_loss, _usd(a))
    if a.origin_load <= HEADROOM:
        return (0, *simplicity, a.origin_load)
    return (1, round(a.origin_load, 2), *simplicity)


def _usd(a: Assessment) -> float:
    """The option's monthly cost to the dollar; an option the price table cannot price sorts last."""
    return math.inf if math.isnan(a.usd_per_month) else round(a.usd_per_month)


def _same_numbers(a: Assessment, b: Assessment) -> bool:
    return (round(a.hit_rate, 4), round(a.origin_load, 3), a.stale_bound_s) == (
        round(b.hit_rate, 4), round(b.origin_load, 3), b.stale_bound_s)


def _tie_break(a: Assessment, b: Assessment) -> str:
    """Why ``a`` ranks above ``b`` when their numbers are the same (the first difference `_order` sees)."""
    if len(a.builds) != len(b.builds):
        return f"it needs {len(a.builds)} component(s) built against {len(b.builds)}"
    if SERVICES_TO_RUN.get(a.option, 1) != SERVICES_TO_RUN.get(b.option, 1):
        return "it adds no cache service to run"
    if a.survives_node_loss != b.survives_node_loss:
        return "a failed node keeps its keys (a promoted replica), where the other's replacement starts empty"
    if _usd(a) != _usd(b):
        return (f"it costs ${b.usd_per_month - a.usd_per_month:,.0f}/month less on demand" if math.isfinite(_usd(b))
                else "the other cannot be priced from the dated price table")
    return "of the order the options are listed in"


def rank(w: Workload) -> pd.DataFrame:
    """The options best first, as a table (`order` applied to `assess`)."""
    return table(order(assess(w), live=bool(w.live_share)))


def order(options: list[Assessment], *, live: bool = False) -> list[Assessment]:
    """The options best first. Options that cannot meet the staleness limit, or cannot run at all, are
    rejected; so are those that overload the origins at peak when another option does not (if none
    can avoid it, all stay in the ranking with that warning; ``live``: some reads are never cached). Options
    that leave the origins under 70 % of capacity rank by what they ask of the team — components to build,
    then a service to run, then whether the cached data survives losing a node (Redis's promoted replica kept
    every key; a replaced Memcached node starts empty), then cost — and the rest by the origin load they leave."""
    candidates = [a for a in options if not a.rejected_because]
    for a in candidates:
        if a.origin_load > 1 + CAPACITY_TOLERANCE:
            a.rejected_because.append(f"leaves the origins {a.origin_load:.1f}x their capacity at peak")
    if candidates and all(a.rejected_because for a in candidates):
        help_ = ("serve the live reads from a path that scales, " if live else "") + (
            "shed what cannot be answered in time, or add origin capacity")
        for a in candidates:
            a.reasons.append(f"no option keeps the origins under capacity at this peak: {help_}")
    viable = sorted((a for a in options if not a.rejected_because), key=_order)
    for first, second in zip(viable, viable[1:]):
        if _same_numbers(first, second):
            first.reasons.append(f"ties with {second.option} on hit rate, origin load and staleness; ranked first "
                                 f"because {_tie_break(first, second)}")
    rejected = sorted((a for a in options if a.rejected_because),
                      key=lambda a: (len(a.rejected_because), math.inf if math.isnan(a.origin_load) else a.origin_load,
                                     _usd(a)))
    return viable + rejected


def table(ordered: list[Assessment]) -> pd.DataFrame:
    """The ordered options as rows: rank, verdict (the first viable one "recommended"), numbers, reasons."""
    rows = []
    for position, a in enumerate(ordered, start=1):
        reasons = a.reasons + [f"needs {b}" for b in a.builds] + a.rejected_because
        rows.append({"rank": position, "option": a.option, "verdict": "rejected" if a.rejected_because else "viable",
                     "hit_pct": 100 * a.hit_rate, "origin_load_pct": 100 * a.origin_load,
                     "stale_bound_s": a.stale_bound_s, "usd_per_month": a.usd_per_month,
                     "reasons": "; ".join(reasons)})
    frame = pd.DataFrame(rows)
    if len(frame) and frame.verdict.iloc[0] == "viable":
        frame.loc[0, "verdict"] = "recommended"
    return frame


def seed_workload(alpha: float, **measured) -> Workload:
    """The note's chatbot, its traffic from one scenario — the Memcached failure 2: product reads of a
    catalog sized for 2,000 requests/min at a 95 % hit rate (40,000 reads/min), with no launch multiple
    (that scenario states none). ``alpha`` is the Zipf exponent that gives the 95 %, which the in-process
    chapter calibrates and saves. The system's own figures complete it: 60 tasks, the 5-minute TTL, the
    500K-ASIN catalog (the only catalog size the note gives, in its DAX Q3), 100 KB product documents (its
    in-process failure 2), products changed by events and wanted fresh within seconds (ours: 5 s). ``measured``
    overrides fields with the chapters' measurements (``item_overhead``)."""
    return Workload(name="the note's chatbot", reads_per_s=product_reads_per_s(),
                    origin_capacity_per_s=figure("catalog_capacity_per_min") / 60, peak_multiple=1.0,
                    tasks=int(figure("task_count")), catalog=int(figure("dax_catalog")), zipf_alpha=alpha,
                    item_kb=100.0, ttl_s=figure("product_cache_ttl_s"), max_stale_s=5.0, changes_by_event=True,
                    in_dynamodb=False, **measured)


def launch_workload(alpha: float, *, live_share: float | None = None, **measured) -> Workload:
    """The note's launch, its traffic from one scenario — the no-cache failure: a catalog sized for 5,000
    concurrent requests on a 10 % miss baseline, i.e. for planned reads of ten times its capacity, and
    50,000 concurrent requests at the launch — the planned traffic itself, arriving at once (rates here are
    per second by Little's law at the catalog's 120 ms). The launch's questions are price and stock, read
    live: ``live_share`` (default: the seed figure ``launch_live_share``) of the catalog requests."""
    capacity = figure("catalog_concurrency") / 0.120
    share = figure("launch_live_share") if live_share is None else live_share
    return Workload(name="the note's launch", reads_per_s=capacity * figure("launch_users") / figure("catalog_concurrency"),
                    origin_capacity_per_s=capacity, peak_multiple=1.0, tasks=int(figure("task_count")),
                    catalog=int(figure("dax_catalog")), zipf_alpha=alpha, item_kb=100.0,
                    ttl_s=figure("product_cache_ttl_s"), max_stale_s=5.0, changes_by_event=True, in_dynamodb=False,
                    live_share=share, **measured)
