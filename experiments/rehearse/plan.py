"""What a rehearsal runs: the workload's traffic at a scale and a speed this machine carries, its phases and
the engine's prediction for exactly that traffic.

Two factors shrink a workload to fit two cores without changing what the engine's models predict for it:

* **speed** ``c`` — time runs ``c`` times faster: every TTL and the origin's service time are divided by ``c``,
  every rate multiplied by it. A key's reads within one TTL, which set a TTL cache's hit rate, are unchanged; so
  are the reads that arrive while a miss reloads it (λ·latency: the stampede of each expiry) and the origin's load
  as a share of its capacity (the capacity is multiplied by ``c`` too). An origin at its real 120 ms would turn
  each expiry of a hot key into ``c`` times the misses, enough to tip a plan at 80 % of the origin into overload.
  The turn's budget and the client's timeouts stay real: they tell a turn the origin could not answer in time.
* **scale** ``s`` — the run carries the share ``s`` of the workload's reads. A smaller ``s`` lowers the hit
  rate (fewer reads per key per TTL), so the engine's prediction is taken for the scaled workload
  (`Plan.scaled`), the same models on the numbers the run really offers; its prediction for the workload as
  written sits beside it. The origin's capacity is not cut by ``s`` but set so that the engine puts the scaled
  origin at the same share of its capacity as the written one: the run exercises the design at its planned
  utilization (80 % for a plan the engine accepts, an overload for no cache), and what it tests is the engine's
  count of misses, in calls per second.

``c`` is chosen so the shortest cached TTL lasts `target_ttl_s`; ``s`` so that the peak's offered reads stay
under `MACHINE_SHARE` of the rate the rehearsal's own task processes measured they keep to on this machine
(`choose`): a driver that cannot keep up would measure itself, not the design, and drivers that take every core
starve the servers they measure.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from experiments.decide import engine
from experiments.decide.workload import Workload, WorkloadError

MACHINE_SHARE = 0.3
"""The most of the machine's measured rate a rehearsal offers at its peak (at 0.5 the task processes left the
servers and the origin too little of two cores, and the origin's calls timed out)."""
MIN_WINDOW_S = 5.0
"""The shortest peak window (half the peak phase: a TTL as run) a plan may measure over."""
PHASES = (("normal", 2.0), ("ramp", 0.5), ("peak", 2.0), ("back", 0.5))
"""The run's phases, each in TTLs (as run): two TTLs of normal traffic warm the cache to its steady state, the
ramp climbs to the peak multiple, the peak holds it for two TTLs (measured over its second), then traffic falls
back to normal."""


@dataclass(frozen=True)
class Phase:
    """A stretch of the run (seconds as run) whose traffic goes from ``start`` to ``end`` times normal."""

    name: str
    seconds: float
    start: float
    end: float


