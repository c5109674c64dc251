"""Real processes: a writer killed with SIGKILL, and a reader polling while a writer appends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from peaktrade.artifacts import RunReader, recover_all
from peaktrade.clock import utcnow
from tests.conftest import ROOT, run_cli

HELPER = ROOT / "tests" / "helpers" / "writer_proc.py"


def start_writer(runs: Path, rows: int, flush: int, seg: int, pause: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(runs), str(rows), str(flush), str(seg), str(pause)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_sigkill_loses_nothing_flushed_and_recover_compacts(tmp_path: Path) -> None:
    runs = tmp_path / "live_runs"
    proc = start_writer(runs, 10_000_000, 50, 1000)
    run_dir = Path(proc.stdout.readline().strip())
    flushed = 0
    while flushed < 3000:
        line = proc.stdout.readline()
        flushed = int(line.split()[1])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    r = RunReader(run_dir)  # meta.json is parseable
    assert r.meta["status"] == "running"
    committed = r.events().num_rows  # a reader stops at meta.json's count (the commit point)
    assert committed == r.meta["rows"] >= flushed and committed % 50 == 0
    done, problems = recover_all(runs, utcnow(), stale_seconds=3600)
    # recovery keeps every whole batch on disk: also one the writer appended but was killed before counting
    assert problems == [] and len(done) == 1 and done[0].rows in (committed, committed + 50)
    durable = done[0].rows
    r = RunReader(run_dir)
    assert r.meta["status"] == "aborted" and r.meta["error"] == "writer died"
    assert r.events().column("step").to_pylist() == list(range(durable))
    assert sorted(p.name for p in run_dir.iterdir()) == ["events.parquet", "meta.json", "orders.jsonl"]


def test_reader_polling_every_10ms_sees_no_errors(tmp_path: Path) -> None:
    runs = tmp_path / "live_runs"
    proc = start_writer(runs, 60_000, 50, 2000, pause=0.001)
    run_dir = Path(proc.stdout.readline().strip())
    reads = 0
    last_rows = -1
    monotonic = True
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        # no try/except: any exception is a reader failure and fails the test
        r = RunReader(run_dir)
        tail = r.tail(15)
        totals = r.totals()
        steps = tail.column("step").to_pylist()
        assert steps == sorted(steps)
        assert not steps or steps[-1] == totals["steps"] - 1  # the tail ends where meta.json's count ends
        if totals["steps"] < last_rows:
            monotonic = False
        last_rows = totals["steps"]
        reads += 1
        time.sleep(0.01)
    proc.wait(timeout=60)
    assert reads > 50 and monotonic
    assert RunReader(run_dir).meta["status"] == "completed"
    assert RunReader(run_dir).events().num_rows == 60_000


def test_cli_recover_skips_live_writer_and_respects_lock(workspace: Path) -> None:
    runs = workspace / "live_runs"
    proc = start_writer(runs, 10_000_000, 50, 1000, pause=0.01)
    run_dir = Path(proc.stdout.readline().strip())
    proc.stdout.readline()
    try:
        result = run_cli("runs", "recover", cwd=workspace)
        assert result.returncode == 0 and "no crashed runs" in result.stdout
        result = run_cli("runs", "recover", "--run-id", run_dir.name, cwd=workspace)
        assert result.returncode == 2 and "looks alive" in result.stderr
        import fcntl

        (workspace / "state").mkdir(exist_ok=True)
        with open(workspace / "state" / "runs-recover.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            held = run_cli("runs", "recover", cwd=workspace)
        assert held.returncode == 75 and "skipped" in held.stderr
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    result = run_cli("runs", "recover", cwd=workspace)
    assert result.returncode == 0 and f"recovered {run_dir.name}" in result.stdout
    listing = run_cli("runs", "list", cwd=workspace)
    assert "aborted" in listing.stdout
