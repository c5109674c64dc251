"""The site as a person sees it: Debian's chromium (headless) against `peaktrade site serve`-style HTTP.

Playwright drives the system chromium at /usr/bin/chromium (no browser download). Skipped where chromium is not
installed; `.ci/run` installs it. Every request that does not go to the local server is aborted and recorded: the
site must need no network (no CDN). Screenshots of every page kind go to $PEAKTRADE_SCREENSHOTS, else
tests/artifacts/screenshots/ (git-ignored), for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from peaktrade import registry
from peaktrade.site.serve import _Handler
from tests.conftest import T0, run_cli
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
BUILT = datetime.fromtimestamp(int(FIXED_EPOCH), UTC)
RUNNING_RUN = "20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002"
TWINS = ("session_20250101_110000_shadow_1a2b3c", "session_20250101_110000_shadow_9f8e7d")


def _shots() -> Path:
    out = Path(os.environ.get("PEAKTRADE_SCREENSHOTS") or Path(__file__).parent / "artifacts" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _add_twins(root: Path) -> None:
    """Two sessions started in the same second (their ids differ only at the end), both finished."""
    for sid in TWINS:
        rec = registry.new_record(
            session_id=sid,
            run_id=None,
            mode="shadow",
            env_name="fixture",
            symbol="SOL/EUR",
            strategy="momentum",
            started_at=T0 + timedelta(hours=11),
        )
        rec.update(status="completed", finished_at=(T0 + timedelta(hours=11, minutes=5)).isoformat())
        rec.update(metrics={"realized_pnl": 1.0, "max_drawdown": 0.002, "num_orders": 1})
        registry.write_record(root / "reports/experiments/live_sessions", rec)


@contextmanager
def _browser(site: Path, *, clock: datetime | None) -> Iterator[tuple[object, str, list[str], list[str]]]:
    """A page on a local server for `site`; yields (page, base url, console errors, requests that left)."""
    from playwright.sync_api import sync_playwright

    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/"
    errors: list[str] = []
    escaped: list[str] = []

    def guard(route) -> None:
        url = route.request.url
        if url.startswith(base) or url.startswith("data:"):
            route.continue_()
        else:
            escaped.append(url)
            route.abort()

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            if clock is not None:
                page.clock.set_fixed_time(clock)
            page.route("**/*", guard)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page, base, errors, escaped
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def _no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"{page.url} needs horizontal scrolling at 1280 px ({width} px wide)"


def test_live_track_in_headless_chromium(workspace: Path) -> None:
    make_workspace(workspace)
    _add_twins(workspace)
    assert run_cli("site", "build", cwd=workspace, env={"SOURCE_DATE_EPOCH": FIXED_EPOCH}).returncode == 0
    shots = _shots()
    with _browser(workspace / "site", clock=BUILT + timedelta(seconds=40)) as (page, base, errors, escaped):
        page.goto(base + "index.html")
        assert page.locator("#stale-banner").is_hidden()  # 40 s after the build: fresh
        assert "site built 40 s ago" in page.inner_text("#freshness")
        # the newest session is running: its numbers come from its run
        tile = page.locator("#snapshot-tile")
        text = tile.inner_text()
        assert "RUNNING" in text and "heartbeat 30 s ago" in text
        assert page.inner_text("#tile-equity") == "10,295.00 EUR"
        assert page.inner_text("#tile-unrealized") == "+295.00 EUR"
        assert page.inner_text("#tile-realized") == "+0.00 EUR"
        assert page.inner_text("#tile-steps") == "60"
        assert page.inner_text("#tile-drawdown") == "0.00% (0.00%)"
        # two sessions started in the same second read differently in the table, full id on hover
        table = page.locator("table.sessions")
        shown = [table.get_by_title(sid).inner_text() for sid in TWINS]
        assert shown[0] != shown[1]
        assert shown[0].endswith("110000_shadow_1a2b3c") and shown[1].endswith("110000_shadow_9f8e7d")
        rows = table.locator("tbody tr")
        assert rows.count() == 5
        running_row = rows.filter(has_text="bbbb02")
        assert "heartbeat 30 s ago" in running_row.inner_text()
        assert running_row.locator("svg.spark").count() == 1  # the equity sparkline
        page.screenshot(path=str(shots / "live-track.png"), full_page=True)
        _no_horizontal_scroll(page)

        tile.get_by_role("link", name="run page").click()
        page.wait_for_load_state()
        assert page.url.endswith(f"runs/{RUNNING_RUN}.html")
        page.wait_for_selector("#run-chart[data-rendered]")
        assert page.locator("#run-chart canvas").count() > 0
        assert page.locator("#svg-charts").is_hidden()  # the SVG charts are the no-JavaScript fallback
        # one buy fill and one blocked order of the fixture are marked on the price chart
        assert page.get_attribute("#run-chart", "data-rendered") == "2"
        marks = page.evaluate("window.PEAKTRADE_CHART.markers.map(m => m.kind + ':' + m.n)")
        assert marks == ["buy:1", "blocked:1"]
        box = page.locator("#run-chart").bounding_box()
        assert box["width"] > 1150  # full width
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + 150)
        page.wait_for_function("document.getElementById('run-chart-legend').textContent.indexOf('UTC') > 0")
        legend = page.inner_text("#run-chart-legend")
        assert "equity" in legend and "EUR" in legend and "O " in legend
        page.screenshot(path=str(shots / "run.png"), full_page=True)
        _no_horizontal_scroll(page)

        for rel, name in [
            ("runs/index.html", "runs"),
            ("sessions/index.html", "sessions"),
            ("sessions/session_20250101_120000_shadow_bbbb02.html", "session-running"),
            ("sessions/session_20250101_060000_shadow_cccc03.html", "session-failed"),
            ("health.html", "health"),
            ("alerts.html", "alerts"),
            ("api/live/status/snapshot.html", "status"),
        ]:
            page.goto(base + rel)
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            _no_horizontal_scroll(page)
        page.goto(base + "sessions/session_20250101_120000_shadow_bbbb02.html")
        assert "10,295.00 EUR" in page.inner_text("#session-summary")
        page.goto(base + "sessions/index.html")
        page.fill("#live-search", "rsi")
        page.wait_for_function("document.querySelectorAll('#search-results tr').length == 1")
        assert "session_20250101_060000_shadow_cccc03" in page.inner_text("#search-results")
    assert errors == []
    assert escaped == []  # nothing left the local server: no CDN, no fonts, no analytics
    assert (shots / "live-track.png").stat().st_size > 10_000


def test_stale_banner_when_the_build_is_old(workspace: Path) -> None:
    """A page built long ago (cron stopped) says so in a banner; without JavaScript the header names the time."""
    make_workspace(workspace)
    assert run_cli("site", "build", cwd=workspace, env={"SOURCE_DATE_EPOCH": FIXED_EPOCH}).returncode == 0
    html = (workspace / "site/index.html").read_text()
    assert "built 2025-01-01 14:00:00 UTC" in html  # the no-JavaScript header
    with _browser(workspace / "site", clock=BUILT + timedelta(hours=3)) as (page, base, errors, escaped):
        for rel in ("index.html", f"runs/{RUNNING_RUN}.html", "sessions/index.html"):
            page.goto(base + rel)
            banner = page.locator("#stale-banner")
            assert banner.is_visible()
            assert "last built 3 h ago" in banner.inner_text()
        page.screenshot(path=str(_shots() / "stale-banner.png"))
    assert errors == [] and escaped == []


def test_a_page_not_rendered_again_shows_the_health_of_the_newest_build(workspace: Path) -> None:
    """A problem the second build finds only while rendering a run page (a bad orders.jsonl line) degrades the
    site's health. A finished session's page did not change, so it is not rendered again; its header still shows
    the new health, from build-time.js."""
    make_workspace(workspace)
    epoch = {"SOURCE_DATE_EPOCH": FIXED_EPOCH}
    assert run_cli("site", "build", cwd=workspace, env=epoch).returncode == 0
    session = workspace / "site/sessions/session_20250101_060000_shadow_cccc03.html"
    before = session.read_text()
    assert "health: OK" in before
    run_dir = next(p for p in sorted((workspace / "live_runs").iterdir()) if (p / "orders.jsonl").exists())
    with open(run_dir / "orders.jsonl", "a") as fh:
        fh.write("[1, 2]\n")
    assert run_cli("site", "build", cwd=workspace, env=epoch).returncode == 0
    assert session.read_text() == before  # not rendered again: without JavaScript it says OK
    with _browser(workspace / "site", clock=BUILT + timedelta(seconds=40)) as (page, base, errors, escaped):
        for rel in ("sessions/session_20250101_060000_shadow_cccc03.html", "index.html"):
            page.goto(base + rel)
            badge = page.locator("#health-badge")
            assert badge.inner_text() == "health: DEGRADED"
            assert badge.get_attribute("class") == "badge st-degraded"
            assert "build: 1 problem(s)" in badge.get_attribute("title")
    assert errors == [] and escaped == []


def test_run_chart_from_file_url(workspace: Path) -> None:
    """Opened straight from disk (file://), the interactive chart still draws: no fetch(), no network."""
    from playwright.sync_api import sync_playwright

    make_workspace(workspace)
    assert run_cli("site", "build", cwd=workspace, env={"SOURCE_DATE_EPOCH": FIXED_EPOCH}).returncode == 0
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, "--allow-file-access-from-files"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((workspace / "site/runs" / f"{RUNNING_RUN}.html").as_uri())
        page.wait_for_selector("#run-chart[data-rendered='2']")
        browser.close()
    assert errors == []
