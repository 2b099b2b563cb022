"""experiments.models.popularity: the product traffic's one popularity, and the note's two readings of it."""

from __future__ import annotations

import json
import re

import pytest

from experiments.models import popularity
from experiments.paths import ROOT


def test_the_notes_two_readings_of_the_product_traffic_do_not_fit():
    """Calibrated on the planned 95 %, the top 100 draw 83 % of the reads, not 37.5 %; calibrated on the top 100's
    37.5 %, one shared cache hits 74 %, and the catalog sees five times the misses it was sized for."""
    table = popularity.reconciliation().set_index("reading")
    planned, top = table.loc[popularity.PLANNED], table.loc[popularity.TOP_HUNDRED]
    assert planned.alpha == pytest.approx(1.334, abs=0.01) and planned.shared_hit_pct == pytest.approx(95, abs=0.01)
    assert planned.top_100_share_pct == pytest.approx(83, abs=1) and planned.catalog_load_x == pytest.approx(1, abs=0.01)
    assert top.alpha == pytest.approx(1.0, abs=0.01) and top.top_100_share_pct == pytest.approx(37.5, abs=0.01)
    assert top.shared_hit_pct == pytest.approx(74, abs=1) and top.catalog_load_x == pytest.approx(5.2, abs=0.1)
    both = table.loc[popularity.BOTH]  # the edge: over about 12,000 products read at all, the two readings fit
    assert both.top_100_share_pct == pytest.approx(37.5, abs=0.01) and both.shared_hit_pct == pytest.approx(95, abs=0.1)
    assert 5_000 < both.products < 20_000


def test_the_popularity_is_one_object_every_chapter_imports():
    """No chapter, model or notebook calibrates the product traffic's exponent itself or types one: every
    ``alpha =`` in a notebook and every product traffic in the package comes from `popularity.product`."""
    own = []
    for path in sorted((ROOT / "experiments").rglob("*.py")):
        if path.name in ("popularity.py", "taskcache.py", "daxmodel.py"):  # the model, and the calibrators' homes
            continue
        text = path.read_text()
        own += [f"{path.name}: calibrate_alpha" for _ in re.finditer(r"\bcalibrate_alpha\(", text)]
    for notebook in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for line in "".join(cell["source"]).splitlines():
                if re.match(r"\s*alpha\s*=", line) and "popularity.product()" not in line:
                    own.append(f"{notebook.name}: {line.strip()}")
                if "taskcache.calibrate_alpha(" in line:
                    own.append(f"{notebook.name}: {line.strip()}")
    assert not own
    assert popularity.product() is popularity.product()
