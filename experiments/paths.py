"""Where the book's inputs and generated results live, found from the package's own location.

The package is installed editable from the repository, so the repository root is two levels above
this file whatever the current directory is (a chapter may run from ``book/``, from the executed
mirror under ``_build/executed/`` or from a test's temporary directory).
``CACHE_BOOK_RESULTS`` overrides the results folder (tests point it at a temporary directory).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
BUILD = ROOT / "_build"


def results_dir() -> Path:
    """The folder where chapters record ledger rows and headline numbers (created on demand)."""
    path = Path(os.environ.get("CACHE_BOOK_RESULTS", BUILD / "results"))
    path.mkdir(parents=True, exist_ok=True)
    return path
