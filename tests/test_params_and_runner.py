"""Bad parameters fail with one line: in the package, and through papermill in a real chapter."""

from __future__ import annotations

import subprocess
import sys

import pytest

from experiments import params
from experiments.bookkit.runner import main, parse_value
from experiments.caches.origin import document
from experiments.errors import ParameterError
from experiments.paths import ROOT


def test_unknown_profile():
    with pytest.raises(ParameterError, match="profile='fast' is not one of 'quick', 'full'"):
        params.profile("fast")


@pytest.mark.parametrize("value", [0, -1, 2.5, "10", True])
def test_sizes_must_be_positive_integers(value):
    with pytest.raises(ParameterError, match="must be a positive integer"):
        params.check(profile_name="quick", seed_value=1, sizes={"keys": value})


@pytest.mark.parametrize("value", [-1, 1.5, "7", None])
def test_seed_must_be_a_non_negative_integer(value):
    with pytest.raises(ParameterError, match="seed="):
        params.seed(value)


@pytest.mark.parametrize("size", [0, -100])
def test_documents_need_a_positive_size(size):
    with pytest.raises(ParameterError, match="size_bytes"):
        document("product", "B1", size)


def test_profiles_scale_work():
    quick, full = params.profile("quick"), params.profile("full")
    for name in ("repetitions", "origin_calls", "scale", "stream_scale", "large_items_scale", "sweep_repeats",
                 "grid_refine"):
        assert getattr(full, name) > getattr(quick, name), name
    assert full.documented_defaults and not quick.documented_defaults


def test_what_a_profile_means_is_decided_in_params_only():
    """No chapter notebook or module branches on a profile's name: every setting lives in `params.PROFILES`."""
    import re

    from experiments.paths import ROOT

    places = [*(ROOT / "book").glob("*.ipynb"), *(ROOT / "experiments" / "chapters").glob("*.py")]
    branching = re.compile(r"""(profile|run\.name|\.name)\s*[!=]=\s*\\?["'](quick|full)""")
    assert not [p.name for p in places if branching.search(p.read_text())]


def test_parameter_values_are_read_like_papermill():
    assert parse_value("7") == 7 and parse_value("full") == "full" and parse_value("'x'") == "x"


def test_runner_rejects_an_undeclared_parameter(capsys):
    assert main(["execute", "economics", "-p", "profle", "full"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: no selected chapter declares parameter(s) profle; "
                   "see each chapter's 'parameters' cell")


def test_runner_rejects_an_unknown_chapter(capsys):
    assert main(["execute", "no-such-chapter"]) == 2
    assert "no chapter 'no-such-chapter'" in capsys.readouterr().err


def test_runner_accepts_one_or_two_jobs(capsys):
    assert main(["execute", "economics", "--jobs", "3"]) == 2
    assert capsys.readouterr().err.strip() == "error: --jobs 3: use 1, or 2 on this 2-core machine"


def test_chapters_that_read_results_are_in_the_book():
    from experiments.bookkit.runner import LAST, chapters

    assert LAST <= set(chapters())  # the runner starts them after every other chapter has finished


def test_runner_checks_the_shared_parameters_once(capsys):
    assert main(["execute", "economics", "dax", "-p", "profile", "fast"]) == 2
    assert capsys.readouterr().err.strip() == "error: profile='fast' is not one of 'quick', 'full'"
    assert main(["execute", "economics", "-p", "seed", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "error: seed=-1 must be a non-negative integer"


def test_bad_profile_through_papermill_names_chapter_cell_and_problem(tmp_path):
    import nbformat

    executed = tmp_path / "economics.ipynb"
    result = subprocess.run([sys.executable, "-m", "experiments.bookkit", "_execute-one", "book/economics.ipynb",
                             str(executed), '{"profile": "fast"}'], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: book/economics.ipynb failed in cell")
    assert "ParameterError: profile='fast' is not one of 'quick', 'full'" in lines[0]
    # in the notebook itself the error is that one line too, not a traceback
    errors = [o for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert [e.traceback for e in errors] == [["ParameterError: profile='fast' is not one of 'quick', 'full'"]]
    # and the page the runner renders from it says the chapter stopped, with that line, and shows no traceback
    from experiments.bookkit.aftermath import mark_crashed

    mark_crashed(executed, lines[0].removeprefix("error: "))
    marked = nbformat.read(executed, as_version=4)
    assert marked.cells[1].cell_type == "markdown" and "stopped before its end" in marked.cells[1].source
    assert "profile='fast'" in marked.cells[1].source
    outputs = [o for c in marked.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("ParameterError: profile='fast'" in o.get("text", "") for o in outputs)


def test_progress_names_chapter_k_of_n_and_what_is_running(capsys, monkeypatch):
    from pathlib import Path

    from experiments.bookkit.runner import Progress

    progress = Progress(3)
    monkeypatch.setattr(Progress, "HEARTBEAT_S", 0.0)
    progress.started(Path("book/redis.ipynb"), {})
    progress.started(Path("book/dax.ipynb"), {"profile": "quick"})
    progress.tick()
    progress.finished(Path("book/redis.ipynb"))
    lines = capsys.readouterr().out.strip().splitlines()
    assert "chapter 1 of 3: book/redis.ipynb" in lines[0]
    assert "chapter 2 of 3: book/dax.ipynb with {'profile': 'quick'}" in lines[1]
    assert "0 of 3 done; running: redis (0 s), dax (0 s)" in lines[2]
    assert "done redis in 0 s (1 of 3 done)" in lines[3] and lines[3].startswith("[")
