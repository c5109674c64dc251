"""A dead session is never shown as running: real sessions killed with SIGKILL, every reader, then recovery."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peaktrade import metrics
from peaktrade.artifacts import RunReader
from tests.conftest import ROOT, run_cli

HELPER = ROOT / "tests" / "helpers" / "writer_proc.py"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}


def _wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _flushed_run(runs: Path, rows: int) -> Path | None:
    for meta in runs.glob("*/meta.json"):
        try:
            if json.loads(meta.read_text()).get("rows", 0) >= rows:
                return meta.parent
        except ValueError:  # replaced while being read: the next poll sees the new file
            continue
    return None


def _record(workspace: Path) -> dict:
    [path] = list((workspace / "reports/experiments/live_sessions").glob("*.json"))
    return json.loads(path.read_text())


def test_a_killed_session_shows_dead_everywhere_until_recovered(workspace: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "peaktrade", "session", "run", "--steps", "100000", "--bar-delay", "0.02"],
        cwd=workspace,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run_dir = _wait_for(lambda: _flushed_run(workspace / "live_runs", 3), "the session's first flushes")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    run_id = run_dir.name
    session_id = _record(workspace)["session_id"]
    assert _record(workspace)["status"] == "started" and RunReader(run_dir).meta["status"] == "running"

    # on the same host a dead pid is known at once: no reader says running
    listing = run_cli("session", "list", cwd=workspace)
    assert listing.returncode == 0 and " dead " in listing.stdout and "started" not in listing.stdout
    as_json = json.loads(run_cli("session", "list", "--json", cwd=workspace).stdout)
    assert [r["state"] for r in as_json] == ["dead"]
    assert f"{run_id}  shadow   dead" in run_cli("runs", "list", cwd=workspace).stdout
    assert " dead " in run_cli("monitor", "--list", cwd=workspace).stdout
    frame = run_cli("monitor", "--once", "--run-id", run_id, cwd=workspace).stdout
    assert "[DEAD (writer process gone)]" in frame and "DEAD: the writer process is gone" in frame
    report = run_cli("report", "sessions", "--stdout", cwd=workspace).stdout
    assert "| dead |" in report
    run_report = run_cli("report", "run", run_id, "--output-dir", "rr", cwd=workspace)
    assert run_report.returncode == 0, run_report.stderr
    text = (workspace / "rr" / "report.md").read_text()
    assert "| Status | running (DEAD: writer gone) |" in text and "→ dead |" in text
    assert run_cli("site", "build", cwd=workspace).returncode == 0
    site = workspace / "site"
    index = (site / "index.html").read_text()
    assert 'class="badge st-dead"' in index and ">DEAD</span>" in index and 'class="badge st-running"' not in index
    assert "→ running" not in index and "dead: its process is gone" in index
    run_page = (site / "runs" / f"{run_id}.html").read_text()
    assert "DEAD" in run_page and 'class="badge st-running"' not in run_page
    assert "DEAD" in (site / "sessions" / f"{session_id}.html").read_text()
    snapshot = json.loads((site / "api/runs" / run_id / "snapshot.json").read_text())
    assert snapshot["state"] == "dead" and snapshot["stale"] is True
    assert json.loads((site / "api/runs.json").read_text())[0]["is_active"] is False
    prom = (site / "metrics.prom").read_text()
    assert f'peaktrade_run_running{{run_id="{run_id}"' in prom and "peaktrade_run_dead{" in prom
    assert next(line for line in prom.splitlines() if line.startswith("peaktrade_run_running{")).endswith(" 0")
    status = json.loads((site / "api/live/status/snapshot.json").read_text())
    runs_panel = next(p for p in status["panels"] if p["id"] == "runs")
    assert runs_panel["details"]["dead"] == 1 and runs_panel["details"]["running"] == 0

    # recovery finalizes the run and the session's registry record
    recovered = run_cli("runs", "recover", cwd=workspace)
    assert recovered.returncode == 0, recovered.stderr
    assert f"recovered {run_id}" in recovered.stdout and f"finalized session {session_id}" in recovered.stdout
    meta = RunReader(run_dir).meta
    record = _record(workspace)
    assert record["status"] == "aborted" and record["error"] == "writer died"
    assert record["finished_at"] == meta["ended_at"] is not None
    assert record["metrics"]["steps"] == meta["rows"] >= 3
    assert record["metrics"] == metrics.from_run(meta["summary"]["totals"], meta["summary"]["last"], 10_000.0)
    job = json.loads((workspace / "state/jobs/runs-recover.json").read_text())
    assert job["ok"] is True
    assert run_cli("site", "build", cwd=workspace).returncode == 0
    index = (site / "index.html").read_text()
    assert "ABORT" in index and "→ running" not in index and "DEAD" not in index
    assert "aborted" in run_cli("session", "list", cwd=workspace).stdout
    again = run_cli("runs", "recover", cwd=workspace)
    assert again.returncode == 0 and "no crashed runs to recover" in again.stdout


def test_recovery_metrics_are_the_sessions_own(workspace: Path) -> None:
    """The function recovery uses gives, on a finished session's artifacts, exactly the session's metrics."""
    done = run_cli("session", "run", "--steps", "3000", "--strategy", "momentum", cwd=workspace)
    assert done.returncode == 0, done.stderr
    record = _record(workspace)
    meta = RunReader(workspace / "live_runs" / record["run_id"]).meta
    assert record["metrics"]["num_orders"] > 0
    assert metrics.from_run(meta["summary"]["totals"], meta["summary"]["last"], 10_000.0) == record["metrics"]


def test_a_run_killed_before_its_first_flush_is_recovered(workspace: Path) -> None:
    runs = workspace / "live_runs"
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), str(runs), "10000000", "100000000", "1000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    run_dir = Path(proc.stdout.readline().strip())  # created, nothing flushed yet (flush every 1e8 rows)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert RunReader(run_dir).meta["rows"] == 0
    result = run_cli("runs", "recover", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert f"recovered {run_dir.name}: 0 events, 0 orders" in result.stdout
    meta = RunReader(run_dir).meta
    assert meta["status"] == "aborted" and meta["rows"] == 0 and RunReader(run_dir).events().num_rows == 0
    again = run_cli("runs", "recover", cwd=workspace)  # the cron job does not fail forever
    assert again.returncode == 0 and "no crashed runs" in again.stdout


def test_a_truncated_sealed_segment_is_reported_with_the_rows_lost(workspace: Path) -> None:
    runs = workspace / "live_runs"
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), str(runs), "10000000", "50", "1000"], stdout=subprocess.PIPE, text=True
    )
    run_dir = Path(proc.stdout.readline().strip())
    while int(proc.stdout.readline().split()[1]) < 2500:
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    counted = RunReader(run_dir).meta["rows"]
    first = run_dir / "events.d" / "seg-00000000.arrows"
    os.truncate(first, first.stat().st_size // 2)  # a sealed 1000-row segment loses its second half
    reader = RunReader(run_dir)
    shown = reader.events().num_rows
    assert shown < counted and f"{counted - shown} of {counted} rows" in reader.problems[0]
    result = run_cli("runs", "recover", cwd=workspace)
    assert result.returncode == 0, result.stderr
    lost = RunReader(run_dir).meta["rows_lost"]
    assert lost == counted - shown and 0 < lost < 1000
    assert f"{lost} rows lost" in result.stdout
    assert f"{lost} rows lost (damaged: seg-00000000.arrows)" in result.stderr


def test_a_full_disk_ends_the_session_failed_naming_the_file(workspace: Path) -> None:
    """ENOSPC from a real /dev/full: the open segment's temp name is a symlink to it before the first flush."""
    from peaktrade import config, session

    cfg = config.load(None)
    plan = session.make_plan(cfg, steps=50, bar_delay=0.0)
    runs = workspace / "live_runs"

    def sabotage(row: dict) -> None:
        if row["step"] == 0:
            [run_dir] = list(runs.iterdir())
            (run_dir / "events.d" / ".seg-00000000.arrows.tmp").symlink_to("/dev/full")

    result = session.run(plan, cfg, on_bar=sabotage)
    assert result.status == "failed"
    assert result.error.startswith("cannot write ") and "No space left on device (errno 28)" in result.error
    assert "seg-00000000.arrows" in result.error and "\n" not in result.error
    meta = json.loads((result.run_dir / "meta.json").read_text())
    assert meta["status"] == "failed" and meta["error"] == result.error
    record = _record(workspace)
    assert record["status"] == "failed" and record["error"] == result.error


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # Python ignores SIGXFSZ: writes get EFBIG


