"""Verdict rules: how a ledger row compares what the note claims with what the book measured.

A verdict is never typed. A rule takes the note's value and ours and yields ``holds``, ``partly`` or
``fails`` — or ``unverifiable``, with the reason, when nothing on this machine can measure the claim.
Each rule states itself for the ledger (`Rule.text`) and can be applied to another measurement
(`Rule.at`): the chapter tests move each measured value across its threshold (`Rule.probes`) and watch
the verdict change, so a row whose verdict could not change is caught.

The kinds:

* `at_most` — the note bounds a quantity from above ("< 2 ms"): holds if ours is within the bound,
  partly if within ``partly`` times it, fails beyond;
* `at_least` — the note bounds it from below ("saves 118 ms"): the mirror image;
* `close_to` — the note gives a value ("50 of 60 tasks"): holds within a relative ``tolerance``,
  partly within ``partly``, fails beyond;
* `parts` — the note states several things at once: each part is a check on the numbers; holds if
  every part does, fails if none does, partly otherwise;
* `depends` — the verdict rests on an input the note leaves open and the book had to choose (a queue
  discipline, a read period): each case is a rule under one value of that input; the row's verdict is the
  cases' common verdict if they agree and ``depends`` (with the input named) if they do not;
* `unmeasurable` — no experiment or model here can decide it; the reason is the row's answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from experiments.errors import ParameterError

VERDICTS = ("holds", "partly", "fails", "depends", "unverifiable")
KINDS = ("at_most", "at_least", "close_to", "parts", "depends", "unmeasurable")


def _num(x: float) -> str:
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"


@dataclass(frozen=True)
class Rule:
    """One comparison of the note's value with ours; `verdict` is the rule applied to ``measured``."""

    kind: str
    claimed: float | None = None
    measured: float | dict[str, bool] | None = None
    unit: str = ""
    tolerance: float = 0.0
    partly: float | None = None
    reason: str = ""
    cases: tuple[tuple[str, Rule], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"rule kind={self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind == "unmeasurable" and len(self.reason.strip()) < 20:
            raise ParameterError("an unmeasurable claim needs its reason (at least a sentence)")
        if self.kind == "depends" and (len(self.cases) < 2 or len(self.reason.strip()) < 10):
            raise ParameterError("a depends rule names the input it depends on and gives at least two cases")
        if self.kind == "parts" and not isinstance(self.measured, dict):
            raise ParameterError("a parts rule needs its checks as {name: bool}")
        if self.kind in ("at_most", "at_least", "close_to"):
            if not all(isinstance(v, int | float) and math.isfinite(v) for v in (self.claimed, self.measured)):
                raise ParameterError(f"{self.kind} needs finite numbers, got claimed={self.claimed!r} "
                                     f"measured={self.measured!r}")

    @property
    def verdict(self) -> str:
        """``holds``, ``partly``, ``fails`` or ``unverifiable`` for the measurement the rule was made with."""
        return self.at(self.measured)

    def at(self, measured) -> str:
        """The verdict this rule gives ``measured`` (a number, or ``{part: bool}`` for `parts`)."""
        c, p = self.claimed, self.partly
        if self.kind == "unmeasurable":
            return "unverifiable"
        if self.kind == "depends":
            verdicts = {case.at(measured[label]) for label, case in self.cases}
            return verdicts.pop() if len(verdicts) == 1 else "depends"
        if self.kind == "parts":
            held = [bool(v) for v in measured.values()]
            return "holds" if all(held) else "fails" if not any(held) else "partly"
        if self.kind == "at_most":
            return "holds" if measured <= c else "partly" if p is not None and measured <= c * p else "fails"
        if self.kind == "at_least":
            return "holds" if measured >= c else "partly" if p is not None and measured >= c / p else "fails"
        gap = abs(measured - c)
        scale = abs(c) if c else 1.0
        return "holds" if gap <= self.tolerance * scale else "partly" if p is not None and gap <= p * scale else "fails"

    def probes(self) -> list:
        """Measurements on either side of the rule's thresholds (one per verdict it can give)."""
        c = self.claimed
        if self.kind == "unmeasurable":
            return []
        if self.kind == "depends":
            each = [(label, case.probes()) for label, case in self.cases]
            agree = [{label: probes[i % len(probes)] for label, probes in each}
                     for i in range(max(len(probes) for _, probes in each))]
            first, rest = each[0], each[1:]
            apart = [{first[0]: first[1][0], **{label: probes[-1] for label, probes in rest}}]
            return agree + apart
        if self.kind == "parts":
            names = list(self.measured)
            return [dict.fromkeys(names, True), dict.fromkeys(names, False)]
        scale = abs(c) if c else 1.0
        if self.kind == "at_most":
            beyond = (c * self.partly if self.partly else c) + 10 * scale
            return [c - 0.5 * scale, beyond] + ([c + 0.5 * (self.partly - 1) * scale] if self.partly else [])
        if self.kind == "at_least":
            below = (c / self.partly if self.partly else c) - 10 * scale
            return [c + 0.5 * scale, min(below, -10 * scale)] + ([c * (1 + 1 / self.partly) / 2] if self.partly else [])
        outer = (self.partly or self.tolerance) * scale
        return [c, c + outer + scale] + ([c + (self.tolerance + self.partly) / 2 * scale] if self.partly else [])

    def text(self) -> str:
        """The rule as the ledger shows it."""
        u = f" {self.unit}" if self.unit else ""
        c = None if self.claimed is None else _num(self.claimed)
        if self.kind == "unmeasurable":
            return f"unverifiable: {self.reason}"
        if self.kind == "depends":
            each = "; ".join(f"{label}: {case.text()} → {case.verdict}" for label, case in self.cases)
            verdict = self.verdict
            ending = "the cases disagree → depends" if verdict == "depends" else f"every case → {verdict}"
            return f"depends on {self.reason}: {each}; {ending}"
        if self.kind == "parts":
            marks = "; ".join(f"{'✓' if ok else '✗'} {name}" for name, ok in self.measured.items())
            return f"all parts hold → holds, some → partly, none → fails: {marks}"
        m = _num(self.measured)
        if self.kind == "at_most":
            partly = f", ≤ {_num(self.claimed * self.partly)}{u} → partly" if self.partly else ""
            return f"ours {m}{u}: ≤ {c}{u} → holds{partly}, else fails"
        if self.kind == "at_least":
            partly = f", ≥ {_num(self.claimed / self.partly)}{u} → partly" if self.partly else ""
            return f"ours {m}{u}: ≥ {c}{u} → holds{partly}, else fails"
        partly = f", within {100 * self.partly:.0f} % → partly" if self.partly else ""
        return f"ours {m}{u}: within {100 * self.tolerance:.0f} % of {c}{u} → holds{partly}, else fails"

    def as_dict(self) -> dict:
        """The rule's fields as the ledger's files keep them (`from_dict` reads them back)."""
        return {"kind": self.kind, "claimed": self.claimed, "measured": self.measured, "unit": self.unit,
                "tolerance": self.tolerance, "partly": self.partly, "reason": self.reason,
                "cases": [[label, case.as_dict()] for label, case in self.cases]}


def at_most(claimed: float, measured: float, *, unit: str = "", partly: float | None = None) -> Rule:
    """The note bounds the quantity from above; ``partly``: the factor over the bound that still holds in part."""
    return Rule("at_most", float(claimed), float(measured), unit, partly=partly)


def at_least(claimed: float, measured: float, *, unit: str = "", partly: float | None = None) -> Rule:
    """The note bounds the quantity from below; ``partly``: the factor under the bound that still holds in part."""
    return Rule("at_least", float(claimed), float(measured), unit, partly=partly)


def close_to(claimed: float, measured: float, *, tolerance: float, unit: str = "", partly: float | None = None) -> Rule:
    """The note gives a value: holds within ``tolerance`` (relative), partly within ``partly``."""
    return Rule("close_to", float(claimed), float(measured), unit, tolerance=tolerance, partly=partly)


def parts(checks: dict[str, bool]) -> Rule:
    """The note states several things at once; each entry is one of them, checked on the numbers."""
    return Rule("parts", measured={name: bool(ok) for name, ok in checks.items()})


def depends_on(input_: str, cases: dict[str, Rule]) -> Rule:
    """The verdict rests on ``input_``, which the note leaves open and the book chose: ``cases`` maps each value
    of it (the note's reading, the book's model) to the rule under that value. Not for a rule the note's own
    words decide: then judge it under the note's condition alone."""
    if any(case.kind in ("depends", "unmeasurable") for case in cases.values()):
        raise ParameterError("each case of a depends rule is a rule on numbers")
    return Rule("depends", measured={label: case.measured for label, case in cases.items()}, reason=input_,
                cases=tuple(cases.items()))


def unmeasurable(reason: str) -> Rule:
    """Nothing here can decide the claim; ``reason`` says why (and what was done instead)."""
    return Rule("unmeasurable", reason=reason)


def from_dict(data: dict) -> Rule:
    """A rule read back from the ledger's files."""
    cases = tuple((label, from_dict(case)) for label, case in data.get("cases", ()))
    return Rule(data["kind"], data["claimed"], data["measured"], data["unit"], data["tolerance"], data["partly"],
                data["reason"], cases)
