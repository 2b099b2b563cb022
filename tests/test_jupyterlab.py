"""A committed chapter opened in JupyterLab shows its charts, with no network.

JupyterLab renders the book's chart outputs (Vega-Lite 5 mime type) with the Vega it bundles. The
lab server runs on a copy of the chapter in a temporary folder, so nothing is written into book/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import browser
import nbformat

from experiments import charts
from experiments.lab.spawner import free_port
from experiments.paths import ROOT

CHAPTER = ROOT / "book" / "economics.ipynb"


def chart_outputs(path: Path) -> int:
    notebook = nbformat.read(path, as_version=4)
    return sum(charts.MIME in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


def test_charts_render_in_jupyterlab(tmp_path):
    from playwright.sync_api import sync_playwright

    (tmp_path / "root").mkdir()
    shutil.copy2(CHAPTER, tmp_path / "root" / CHAPTER.name)
    expected = chart_outputs(CHAPTER)
    assert expected >= 2
    # Render every cell at once (JupyterLab otherwise renders only what is scrolled into view).
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port = free_port()
    lab = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter-lab"), "--allow-root", "--no-browser", f"--port={port}",
         "--IdentityProvider.token=book", f"--ServerApp.root_dir={tmp_path / 'root'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings")},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token=book", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                assert time.monotonic() < deadline, "JupyterLab did not start"
                time.sleep(0.5)
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=browser.chromium_path(), args=browser.CHROMIUM_ARGS)
            try:
                page = chromium.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/lab/tree/{CHAPTER.name}?token=book")
                page.wait_for_function(
                    f"() => document.querySelectorAll('.vega-embed:has(canvas)').length >= {expected}",
                    timeout=60_000)
                assert page.locator(".vega-embed").count() == expected
            finally:
                chromium.close()
    finally:
        lab.terminate()
        lab.wait(timeout=20)
