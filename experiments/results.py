"""Declared results: what a probe returns is stated once, in the probe's module, and checked where it is made.

A probe's table is a `Table`: its columns, in order, named in the probe's module beside the function that
fills it (``partition.TIMEOUTS``), and the frame is built through it (`Table.frame`), which refuses a row with
a column more or less than declared. A probe's record (one dict of numbers) is declared the same way and
built with `Table.record`.

A chapter's results container (`Results`) names the declaration each field holds (`declared`) and checks
every such field when it is made, so a chapter, its notebook and its test fixture read exactly the columns the
probe makes: a column a probe does not declare is not in the frame, and reading it fails in the chapter's
contract tests, which `make test` runs on a recorded set of results for every chapter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from experiments.errors import BookError

if TYPE_CHECKING:
    import pandas as pd


class UndeclaredResult(BookError):
    """A probe made, or a container was given, a table whose columns differ from the declaration."""


@dataclass(frozen=True)
class Table:
    """The columns one probe function returns (a frame's, or a record's keys), in order."""

    name: str
    columns: tuple[str, ...]

    def _mismatch(self, keys: Iterable[str]) -> str:
        keys = list(keys)
        extra = [k for k in keys if k not in self.columns]
        missing = [c for c in self.columns if c not in keys]
        parts = ([f"undeclared {extra}"] if extra else []) + ([f"missing {missing}"] if missing else [])
        return "; ".join(parts)

    def _check(self, keys: Iterable[str], what: str) -> None:
        problem = self._mismatch(keys)
        if problem:
            raise UndeclaredResult(f"{self.name}: {what} does not match its declared columns ({problem}); "
                                   f"declare the change in the probe's `{self.name}` table")

    def frame(self, rows: Iterable[Mapping]) -> "pd.DataFrame":
        """The probe's table from its rows (dicts), in the declared column order; a row with a column more or
        less than declared is refused."""
        import pandas as pd  # here, not at import: a probe's worker processes need no pandas

        rows = list(rows)
        for row in rows:
            self._check(row.keys(), "a row")
        return pd.DataFrame(rows, columns=list(self.columns))

    def record(self, values: Mapping) -> dict:
        """The probe's record (one dict), checked against the declared keys; a plain dict, in declared order."""
        self._check(values.keys(), "the record")
        return {c: values[c] for c in self.columns}

    def check(self, value) -> None:
        """Refuse a frame or record whose columns are not exactly the declared ones (any order)."""
        is_frame = hasattr(value, "columns")
        self._check(value.columns if is_frame else value.keys(), "the frame" if is_frame else "the record")


def declared(table: Table):
    """A results-container field that holds ``table``'s frame or record (checked by `Results`)."""
    return dataclasses.field(metadata={"table": table})


class Results:
    """Base of a chapter's results container (a dataclass): every field made with `declared` is checked
    against its table when the container is made."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            table = f.metadata.get("table")
            if table is not None:
                table.check(getattr(self, f.name))


def declarations(container: type) -> dict[str, Table]:
    """Field name → declared table, for a results container class."""
    return {f.name: f.metadata["table"] for f in dataclasses.fields(container) if "table" in f.metadata}

