"""Declared results (`experiments.results`): a probe's table refuses a column it does not declare, a chapter's
results container refuses a table unlike its declaration, and no chapter module reads a declared field by a
column its probe does not declare."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect

import pandas as pd
import pytest

from experiments.chapters import (
    dax,
    economics,
    in_process_lru,
    memcached,
    network,
    no_cache,
    read_through,
    redis,
    traffic,
    valkey,
)
from experiments.results import Results, Table, UndeclaredResult, declarations, declared

LIVE_CHAPTERS = (redis, memcached, valkey, network)
"""Chapters every table of which a probe makes: each must be declared."""
CHAPTERS = (economics, dax, in_process_lru, no_cache, read_through, traffic, *LIVE_CHAPTERS)
TABLE = Table("probe.TABLE", ("a", "b"))


def test_a_table_refuses_a_row_with_a_column_more_or_less():
    assert list(TABLE.frame([{"b": 2, "a": 1}]).columns) == ["a", "b"]
    with pytest.raises(UndeclaredResult, match=r"probe.TABLE: a row .*undeclared \['c'\]"):
        TABLE.frame([{"a": 1, "b": 2, "c": 3}])
    with pytest.raises(UndeclaredResult, match=r"missing \['b'\]"):
        TABLE.record({"a": 1})
    assert TABLE.record({"b": 2, "a": 1}) == {"a": 1, "b": 2}


@dataclasses.dataclass
class _Container(Results):
    table: pd.DataFrame = declared(TABLE)
    free: float


def test_a_container_refuses_a_table_unlike_its_declaration():
    _Container(table=TABLE.frame([{"a": 1, "b": 2}]), free=1.0)
    with pytest.raises(UndeclaredResult, match="undeclared"):
        _Container(table=pd.DataFrame({"a": [1], "b": [2], "extra": [3]}), free=1.0)


def _container(chapter) -> type:
    found = [c for _, c in inspect.getmembers(chapter, inspect.isclass)
             if issubclass(c, Results) and c is not Results and c.__module__ == chapter.__name__]
    assert len(found) == 1, chapter.__name__
    return found[0]


@pytest.mark.parametrize("chapter", LIVE_CHAPTERS, ids=lambda c: c.__name__.rsplit(".", 1)[1])
def test_every_table_or_record_a_chapter_holds_is_declared(chapter):
    container = _container(chapter)
    undeclared = [f.name for f in dataclasses.fields(container)
                  if f.type in ("pd.DataFrame", "dict") and f.name not in declarations(container)]
    assert not undeclared


def undeclared_reads(module) -> list[str]:
    """Reads in ``module``'s source of a declared field by a name that is neither a declared column nor a
    method of a frame or dict: ``r.<field>.<name>``, ``r.<field>["<name>"]`` and ``r.<field>[[...]]``."""
    tables = declarations(_container(module))
    allowed = set(dir(pd.DataFrame)) | set(dir(dict))
    found = []
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        inner, names = None, []
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            inner, names = node.value, [node.attr]
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
            inner = node.value
            keys = node.slice.elts if isinstance(node.slice, ast.List) else [node.slice]
            names = [k.value for k in keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        if inner is None or not isinstance(inner.value, ast.Name) or inner.attr not in tables:
            continue
        columns = tables[inner.attr].columns
        found += [f"{inner.attr}.{n} (line {node.lineno})" for n in names
                  if n not in columns and (isinstance(node, ast.Subscript) or n not in allowed)]
    return found


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.__name__.rsplit(".", 1)[1])
def test_no_chapter_reads_a_column_its_probe_does_not_declare(chapter):
    assert not undeclared_reads(chapter)


def test_the_read_check_sees_an_undeclared_column(tmp_path, monkeypatch):
    source = ("import dataclasses\nimport pandas as pd\nfrom experiments.results import Results, declared\n"
              "from test_results import TABLE\n\n@dataclasses.dataclass\nclass R(Results):\n"
              "    t: pd.DataFrame = declared(TABLE)\n\n"
              "def f(r):\n    return r.t.a + r.t.zz + r.t['yy'] + r.t[['a', 'xx']].sum()\n")
    (tmp_path / "fake_chapter.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("fake_chapter")
    assert sorted(read.split(" ")[0] for read in undeclared_reads(module)) == ["t.xx", "t.yy", "t.zz"]
