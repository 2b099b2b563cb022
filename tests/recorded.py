"""Recorded results: one real run of a chapter's experiments, stored, so its contract runs in every `make test`.

The chapters whose experiments need minutes of failovers and partitions (redis, memcached, valkey, network)
keep two fixtures: ``live`` re-runs the experiments (small) and is left to `make soak` (`chapter_run`), and
``results`` loads a run of ``live`` recorded in ``tests/recorded/<chapter>.json``. The contract (every finding
holds and can fail, every verdict follows its rule) runs on the recorded set in every `make test`.

The load builds the chapter's results container, which checks every declared table against its probe's
declaration (`experiments.results`): when a probe's columns change, the recording is refused until it is made
again from a live run::

    _build/venv/bin/python tests/recorded.py network     # or redis, memcached, valkey
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
RECORDED = HERE / "recorded"
CHAPTERS = ("redis", "memcached", "valkey", "network")


def _plain(value):
    """``value`` with numpy scalars and arrays as Python numbers and lists (JSON's types)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _encode(value) -> dict:
    if isinstance(value, pd.DataFrame):
        return {"frame": {"columns": list(value.columns), "dtypes": {c: str(t) for c, t in value.dtypes.items()},
                          "rows": _plain(value.to_dict("records"))}}
    if isinstance(value, np.ndarray):
        return {"array": value.tolist()}
    if isinstance(value, dict):
        return {"record": _plain(value)}
    return {"value": _plain(value)}


def _decode(stored: dict):
    (kind, data), = stored.items()
    if kind == "frame":
        frame = pd.DataFrame(data["rows"], columns=data["columns"])
        return frame.astype({c: t for c, t in data["dtypes"].items() if t != "object"})
    if kind == "array":
        return np.asarray(data, dtype=float)
    return data


def save(chapter: str, results) -> Path:
    """Write a chapter's results container (every field) to ``tests/recorded/<chapter>.json``."""
    RECORDED.mkdir(exist_ok=True)
    path = RECORDED / f"{chapter}.json"
    fields = {f.name: _encode(getattr(results, f.name)) for f in dataclasses.fields(results)}
    path.write_text(json.dumps(fields, indent=1) + "\n")
    return path


def load(chapter: str, container: type):
    """The recorded results of ``chapter`` as its container (``container``), checked against the declarations."""
    path = RECORDED / f"{chapter}.json"
    stored = json.loads(path.read_text())
    names = {f.name for f in dataclasses.fields(container)}
    if set(stored) != names:
        raise AssertionError(f"{path.name} records {sorted(set(stored) ^ names)} unlike {container.__name__}: "
                             f"record it again (python tests/recorded.py {chapter})")
    return container(**{name: _decode(value) for name, value in stored.items()})


def fixtures(chapter: str, container: type, live_results):
    """A test module's two module-scoped fixtures: ``live`` (``live_results()``, real servers: `chapter_run`) and
    ``results`` (the recorded run). Use as ``live, results = recorded.fixtures("redis", RedisResults, live_results)``."""
    import pytest

    @pytest.fixture(scope="module")
    def live():
        return live_results()

    @pytest.fixture(scope="module")
    def results():
        return load(chapter, container)

    return live, results


def main(argv: list[str]) -> None:
    """Record the chapters named in ``argv`` from their live fixtures (real servers, the network lab)."""
    sys.path.insert(0, str(HERE))
    for chapter in argv or CHAPTERS:
        if chapter not in CHAPTERS:
            raise SystemExit(f"no recorded results for {chapter!r}: one of {', '.join(CHAPTERS)}")
        module = importlib.import_module(f"test_{chapter}")
        print(f"{chapter}: running its experiments ...", flush=True)
        print(f"{chapter}: wrote {save(chapter, module.live_results())}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
