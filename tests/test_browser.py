"""The site as a person sees it: Debian's chromium (headless) against `peaktrade site serve`-style HTTP.

Playwright drives the system chromium at /usr/bin/chromium (no browser download). Skipped where chromium is not
installed; `.ci/run` installs it.
"""

from __future__ import annotations

import shutil
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from peaktrade.site.serve import _Handler
from tests.conftest import run_cli
from tests.sitefixture import FIXED_EPOCH, make_workspace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_live_track_in_headless_chromium(workspace: Path) -> None:
    from playwright.sync_api import sync_playwright

    make_workspace(workspace)
    assert run_cli("site", "build", cwd=workspace, env={"SOURCE_DATE_EPOCH": FIXED_EPOCH}).returncode == 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(workspace / "site")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    errors: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "index.html")
            tile = page.locator("#snapshot-tile")
            assert "session_20250101_120000_shadow_bbbb02" in tile.inner_text()
            assert "RUN" in tile.inner_text()
            rows = page.locator("table").first.locator("tbody tr")
            assert rows.count() == 3
            first_link = rows.first.locator("a")
            assert first_link.get_attribute("title") == "session_20250101_120000_shadow_bbbb02"
            page.screenshot(path=str(workspace / "live-track.png"), full_page=True)
            tile.get_by_role("link", name="run page").click()
            page.wait_for_load_state()
            assert page.url.endswith("runs/20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002.html")
            assert page.locator("svg.chart").count() == 3
            assert "Execution timeline" in page.content()
            page.screenshot(path=str(workspace / "run.png"), full_page=True)
            page.goto(base + "sessions/index.html")
            page.fill("#live-search", "rsi")
            page.wait_for_function("document.querySelectorAll('#search-results tr').length == 1")
            assert "session_20250101_060000_shadow_cccc03" in page.inner_text("#search-results")
            browser.close()
    finally:
        server.shutdown()
    assert errors == []
    assert (workspace / "live-track.png").stat().st_size > 10_000
