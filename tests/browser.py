"""Open the built HTML book in headless Chromium (Debian's) and report what a reader would see.

Used by ``tests/test_browser.py``. Pages are served over HTTP on loopback, as a static host would
serve them. Chromium runs with its background networking off, so any request that leaves the
machine (a CDN) fails, which is exactly what the test must catch.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Messages from the theme that are not defects of the book, each with the reason it is harmless.
KNOWN_NOISE: tuple[str, ...] = (
    # sphinx-book-theme 1.3 puts sphinx-thebe's config script on each page twice; the second
    # `const` declaration throws, and nothing uses thebe (the book has no live-code buttons).
    "Identifier 'THEBE_JS_URL' has already been declared",
    # pydata-sphinx-theme logs this on a first visit, before a light/dark choice is stored.
    "Got invalid theme mode",
    # Reported with its URL by the response listener instead (and the favicon is not a page's).
    "Failed to load resource",
)


@dataclass
class PageReport:
    path: str
    errors: list[str] = field(default_factory=list)
    charts: int = 0
    rendered: int = 0
    external_requests: list[str] = field(default_factory=list)


@contextmanager
def serve(root: Path):
    """Serve ``root`` on a free loopback port for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("chromium is not installed: run `sudo apt-get install -y chromium` (or `make setup`)")
    return path


def visit_all(html_root: Path, screenshots: Path) -> list[PageReport]:
    """Open every page, wait for its charts, and record errors, charts and outside requests."""
    from playwright.sync_api import sync_playwright

    screenshots.mkdir(parents=True, exist_ok=True)
    pages = sorted(p.relative_to(html_root).as_posix() for p in html_root.rglob("*.html")
                   if "_static" not in p.parts and "_sources" not in p.parts)
    reports = []
    with serve(html_root) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            for path in pages:
                report = PageReport(path)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("pageerror", lambda exc, r=report: r.errors.append(f"pageerror: {exc}")
                        if not any(n in str(exc) for n in KNOWN_NOISE) else None)
                page.on("response", lambda resp, r=report: r.errors.append(f"HTTP {resp.status}: {resp.url}")
                        if resp.status >= 400 and not resp.url.endswith("/favicon.ico") else None)
                page.on("console", lambda msg, r=report: r.errors.append(f"console: {msg.text}")
                        if msg.type == "error" and not any(n in msg.text for n in KNOWN_NOISE) else None)
                page.on("request", lambda req, r=report: r.external_requests.append(req.url)
                        if not req.url.startswith((base, "data:", "blob:", "about:")) else None)
                page.goto(f"{base}/{path}", wait_until="load")
                report.charts = page.locator(".cachebook-chart").count()
                if report.charts:
                    try:
                        page.wait_for_function(
                            "() => [...document.querySelectorAll('.cachebook-chart')]"
                            ".every(d => d.querySelector('canvas, svg'))", timeout=15_000)
                    except Exception:
                        pass
                report.rendered = page.locator(".cachebook-chart:has(canvas), .cachebook-chart:has(svg)").count()
                page.screenshot(path=str(screenshots / (path.replace("/", "__") + ".png")), full_page=True)
                page.close()
                reports.append(report)
        finally:
            browser.close()
    return reports


def slider_responses(html_root: Path, path: str) -> list[bool]:
    """For each chart on ``path`` with a slider: whether the drawing changed after moving the slider to its end."""
    from playwright.sync_api import sync_playwright

    picture = ("(d) => { const c = d.querySelector('canvas'); if (c) return c.toDataURL();"
               " const s = d.querySelector('svg'); return s ? s.outerHTML : ''; }")
    changed = []
    with serve(html_root) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/{path}", wait_until="load")
            page.wait_for_function("() => [...document.querySelectorAll('.cachebook-chart')]"
                                   ".every(d => d.querySelector('canvas, svg'))", timeout=15_000)
            for chart in page.locator(".cachebook-chart:has(input[type=range])").all():
                before = chart.evaluate(picture)
                chart.locator("input[type=range]").evaluate(
                    "(el) => { el.value = el.max; el.dispatchEvent(new Event('input', {bubbles: true})); }")
                page.wait_for_timeout(500)
                changed.append(chart.evaluate(picture) != before)
        finally:
            browser.close()
    return changed