@dataclass(frozen=True)
class Plan:
    """A workload and an option, shrunk by ``scale`` and sped up by ``speed`` (see the module)."""

    workload: Workload
    option: str
    scale: float
    speed: float
    machine_reads_per_s: float

    def __post_init__(self) -> None:
        if not (0 < self.scale <= 1 and self.speed >= 1):
            raise WorkloadError(f"scale={self.scale} must lie in (0, 1] and speed={self.speed} be at least 1")

    @property
    def scaled(self) -> Workload:
        """The workload at ``scale``, in its own time, with the origin's capacity at which the engine loads it as
        much as the written one (see the module): what the engine predicts for this run."""
        w = self.workload
        reads = dataclasses.replace(
            w, name=f"{w.name} at {self.scale:.3g} of its traffic",
            origin_capacity_per_s=w.origin_capacity_per_s * self.scale,
            families=tuple(dataclasses.replace(f, reads_per_s=f.reads_per_s * self.scale) for f in w.families))
        written = engine.origin_load(w, self.option, w.peak_multiple)
        misses = engine.origin_load(reads, self.option, w.peak_multiple) * reads.origin_capacity_per_s
        if written <= 0 or misses <= 0:
            return reads
        return dataclasses.replace(reads, origin_capacity_per_s=misses / written)

    @property
    def phases(self) -> tuple[Phase, ...]:
        """`PHASES` in seconds as run, with the traffic multiple each starts and ends at."""
        peak, ttl = self.workload.peak_multiple, self.ttl_as_run_s
        levels = {"normal": (1.0, 1.0), "ramp": (1.0, peak), "peak": (peak, peak), "back": (peak, 1.0)}
        return tuple(Phase(name, round(share * ttl, 3), *levels[name]) for name, share in PHASES)

    @property
    def ttl_as_run_s(self) -> float:
        """The shortest cached TTL as the run sees it (the phases are counted in it)."""
        return min_ttl(self.workload) / self.speed

    @property
    def seconds(self) -> float:
        """The run's length (as run)."""
        return sum(p.seconds for p in self.phases)

    def multiple_at(self, t_s: float) -> float:
        """Traffic at ``t_s`` seconds into the run, in multiples of the workload's normal reads."""
        start = 0.0
        for phase in self.phases:
            if t_s < start + phase.seconds:
                return phase.start + (phase.end - phase.start) * (t_s - start) / phase.seconds
            start += phase.seconds
        return 1.0

    def peak_window(self) -> tuple[float, float]:
        """The seconds (as run) over which the peak is measured: the second half of the peak phase."""
        start = 0.0
        for phase in self.phases:
            if phase.name == "peak":
                return start + phase.seconds / 2, start + phase.seconds
            start += phase.seconds
        raise AssertionError("every plan has a peak")  # pragma: no cover - PHASES holds one

    def reads_per_s(self, family: str, multiple: float = 1.0) -> float:
        """The family's reads per second as run (scaled and sped up) at ``multiple``."""
        f = next(f for f in self.workload.families if f.name == family)
        return f.reads_per_s * self.scale * self.speed * multiple

    @property
    def offered_peak_per_s(self) -> float:
        """Reads per second (as run) at the peak, all families."""
        return sum(self.reads_per_s(f.name, self.workload.peak_multiple) for f in self.workload.families)

    @property
    def origin_capacity_per_s(self) -> float:
        """The origin's capacity as run (`scaled`'s, sped up)."""
        return self.scaled.origin_capacity_per_s * self.speed

    def predicted(self) -> dict:
        """The engine's numbers for this run's traffic (`scaled`) and for the workload as written: hit rate over all
        reads, origin load at the peak (times capacity), and the share of turns the origin can answer."""
        return {"as_run": _prediction(self.scaled, self.option), "as_written": _prediction(self.workload, self.option)}


def min_ttl(w: Workload) -> float:
    """The shortest TTL among the families a cache would hold (all of them if none is cacheable)."""
    cached = [f.ttl_s for f in w.families if f.cacheable] or [f.ttl_s for f in w.families]
    return float(min(cached))


def _prediction(w: Workload, option: str) -> dict:
    """Hit rate (over all reads), origin load at the peak and the turns the origin can answer in the fluid limit:
    every hit, and of the misses the share the origin's capacity covers."""
    assessment, numbers = engine.assess(w, option, edge=False)
    peak = w.peak_multiple
    reads = sum(f.reads_per_s for f in w.families) * peak
    hits = sum(f.reads_per_s * peak * numbers["families"][f.name]["hit_rate"]
               for f in w.families if numbers["families"][f.name].get("cached"))
    load = engine.origin_load(w, option, peak)
    missed = reads - hits
    answered = hits + missed * min(1.0, 1.0 / load) if load > 0 else reads
    return {"hit_rate": hits / reads, "origin_load_peak": load, "turns_in_budget": answered / reads,
            "rejected_because": list(assessment.rejected_because)}


def choose(w: Workload, option: str, *, machine_reads_per_s: float, target_ttl_s: float) -> Plan:
    """The plan for ``w`` and ``option`` on a machine whose task processes send ``machine_reads_per_s``: the speed
    that makes the shortest TTL last ``target_ttl_s``, the scale that keeps the peak under `MACHINE_SHARE` of
    the machine."""
    if any(f.trace is not None for f in w.families):
        raise WorkloadError("a rehearsal draws keys from a Zipf popularity; give the families keys and zipf_alpha, "
                            "not a trace")
    if not (machine_reads_per_s > 0 and target_ttl_s > 0):
        raise WorkloadError(f"machine_reads_per_s={machine_reads_per_s} and target_ttl_s={target_ttl_s} must be "
                            "positive")
    speed = max(1.0, min_ttl(w) / target_ttl_s)
    if min_ttl(w) / speed < MIN_WINDOW_S:
        raise WorkloadError(f"the shortest TTL as run would be {min_ttl(w) / speed:g} s, and the peak is measured over "
                            f"one TTL: give a TTL (or --ttl-s) of at least {MIN_WINDOW_S:g} s")
    peak = sum(f.reads_per_s for f in w.families) * w.peak_multiple * speed
    scale = min(1.0, MACHINE_SHARE * machine_reads_per_s / peak)
    if not math.isfinite(scale) or scale <= 0:
        raise WorkloadError(f"the workload offers {peak:.3g} reads/s at its peak: nothing to rehearse")
    return Plan(w, option, scale, speed, machine_reads_per_s)
