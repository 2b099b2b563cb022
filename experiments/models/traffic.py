"""The chatbot's traffic as key families, not one Zipf: a seeded request stream for the policy comparisons.

Chat sessions arrive at random and make turns a think time apart. Every turn reads

* ``product:{asin}`` — a fresh product (the note's Zipf popularity over its 500K-ASIN catalog) or, in a
  share of turns, the product its previous turn talked about;
* ``reco:{user_id}:{seed_asin}`` — the recommendations for that user and product: re-read while the
  session stays on the product and never after it, so most are read once (one-hit wonders);
* ``promo:{store_section}`` — one of the note's 200 promotion sections, few keys and very hot;
* ``review:{asin}`` — in a share of turns, the product's review summary.

A launch (``launch_at_s``) moves popularity: a new ASIN takes the top rank at that moment and every other
product slides down one (`experiments.models.taskcache.Launches`, which repeats it every ``launch_at_s``: a
stream shorter than twice that holds one launch). Value sizes are the key design's
(``data/value_sizes.csv``); the parameters the note does not give are in ``data/traffic.csv`` with their
sources. Object ids are disjoint per family, so a cache replay can count hits per family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from experiments.errors import ParameterError
from experiments.models import popularity
from experiments.models.taskcache import Launches
from experiments.paths import DATA
from experiments.seed import figure, product_reads_per_s, value_sizes

FAMILIES = ("product", "reco", "promo", "review")


@lru_cache(maxsize=1)
def parameters() -> pd.DataFrame:
    """``data/traffic.csv``: the traffic's parameters the note does not give, each with its source."""
    return pd.read_csv(DATA / "traffic.csv").set_index("name")


def parameter(name: str) -> float:
    """One of ``data/traffic.csv``'s parameters, by name."""
    return float(parameters().loc[name, "value"])


def family_bytes() -> dict[str, int]:
    """Bytes of one value per family: the key design's sizes (the product as its 2 KB catalog item)."""
    sizes = value_sizes().drop_duplicates("family").set_index("family").size_bytes
    return {f: int(sizes[f]) for f in FAMILIES}


def hot_key_reads_per_task_s() -> float:
    """How often one task reads the hottest product, in the note's Memcached failure 2 (its top 100 ASINs at
    15,000 of 40,000 requests/min): the hot set's popularity (`experiments.models.popularity.hot_set`, Zipf with
    the exponent that gives the top 100 that share), spread evenly over the 60 tasks — about 0.8 reads per
    second per task."""
    return popularity.hot_set().hottest_reads_per_s() / figure("task_count")


@dataclass(frozen=True)
class ChatTraffic:
    """What generates the stream. Rates per second, times in seconds."""

    product_alpha: float
    turns_per_s: float = field(default_factory=product_reads_per_s)
    catalog: int = field(default_factory=lambda: int(figure("dax_catalog")))
    sections: int = field(default_factory=lambda: int(figure("promo_categories")))
    promo_alpha: float = field(default_factory=lambda: parameter("promo_alpha"))
    turns_per_session: float = field(default_factory=lambda: parameter("turns_per_session"))
    think_time_s: float = field(default_factory=lambda: parameter("think_time_s"))
    stay_on_product: float = field(default_factory=lambda: parameter("stay_on_product"))
    review_share: float = field(default_factory=lambda: parameter("review_share"))
    launch_at_s: float = math.inf

    def __post_init__(self) -> None:
        for name in ("product_alpha", "turns_per_s", "promo_alpha", "think_time_s", "launch_at_s"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"{name}={getattr(self, name)} must be positive")
        if self.catalog < 2 or self.sections < 1 or self.turns_per_session < 1:
            raise ParameterError("the catalog needs 2 or more products, sections and turns_per_session at least 1")
        for name in ("stay_on_product", "review_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ParameterError(f"{name}={getattr(self, name)} must lie in [0, 1]")


@dataclass
class Trace:
    """A request stream: per request the object, its time and its family; per object its size and family."""

    entry: np.ndarray
    times: np.ndarray
    family: np.ndarray
    sizes: np.ndarray
    object_family: np.ndarray

    def reads_per_s(self) -> dict[str, float]:
        """Each family's mean reads per second over the trace's span."""
        span = float(self.times[-1] - self.times[0]) or 1.0
        return {f: float((self.family == i).sum()) / span for i, f in enumerate(FAMILIES)}

    def select(self, families: tuple[str, ...]) -> "Trace":
        """The requests of ``families`` only (same object ids), as a pool of their own would see them."""
        keep = np.isin(self.family, [FAMILIES.index(f) for f in families])
        return Trace(self.entry[keep], self.times[keep], self.family[keep], self.sizes, self.object_family)


def zipf_ranks(rng: np.random.Generator, n: int, keys: int, alpha: float) -> np.ndarray:
    """``n`` draws of a rank in ``[0, keys)`` with probability proportional to ``(rank + 1) ** -alpha``."""
    cdf = np.cumsum(np.arange(1, keys + 1, dtype=float) ** -alpha)
    return np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1]), keys - 1).astype(np.int64)


