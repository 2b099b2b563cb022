"""The seed's key design as data (``data/key_design.csv``), and the rule that prices are never cached.

A `KeyFamily` knows its key pattern (``product:{asin}``), TTL, what invalidates it, which origin
fills it, whether it may be cached at all, and which fields must always be read live. Everything
that writes to a cache goes through `KeyDesign.cacheable_payload`, so the rule is enforced in one
place rather than remembered by every caller.
"""

from __future__ import annotations

import csv
import string
from dataclasses import dataclass
from functools import lru_cache

from experiments.errors import UncacheableError
from experiments.paths import DATA


@dataclass(frozen=True)
class KeyFamily:
    """One family of keys of the key design."""

    name: str
    pattern: str
    ttl_s: int
    invalidated_by: str
    origin: str
    cacheable: bool
    live_fields: tuple[str, ...]

    @property
    def prefix(self) -> str:
        """The key prefix up to the first colon, included (``product:``): how `KeyDesign.family_of`
        recognises a key of this family."""
        return self.pattern.split(":", 1)[0] + ":"

    @property
    def id_fields(self) -> tuple[str, ...]:
        """The names of the pattern's placeholders, in order (``("asin",)`` for ``product:{asin}``)."""
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.pattern) if f)

    def key(self, **ids: str) -> str:
        """Build a key from its id fields, e.g. ``family.key(asin="B08X1YRSTR")``."""
        missing = set(self.id_fields) - set(ids)
        if missing:
            raise UncacheableError(f"key {self.pattern!r} needs {', '.join(sorted(missing))}")
        return self.pattern.format(**ids)


class KeyDesign:
    """All key families, looked up by name or by the prefix of a key."""

    def __init__(self, families: list[KeyFamily]) -> None:
        self.families = {f.name: f for f in families}
        self._by_prefix = {f.prefix: f for f in families}

    def __getitem__(self, name: str) -> KeyFamily:
        return self.families[name]

    def family_of(self, key: str) -> KeyFamily:
        """The family a key belongs to; a key outside the design is an error, not a silent cache entry."""
        prefix = key.split(":", 1)[0] + ":"
        try:
            return self._by_prefix[prefix]
        except KeyError:
            raise UncacheableError(
                f"key {key!r} is not in the key design (known prefixes: {', '.join(self._by_prefix)})"
            ) from None

    def cacheable_payload(self, key: str, document: dict) -> dict:
        """The part of ``document`` that may be cached under ``key``; refuses uncacheable families.

        Live fields (prices) are removed, so whatever a caller fetched, no price is ever stored.
        """
        family = self.family_of(key)
        if not family.cacheable:
            raise UncacheableError(
                f"{key!r} belongs to the {family.name!r} family, which is never cached: "
                f"it is read live from the {family.origin} on every request"
            )
        return {k: v for k, v in document.items() if k not in family.live_fields}


@lru_cache(maxsize=1)
def load() -> KeyDesign:
    """The key design of ``data/key_design.csv``."""
    with open(DATA / "key_design.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return KeyDesign([
        KeyFamily(
            name=r["family"], pattern=r["pattern"], ttl_s=int(r["ttl_s"]), invalidated_by=r["invalidated_by"],
            origin=r["origin"], cacheable=r["cacheable"] == "true",
            live_fields=tuple(f for f in r["live_fields"].split(";") if f),
        )
        for r in rows
    ])


def load_table():
    """The key design as a table, for display."""
    import pandas as pd

    return pd.read_csv(DATA / "key_design.csv").fillna("")