def test_cli_session_on_a_disk_that_refuses_writes_exits_1_with_one_line(workspace: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "peaktrade", "session", "run", "--steps", "200000"],
        cwd=workspace,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size,
    )
    assert out.returncode == 1
    assert "unexpected error" not in out.stderr + out.stdout and "Traceback" not in out.stderr
    [status] = [line for line in out.stdout.splitlines() if line.startswith("status")]
    assert "failed (cannot write live_runs/" in status and "File too large" in status
    run_dir = next((workspace / "live_runs").iterdir())
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "failed" and meta["error"] in status
    assert _record(workspace)["status"] == "failed"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_cli_session_with_a_read_only_runs_dir_exits_1_naming_it(workspace: Path) -> None:
    (workspace / "live_runs").mkdir(mode=0o555)
    out = run_cli("session", "run", "--steps", "10", cwd=workspace)
    assert out.returncode == 1 and "unexpected error" not in out.stderr
    assert "cannot write live_runs" in out.stderr and "Permission denied" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_started_record_whose_run_ended_shows_the_runs_outcome_and_is_finalized(workspace: Path) -> None:
    from tests.sitefixture import FIXED_EPOCH, make_workspace

    make_workspace(workspace)
    run_id = "20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002"
    sid = "session_20250101_120000_shadow_bbbb02"
    meta_path = workspace / "live_runs" / run_id / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(status="aborted", error="SIGTERM", ended_at="2025-01-01T13:00:00+00:00")
    meta_path.write_text(json.dumps(meta))  # the session process died before it updated its registry record
    record_path = next((workspace / "reports/experiments/live_sessions").glob(f"*{sid}.json"))
    assert json.loads(record_path.read_text())["status"] == "started"
    assert run_cli("site", "build", cwd=workspace, env={"SOURCE_DATE_EPOCH": FIXED_EPOCH}).returncode == 0
    page = (workspace / "site" / "sessions" / f"{sid}.html").read_text()
    assert '<span class="badge st-aborted">ABORT</span>' in page and "2025-01-01 13:00:00 UTC" in page
    assert "→ running" not in (workspace / "site" / "index.html").read_text()
    line = next(x for x in run_cli("session", "list", cwd=workspace).stdout.splitlines() if sid in x)
    assert " aborted " in line
    recovered = run_cli("runs", "recover", cwd=workspace)
    assert recovered.returncode == 0 and f"finalized session {sid}" in recovered.stdout
    record = json.loads(record_path.read_text())
    assert record["status"] == "aborted" and record["error"] == "SIGTERM"
    assert record["finished_at"] == "2025-01-01T13:00:00+00:00" and record["metrics"]["steps"] == 60
