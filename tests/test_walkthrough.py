"""The seed's walkthrough (Phase 84) works as written, with `peaktrade session run` for the runner script."""

from __future__ import annotations

import json
import os
import pty
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from peaktrade.artifacts import RunReader, scan_runs
from tests.conftest import ROOT, run_cli

T = 1735689600  # 2025-01-01 00:00 UTC


def only_run(workspace: Path) -> RunReader:
    [entry] = scan_runs(workspace / "live_runs").runs
    return RunReader(entry.path)


def test_short_demo_session_warms_up_and_trades(workspace: Path) -> None:
    args = ("--strategy", "ma_crossover", "--symbol", "BTC/EUR", "--steps", "10")
    out = run_cli("session", "run", *args, cwd=workspace)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1] == "Warmup complete: 30 bars of history from synthetic:42"
    tip = next(i for i, line in enumerate(lines) if line.startswith("tip: monitor this run with `peaktrade monitor"))
    status = next(i for i, line in enumerate(lines) if line.startswith("status "))
    assert tip < status  # told at the start, when monitoring is useful
    r = only_run(workspace)
    assert r.meta["rows"] == 10 and r.totals()["orders"] >= 1  # the warmed-up strategy acts on the first bars
    [rec] = [json.loads(p.read_text()) for p in (workspace / "reports/experiments/live_sessions").glob("*.json")]
    assert rec["metrics"]["num_orders"] >= 1 and rec["metrics"]["steps"] == 10


def test_duration_is_market_time_for_synthetic_and_replays(workspace: Path) -> None:
    one = run_cli("session", "run", "--duration", "1", "--no-registry", cwd=workspace)
    assert one.returncode == 0, one.stderr
    assert only_run(workspace).meta["rows"] == 1  # one minute of 1m bars (it used to be 6.2M bars)
    for run in scan_runs(workspace / "live_runs").runs:
        subprocess.run(["rm", "-r", str(run.path)], check=True)
    thirty = run_cli("session", "run", "--duration", "30", "--timeframe", "5m", "--no-registry", cwd=workspace)
    assert thirty.returncode == 0 and only_run(workspace).meta["rows"] == 6
    for run in scan_runs(workspace / "live_runs").runs:
        subprocess.run(["rm", "-r", str(run.path)], check=True)
    csv = workspace / "XBTEUR_60.csv"
    csv.write_text("".join(f"{T + 3600 * i},100,101,99,100.5,1,1\n" for i in range(100)))
    replay = run_cli("session", "run", "--source", f"csv:{csv}", "--duration", "120", "--no-registry", cwd=workspace)
    assert replay.returncode == 0 and only_run(workspace).meta["rows"] == 2  # two hours of 1h bars


def test_dry_run_needs_no_steps_and_writes_nothing(workspace: Path) -> None:
    out = run_cli("session", "run", "--strategy", "ma_crossover", "--dry-run", cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert "stops after        never: synthetic data does not end" in out.stdout
    assert not (workspace / "live_runs").exists() and not (workspace / "reports").exists()
    real = run_cli("session", "run", "--strategy", "ma_crossover", cwd=workspace)
    assert real.returncode == 2 and "give --steps N or --duration MINUTES" in real.stderr


def test_list_strategies_is_accepted_by_session_run(workspace: Path) -> None:
    out = run_cli("session", "run", "--list-strategies", cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert out.stdout == run_cli("session", "list-strategies", cwd=workspace).stdout
    assert "rsi_reversion:" in out.stdout and not (workspace / "live_runs").exists()


def test_csv_replay_takes_symbol_and_timeframe_from_the_file_name(workspace: Path) -> None:
    csv = workspace / "ETHEUR_60.csv"
    csv.write_text("".join(f"{T + 3600 * i},100,101,99,100.5,1,1\n" for i in range(50)))
    out = run_cli("session", "run", "--source", f"csv:{csv}", "--no-registry", cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("session: shadow ma_crossover ETH/EUR 1h from csv:")
    meta = only_run(workspace).meta
    assert (meta["symbol"], meta["timeframe"]) == ("ETH/EUR", "1h")
    given = run_cli("session", "run", "--source", f"csv:{csv}", "--symbol", "ETH/USD", "--dry-run", cwd=workspace)
    assert given.returncode == 0 and "symbol             ETH/USD" in given.stdout
    wrong = run_cli("session", "run", "--source", f"csv:{csv}", "--timeframe", "1m", cwd=workspace)
    assert wrong.returncode == 2 and "holds 1h bars" in wrong.stderr


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    env.pop("PEAKTRADE_CONFIG", None)
    return env


def test_tip_is_printed_while_the_session_runs(workspace: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "peaktrade", "session", "run", "--steps", "3000", "--bar-delay", "0.05"],
        cwd=workspace,
        env=_env(),
        stdout=subprocess.PIPE,
    )
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 60
        seen = ""
        while "tip: monitor this run" not in seen and time.monotonic() < deadline:
            if sel.select(timeout=1):  # raw reads: a buffered readline could hold the tip back
                seen += os.read(proc.stdout.fileno(), 65536).decode()
        assert "tip: monitor this run with `peaktrade monitor --run-id " in seen
        assert proc.poll() is None  # still running: the tip came at the start
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 1


def test_progress_line_on_a_terminal_only(workspace: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "peaktrade", "session", "run", "--steps", "5000", "--no-registry"],
        cwd=workspace,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    terminal = b""
    while True:  # drain the terminal until the child closes it (EIO on Linux once no writer is left)
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        terminal += chunk
    proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    assert b"bars/s" in terminal and b"/5,000" in terminal and terminal.endswith(b"\r\x1b[K")
    piped = run_cli("session", "run", "--steps", "5000", "--no-registry", cwd=workspace)
    assert piped.returncode == 0 and piped.stderr == ""
