"""Single figures from the seed that models use (``data/seed_figures.csv``), each with its source."""

from __future__ import annotations

import csv
from functools import lru_cache

from experiments.paths import DATA


@lru_cache(maxsize=1)
def _figures() -> dict[str, float]:
    with open(DATA / "seed_figures.csv", newline="") as handle:
        return {row["name"]: float(row["value"]) for row in csv.DictReader(handle)}


def figure(name: str) -> float:
    """The seed's value for ``name`` (a KeyError names a figure that is not in the file)."""
    return _figures()[name]