def _turns(t: ChatTraffic, duration_s: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn times, session of each turn and whether it starts a session's new topic, in session order."""
    # sessions already under way at time 0: long enough a lead that fewer than 1 in 1,000 are cut short
    lead = math.log(1e-3) / math.log(1 - 1 / t.turns_per_session) * t.think_time_s if t.turns_per_session > 1 else 0.0
    sessions = rng.poisson(t.turns_per_s / t.turns_per_session * (duration_s + lead))
    starts = rng.uniform(-lead, duration_s, sessions)
    lengths = rng.geometric(1 / t.turns_per_session, sessions)
    session = np.repeat(np.arange(sessions), lengths)
    first = np.r_[True, session[1:] != session[:-1]]
    gaps = np.where(first, 0.0, rng.exponential(t.think_time_s, session.size))
    offsets = np.cumsum(gaps)
    offsets -= np.repeat(offsets[first], lengths)  # time since the session's first turn
    times = starts[session] + offsets
    fresh = first | (rng.random(session.size) >= t.stay_on_product)
    keep = (times >= 0) & (times < duration_s)
    times, session, fresh = times[keep], session[keep], fresh[keep]
    # a session under way at time 0 starts its visible turns on a fresh product (its earlier turns are gone)
    fresh |= np.r_[True, session[1:] != session[:-1]]
    return times, session, fresh


def generate(t: ChatTraffic, *, duration_s: float, seed: int, share: float = 1.0) -> Trace:
    """``duration_s`` of the chatbot's traffic, every family interleaved in time (seeded). ``share`` < 1 keeps
    each turn with that probability: one task's stream when a load balancer spreads turns at random over
    ``1 / share`` tasks (a session's turns land on different tasks)."""
    if not 0 < duration_s < 1e7:
        raise ParameterError(f"duration_s={duration_s} must lie in (0, 1e7)")
    if not 0 < share <= 1:
        raise ParameterError(f"share={share} must lie in (0, 1]")
    rng = np.random.default_rng(seed)
    times, session, fresh = _turns(t, duration_s, rng)
    if times.size == 0:
        raise ParameterError(f"no turn falls in {duration_s} s at {t.turns_per_s} turns/s; lengthen the trace")
    launches = Launches(every_s=t.launch_at_s, new=1)
    drawn = launches.items(zipf_ranks(rng, times.size, t.catalog, t.product_alpha), times, t.catalog)
    # a turn that stays on its product re-reads the product of the session's last fresh turn
    last_fresh = np.maximum.accumulate(np.where(fresh, np.arange(times.size), 0))
    product = drawn[last_fresh]
    task = rng.random(times.size) < share
    times, session, product = times[task], session[task], product[task]
    if times.size == 0:
        raise ParameterError(f"no turn of {duration_s} s is kept at share={share}; lengthen the trace")
    products = int(product.max()) + 1
    _, reco = np.unique(session * np.int64(products) + product, return_inverse=True)
    promo = zipf_ranks(rng, times.size, t.sections, t.promo_alpha)
    review = rng.random(times.size) < t.review_share

    base = {"product": 0, "review": products, "promo": 2 * products, "reco": 2 * products + t.sections}
    parts = [(base["product"] + product, 0), (base["reco"] + reco, 1), (base["promo"] + promo, 2),
             (base["review"] + product[review], 3)]
    entry = np.concatenate([ids for ids, _ in parts])
    when = np.concatenate([times, times + 1e-6, times + 2e-6, times[review] + 3e-6])
    family = np.concatenate([np.full(ids.size, f, np.uint8) for ids, f in parts])
    order = np.argsort(when, kind="stable")

    objects = base["reco"] + int(reco.max()) + 1
    object_family = np.empty(objects, np.uint8)
    for name, start, stop in (("product", 0, products), ("review", products, 2 * products),
                              ("promo", 2 * products, base["reco"]), ("reco", base["reco"], objects)):
        object_family[start:stop] = FAMILIES.index(name)
    sizes = np.array([family_bytes()[f] for f in FAMILIES], float)[object_family]
    return Trace(entry[order], when[order], family[order], sizes, object_family)


def one_hit_wonders(trace: Trace) -> pd.DataFrame:
    """Per family and overall: objects read, the share read exactly once (one-hit wonders), reads per second."""
    counts = np.bincount(trace.entry, minlength=trace.sizes.size)
    rows = []
    rates = trace.reads_per_s()
    for i, f in enumerate((*FAMILIES, "all")):
        mask = (trace.object_family == i) if f != "all" else np.ones(counts.size, bool)
        seen = counts[mask & (counts > 0)]
        if seen.size == 0:
            continue
        rows.append({"family": f, "objects": int(seen.size), "one_hit_share": float((seen == 1).mean()),
                     "reads_per_s": rates.get(f, sum(rates.values()))})
    return pd.DataFrame(rows)
