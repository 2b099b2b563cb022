"""nbval really guards the decision cells: with the flags `make test` uses, a checked cell whose stored
output no longer matches fails, while unchecked cells (timings, charts) may differ.

The guard runs nbval on a small notebook written here, so that it costs one kernel start rather than
a chapter's experiments; that every chapter has checked cells with stored outputs is tested against
the committed chapters, and that the untouched chapters pass is what `make test`'s own nbval run over
`book/` shows.
"""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from experiments.paths import ROOT


def nbval(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), str(path)],
        capture_output=True, text=True, timeout=300, cwd=path.parent,
    )


def _cell(source: str, printed: str):
    cell = new_code_cell(source, execution_count=1)  # nbval only compares cells that were run
    cell.outputs = [new_output("stream", name="stdout", text=printed)]
    return cell


@pytest.mark.parametrize("chapter", sorted((ROOT / "book").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_chapter_has_checked_cells_with_reference_outputs(chapter):
    notebook = nbformat.read(chapter, as_version=4)
    checked = [c for c in notebook.cells if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source]
    assert checked and all(c.outputs for c in checked)


def test_a_tampered_checked_cell_fails_and_unchecked_cells_may_differ(tmp_path):
    findings = "findings = {'no price reached any cache': 2 + 2 == 4}\nfor k, v in findings.items():\n    print(f'{k}: {v}')"
    notebook = new_notebook(cells=[
        _cell(f"# NBVAL_CHECK_OUTPUT\n{findings}", "no price reached any cache: False\n"),  # tampered
        _cell("# NBVAL_CHECK_OUTPUT\nprint(f'object at {hex(id(object()))} in /tmp/x')", "object at 0x7f00deadbeef in /tmp/y\n"),
        _cell("# timing: shown, never compared\nprint(123.4)", "99.9\n"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "guard.ipynb"
    nbformat.write(notebook, path)
    result = nbval(path)
    assert result.returncode != 0
    assert "Cell outputs differ" in result.stdout and "no price reached any cache" in result.stdout
    assert "1 failed, 2 passed" in result.stdout  # the sanitized addresses and paths match; the timing is not compared
