"""nbval really guards the decision cells: a tampered stored output fails.

The run re-executes a committed chapter in a temporary folder against real servers. That the
untouched chapters pass is what `make test`'s own nbval run over `book/` shows.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import nbformat
import pytest

from experiments.paths import ROOT

CHAPTER = ROOT / "book" / "economics.ipynb"


def nbval(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), str(path)],
        capture_output=True, text=True, timeout=300, cwd=path.parent,
    )


@pytest.fixture
def chapter_copy(tmp_path):
    target = tmp_path / CHAPTER.name
    shutil.copy2(CHAPTER, target)
    return target


def test_checked_cells_have_reference_outputs():
    notebook = nbformat.read(CHAPTER, as_version=4)
    checked = [c for c in notebook.cells if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source]
    assert len(checked) >= 2 and all(c.outputs for c in checked)


def test_tampered_decision_cell_fails(chapter_copy):
    notebook = nbformat.read(chapter_copy, as_version=4)
    cell = next(c for c in notebook.cells if c.cell_type == "code" and "findings = economics.findings" in c.source)
    stream = next(o for o in cell.outputs if o.output_type == "stream")
    assert "no price reached any cache: True" in stream.text
    stream.text = stream.text.replace("no price reached any cache: True", "no price reached any cache: False")
    nbformat.write(notebook, chapter_copy)
    result = nbval(chapter_copy)
    assert result.returncode != 0
    assert "Cell outputs differ" in result.stdout and "findings = economics.findings" in result.stdout
    assert "1 failed" in result.stdout  # only the tampered cell
