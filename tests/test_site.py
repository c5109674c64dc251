from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from peaktrade import config
from peaktrade import site as site_mod
from peaktrade.site.serve import _Handler
from tests.conftest import ROOT, run_cli
from tests.sitefixture import FIXED_EPOCH, XSS, make_workspace

GOLDEN = Path(__file__).parent / "golden" / "site"
REGEN = os.environ.get("PEAKTRADE_REGEN_GOLDEN") == "1"
NOW = datetime.fromtimestamp(int(FIXED_EPOCH), UTC)


def build(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("site", "build", *args, cwd=workspace, env={"SOURCE_DATE_EPOCH": FIXED_EPOCH})


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_golden_site_tree(workspace: Path) -> None:
    """Regenerate with: PEAKTRADE_REGEN_GOLDEN=1 python -m pytest tests/test_site.py -k golden"""
    make_workspace(workspace)
    out = build(workspace)
    assert out.returncode == 0, out.stderr
    built = tree(workspace / "site")
    # static/ is a verbatim copy of templates/site/static (the vendored chart library): compared with its
    # source, not kept twice in the repository
    static = {k: v for k, v in built.items() if k.startswith("static/")}
    assert static == {f"static/{k}": v for k, v in tree(ROOT / "templates/site/static").items()}
    built = {k: v for k, v in built.items() if not k.startswith("static/")}
    if REGEN:
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(workspace / "site", GOLDEN, ignore=lambda d, names: ["static"] if d.endswith("/site") else [])
    golden = tree(GOLDEN)
    assert sorted(built) == sorted(golden)
    for name, data in built.items():
        assert data == golden[name], f"{name} differs from the golden tree; regenerate if intended"
    again = build(workspace, "--full")  # deterministic for a fixed clock
    assert again.returncode == 0 and {k: v for k, v in tree(workspace / "site").items() if k in built} == built


def test_live_track_tile_table_and_relative_links(workspace: Path) -> None:
    make_workspace(workspace)
    assert build(workspace).returncode == 0
    index = (workspace / "site/index.html").read_text()
    tile = index[index.index('id="snapshot-tile"') : index.index("</div>\n<h2>Sessions")]
    assert "session_20250101_120000_shadow_bbbb02" in tile and "RUN" in tile and "running" in tile
    assert 'class="badge mode-shadow"' in tile and '<meta http-equiv="refresh" content="60">' in index
    assert 'title="session_20250101_000000_paper_aaaa01">…000000_paper_aaaa01</a>' in index  # the distinct end
    assert "Generated 2025-01-01 14:00:00 UTC" in index and "data as of" in index
    for href in re.findall(r'href="(?!data:)([^"]+)"', index):
        assert not href.startswith(("/", "http")), href
        assert (workspace / "site" / href.split("#")[0]).exists(), href
    run_page = (workspace / "site/runs/20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002.html").read_text()
    assert run_page.count("<svg") == 3 and "Execution timeline" in run_page and "Last 50 events" in run_page
    assert "max_total_exposure_exceeded: limit=500 value=4015" in run_page
    assert 'href="../sessions/session_20250101_120000_shadow_bbbb02.html"' in run_page
    later = run_cli("site", "build", cwd=workspace, env={"SOURCE_DATE_EPOCH": str(int(FIXED_EPOCH) + 3600)})
    # became stale: its page is re-rendered, and so is every page, because the health badge turned DEGRADED
    assert "2 run pages" in later.stdout
    index = (workspace / "site/index.html").read_text()
    assert "is stale: no heartbeat for 60 min" in index and "STALE" in index
    assert "STALE" in (workspace / "site/runs/20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002.html").read_text()


def test_empty_state(workspace: Path) -> None:
    assert build(workspace).returncode == 0
    index = (workspace / "site/index.html").read_text()
    assert (
        "No live sessions found." in index
        and json.loads((workspace / "site/api/live_sessions.json").read_text()) == []
    )


# The documented schema (docs/site.md): required keys of each JSON mirror.
SCHEMA = {
    "api/live_sessions.json": [
        "session_id",
        "started_at",
        "ended_at",
        "mode",
        "environment",
        "status",
        "realized_pnl",
        "max_drawdown",
        "num_orders",
        "report_path",
        "notes",
    ],
    "api/live_sessions/stats.json": [
        "total_sessions",
        "by_mode",
        "by_status",
        "realized_pnl_by_mode",
        "avg_drawdown",
    ],
    "api/runs.json": [
        "run_id",
        "mode",
        "strategy_name",
        "symbol",
        "timeframe",
        "started_at",
        "ended_at",
        "is_active",
        "last_event_time",
    ],
    "api/runs/{run}/snapshot.json": [
        "run_id",
        "mode",
        "strategy_name",
        "symbol",
        "timeframe",
        "total_steps",
        "total_orders",
        "total_blocked_orders",
        "equity",
        "realized_pnl",
        "unrealized_pnl",
        "drawdown",
        "last_event_time",
        "position_size",
    ],
    "api/runs/{run}/tail.json": [
        "ts_bar",
        "equity",
        "realized_pnl",
        "unrealized_pnl",
        "position_size",
        "orders_count",
        "risk_allowed",
        "risk_reasons",
    ],
    "api/live_sessions/{session}.json": [
        "session_id",
        "risk_limit_details",
        "run_id",
        "run_type",
        "env_name",
        "symbol",
        "config",
        "metrics",
        "cli_args",
        "created_at",
    ],
    "api/health.json": ["status", "contract_version", "server_time", "problems", "stale_runs"],
    "api/live/status/snapshot.json": ["version", "generated_at", "panels", "meta"],
}


def test_json_mirrors_follow_the_documented_schema(workspace: Path) -> None:
    make_workspace(workspace)
    assert build(workspace).returncode == 0
    docs = (ROOT / "docs" / "site.md").read_text()
    run, session = "20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001", "session_20250101_000000_paper_aaaa01"
    for rel, keys in SCHEMA.items():
        assert rel.replace("{run}", "<run_id>").replace("{session}", "<session_id>") in docs, rel
        data = json.loads((workspace / "site" / rel.format(run=run, session=session)).read_text())
        items = data if isinstance(data, list) else [data]
        assert items, rel
        for item in items:
            missing = set(keys) - set(item)
            assert not missing, f"{rel} lacks {missing}"
    sessions = json.loads((workspace / "site/api/live_sessions.json").read_text())
    assert [s["status"] for s in sessions] == ["started", "failed", "completed"]
    assert sessions[0]["environment"] == "fixture / BTC/EUR" and sessions[2]["num_orders"] == 2
    stats = json.loads((workspace / "site/api/live_sessions/stats.json").read_text())
    assert stats["realized_pnl_by_mode"] == {"paper": 12.345, "shadow": -4.5} and "total_pnl" not in stats
    snap = json.loads((workspace / "site/api/runs" / run / "snapshot.json").read_text())
    assert (snap["total_steps"], snap["total_orders"], snap["total_blocked_orders"]) == (60, 1, 1)
    status = json.loads((workspace / "site/api/live/status/snapshot.json").read_text())
    assert [p["id"] for p in status["panels"]] == ["live_sessions", "runs", "system"]
    prom = (workspace / "site/metrics.prom").read_text()
    assert f'peaktrade_run_steps{{run_id="{run}",mode="paper",strategy="ma_crossover",symbol="BTC/EUR"}} 60' in prom


def test_xss_payloads_render_as_text(workspace: Path) -> None:
    make_workspace(workspace, xss=True)
    assert build(workspace).returncode == 0
    pages = [p for p in (workspace / "site").rglob("*.html")]
    assert len(pages) > 10
    for page in pages:
        text = page.read_text()
        assert '<script>alert("xss")' not in text and "<img src=x" not in text, page
    index = (workspace / "site/index.html").read_text()
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in index  # the notes, shown as text
    run_page = next((workspace / "site/runs").glob("*bbbb0002.html")).read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in run_page
    for js in (workspace / "site/api").rglob("*.json"):
        json.loads(js.read_text())  # JSON stays valid with the payload inside strings
    assert XSS in (workspace / "site/api/live_sessions.json").read_text().replace("\\", "")


def test_corrupt_inputs_are_listed_as_problems(workspace: Path) -> None:
    make_workspace(workspace)
    (workspace / "reports/experiments/live_sessions/broken.json").write_text("{nope")
    bad_run = workspace / "live_runs/20250101_bad_run"
    bad_run.mkdir()
    (bad_run / "meta.json").write_text("[1, 2")
    out = build(workspace)
    assert out.returncode == 0 and "broken.json" in out.stderr
    index = (workspace / "site/index.html").read_text()
    assert "problem(s) while reading inputs" in index and "broken.json" in index and "20250101_bad_run" in index
    assert json.loads((workspace / "site/api/health.json").read_text())["status"] == "degraded"


def test_incremental_rebuilds_only_what_changed(workspace: Path) -> None:
    make_workspace(workspace)
    first = build(workspace)
    assert "2 run pages, 3 session pages re-rendered" in first.stdout
    run_page = workspace / "site/runs/20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001.html"
    before = run_page.stat().st_mtime_ns
    second = build(workspace)
    assert "0 run pages, 0 session pages re-rendered" in second.stdout and run_page.stat().st_mtime_ns == before
    meta = workspace / "live_runs/20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002/meta.json"
    meta.write_text(meta.read_text().replace('"notes": "note"', '"notes": "changed"'))
    # the run is running: its session's page shows the run's numbers, so it is re-rendered with it
    assert "1 run pages, 1 session pages" in build(workspace).stdout
    assert "2 run pages, 3 session pages" in build(workspace, "--full").stdout
    shutil.rmtree(workspace / "live_runs/20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001")
    build(workspace)
    assert not run_page.exists()
    assert not (workspace / "site/api/runs/20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001").exists()
    # its session, the only paper one, becomes a testnet session: the paper filter files and their directory go
    record = next((workspace / "reports/experiments/live_sessions").glob("*paper_aaaa01.json"))
    record.write_text(record.read_text().replace('"mode": "paper"', '"mode": "testnet"'))
    build(workspace)
    mode = workspace / "site/api/live_sessions/mode"
    assert sorted(p.name for p in mode.iterdir()) == ["shadow", "shadow.json", "testnet", "testnet.json"]


def test_second_build_while_one_runs_exits_75(workspace: Path) -> None:
    (workspace / "state").mkdir()
    with open(workspace / "state/site-build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        out = build(workspace)
    assert out.returncode == 75 and "skipped" in out.stderr


def test_crontab_has_the_every_minute_build_with_flock() -> None:
    cron = (ROOT / "crontab.example").read_text()
    assert re.search(
        r"^\* \* \* \* \* cd \$PEAKTRADE_HOME && (mkdir -p state && )?flock -n -E 75 \S+ "
        r"\.venv/bin/peaktrade site build",
        cron,
        re.M,
    )


def test_clients_never_see_a_partial_page_during_builds(workspace: Path) -> None:
    make_workspace(workspace)
    assert build(workspace).returncode == 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(workspace / "site")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = config.load(workspace / "config/config.toml")
    stop = threading.Event()
    builds = 0

    def builder() -> None:
        nonlocal builds
        while not stop.is_set():
            site_mod.build(settings, out_dir=workspace / "site", full=True, now=NOW)
            builds += 1

    t = threading.Thread(target=builder)
    t.start()
    pages = [
        "index.html",
        "runs/20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002.html",
        "sessions/index.html",
        "api/live_sessions.json",
    ]
    fetched = 0
    deadline = time.monotonic() + 6
    try:
        while time.monotonic() < deadline:
            for page in pages:
                with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/{page}") as resp:
                    body = resp.read().decode()
                    assert resp.headers["Cache-Control"] == "no-store"
                if page.endswith(".json"):
                    json.loads(body)
                else:
                    assert body.rstrip().endswith("</html>"), page
                fetched += 1
    finally:
        stop.set()
        t.join()
        server.shutdown()
    assert builds >= 3 and fetched > 50


def test_report_numbers_equal_the_site(workspace: Path) -> None:
    assert run_cli("demo", cwd=workspace).returncode == 0
    assert run_cli("site", "build", cwd=workspace).returncode == 0
    stats = json.loads((workspace / "site/api/live_sessions/stats.json").read_text())
    report = run_cli("report", "sessions", "--stdout", cwd=workspace).stdout
    for mode, pnl in stats["realized_pnl_by_mode"].items():
        assert f"| Realized PnL ({mode}, EUR) | {pnl:+,.2f} |" in report
    index = (workspace / "site/index.html").read_text()
    for s in json.loads((workspace / "site/api/live_sessions.json").read_text()):
        assert f"{s['realized_pnl']:+,.2f}" in report and f"{s['realized_pnl']:+,.2f}" in index
    run = json.loads((workspace / "site/api/runs.json").read_text())[0]["run_id"]
    snap = json.loads((workspace / "site/api/runs" / run / "snapshot.json").read_text())
    run_report = Path(workspace / run_cli("report", "run", run, cwd=workspace).stdout.strip()).read_text()
    assert f"| Realized PnL (net of fees) | {snap['realized_pnl']:+,.2f} |" in run_report
    assert f"| Equity (EUR) | {snap['equity']:,.2f} |" in run_report


def test_site_serve_serves_the_built_site(workspace: Path) -> None:
    make_workspace(workspace)
    assert build(workspace).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "peaktrade", "site", "serve", "--port", "0"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://\S+/", line).group(0)
        with urllib.request.urlopen(url + "index.html") as resp:
            assert resp.status == 200 and b"Live-Track" in resp.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("missing", ["site"])
def test_serve_without_a_build_says_what_to_do(workspace: Path, missing: str) -> None:
    out = run_cli("site", "serve", cwd=workspace)
    assert out.returncode == 2 and "run `peaktrade site build` first" in out.stderr


def test_static_json_filters_mirror_the_query_strings(workspace: Path) -> None:
    """`api/live_sessions?mode=shadow&status=failed` becomes `api/live_sessions/mode/shadow/status/failed.json`."""
    make_workspace(workspace)
    assert build(workspace).returncode == 0
    api = workspace / "site/api/live_sessions"

    def ids(rel: str) -> list[str]:
        return [s["session_id"] for s in json.loads((api / rel).read_text())]

    assert ids("mode/shadow.json") == [
        "session_20250101_120000_shadow_bbbb02",
        "session_20250101_060000_shadow_cccc03",
    ]
    assert ids("status/completed.json") == ["session_20250101_000000_paper_aaaa01"]
    assert ids("mode/shadow/status/failed.json") == ["session_20250101_060000_shadow_cccc03"]
    assert not (api / "mode/paper/status/failed.json").exists()  # no such session: no file (a static 404)
    row = json.loads((api / "mode/shadow/status/failed.json").read_text())[0]
    assert {"session_id", "mode", "status", "realized_pnl", "max_drawdown", "num_orders", "started_at"} <= set(row)
    # the failed session goes: its filter files go with it
    next((workspace / "reports/experiments/live_sessions").glob("*cccc03.json")).unlink()
    assert build(workspace).returncode == 0
    assert not (api / "status/failed.json").exists() and not (api / "mode/shadow/status/failed.json").exists()
    assert ids("mode/shadow.json") == ["session_20250101_120000_shadow_bbbb02"]


def test_dead_writer_is_marked_dead_in_words_and_colour(workspace: Path) -> None:
    """On this host, a running run whose process is gone reads DEAD at once (no waiting for a stale heartbeat)."""
    from peaktrade import liveness

    make_workspace(workspace)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a real process that has exited: its pid is free (and if reused, its start time differs)
    meta_path = workspace / "live_runs/20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002/meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(host=liveness.this_host(), pid=gone.pid, pid_start_ticks=1)
    meta_path.write_text(json.dumps(meta))
    assert build(workspace).returncode == 0
    index = (workspace / "site/index.html").read_text()
    tile = index[index.index('id="snapshot-tile"') : index.index("<h2>Sessions")]
    assert '<span class="badge st-dead" title="its process is gone">DEAD</span>' in tile
    assert "dead: its process is gone" in index  # the warning above the tile
    run_page = (workspace / "site/runs/20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002.html").read_text()
    assert "DEAD" in run_page and "peaktrade runs recover" in run_page
    session_page = (workspace / "site/sessions/session_20250101_120000_shadow_bbbb02.html").read_text()
    assert "st-dead" in session_page
