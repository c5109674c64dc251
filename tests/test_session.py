from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from pathlib import Path

import pytest

from peaktrade.artifacts import RunReader, scan_runs
from peaktrade.config import RiskConfig
from peaktrade.engine import Engine, EngineConfig
from peaktrade.marketdata import DataError, KrakenCsvSource, SyntheticSource
from peaktrade.models import Bar
from peaktrade.strategies import SPECS
from tests.conftest import ROOT, run_cli

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def bars(n: int, seed: int = 1) -> list[Bar]:
    return list(islice(SyntheticSource(start=T0, seed=seed), n))


def engine(strategy: str = "ma_crossover", **kw) -> Engine:
    spec = next(s for s in SPECS if s.name == strategy)
    cfg = dict(
        symbol="BTC/EUR",
        start_balance=10_000.0,
        position_fraction=0.5,
        fee_rate=0.001,
        slippage_bps=10.0,
        allow_short=True,
        risk=RiskConfig(),
    )
    cfg.update(kw)
    return Engine(EngineConfig(**cfg), spec.build({}))


@pytest.mark.parametrize("strategy", [s.name for s in SPECS])
def test_no_look_ahead(strategy: str) -> None:
    """Rows and decisions up to bar t are identical whatever comes after bar t."""
    base = bars(1500)
    other_future = bars(1500, seed=99)
    t = 900
    a, b = engine(strategy), engine(strategy)
    rows_a = [a.on_bar(x, NOW)[0] for x in base]
    shifted = [
        Bar(x.ts + timedelta(minutes=t), x.open * 3, x.high * 3, x.low * 3, x.close * 3, x.volume)
        for x in other_future[t:]
    ]
    rows_b = [b.on_bar(x, NOW)[0] for x in base[: t + 1] + shifted]
    assert rows_a[: t + 1] == rows_b[: t + 1]
    assert sum(r["signal_changed"] for r in rows_a) > 5, "the strategy should actually trade"


@pytest.mark.parametrize("strategy", [s.name for s in SPECS])
def test_strategies_enter_and_exit(strategy: str) -> None:
    e = engine(strategy, allow_short=False)
    positions = [e.on_bar(x, NOW)[0]["position_size"] for x in bars(5000)]
    entries = sum(1 for p, q in pairwise(positions) if p == 0 and q > 0)
    exits = sum(1 for p, q in pairwise(positions) if p > 0 and q == 0)
    assert entries >= 3 and exits >= 3 and min(positions) >= 0


def test_fills_at_next_open_with_slippage_and_fee() -> None:
    e = engine()
    series = bars(3000)
    for i, bar in enumerate(series):
        row, orders = e.on_bar(bar, NOW)
        filled = [o for o in orders if o.status == "filled"]
        for o in filled:
            assert o.step == i - 1 and o.fill_ts == bar.ts
            expected = bar.open * (1 + 0.001 if o.side == "buy" else 1 - 0.001)
            assert o.fill_price == pytest.approx(expected)
            assert o.fee == pytest.approx(0.001 * o.qty * o.fill_price)
        assert row["equity"] == pytest.approx(row["cash"] + row["position_size"] * bar.close)
        assert row["equity"] == pytest.approx(10_000 + row["realized_pnl"] + row["unrealized_pnl"])


def test_position_fraction_is_a_fraction_of_equity() -> None:
    e = engine(position_fraction=0.1, allow_short=False)
    for bar in bars(3000):
        _, orders = e.on_bar(bar, NOW)
        for o in orders:
            if o.status == "filled" and o.side == "buy":
                assert o.qty * o.fill_price == pytest.approx(0.1 * 10_000, rel=0.05)
                return
    pytest.fail("no entry happened")


def test_blocked_entries_logged_exits_never_blocked() -> None:
    e = engine(allow_short=False, risk=RiskConfig(max_total_exposure_notional=4000.0))  # 0.5 x equity > 4000
    blocked = []
    for bar in bars(3000):
        _, orders = e.on_bar(bar, NOW)
        blocked += [o for o in orders if o.status == "blocked"]
    assert blocked and all(not o.reduces for o in blocked)
    assert blocked[0].reasons[0].startswith("max_total_exposure_exceeded: limit=4000 value=")
    assert e.num_filled == 0 and e.ledger.position == 0


KRAKEN = """1735689600,40000.0,40100.0,39900.0,40050.0,1E+1,12
1735693200,40050.0,40200.0,40000.0,40150.0,0.5,3
1735704000,40150.0,40300.0,40100.0,40250.0,2.50000000,7
"""


def test_kraken_csv_with_gaps_and_scientific_notation(tmp_path: Path) -> None:
    path = tmp_path / "XBTEUR_60.csv"
    path.write_text(KRAKEN)
    filled = list(KrakenCsvSource(path, "fill"))
    assert [b.ts.hour for b in filled] == [0, 1, 2, 3, 4]
    assert filled[0].volume == 10.0
    assert (filled[2].open, filled[2].close, filled[2].volume) == (40150.0, 40150.0, 0.0)  # flat gap bar
    skipped = list(KrakenCsvSource(path, "skip"))
    assert [b.ts.hour for b in skipped] == [0, 1, 4]
    assert KrakenCsvSource(path).timeframe == "1h"


def test_kraken_csv_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "XBTEUR_1.csv"
    path.write_text("1735689600,1,1,1,1,1,1\n1735689660,1,1,x,1,1,1\n")
    with pytest.raises(DataError, match=r"XBTEUR_1.csv:2: not a number"):
        list(KrakenCsvSource(path))
    path.write_text("1735689660,1,1,1,1,1,1\n1735689600,1,1,1,1,1,1\n")
    with pytest.raises(DataError, match=r":2: timestamp .* is not after"):
        list(KrakenCsvSource(path))


def test_cli_session_run_end_to_end(workspace: Path) -> None:
    out = run_cli(
        "session",
        "run",
        "--strategy",
        "rsi_reversion",
        "--steps",
        "2000",
        "--mode",
        "paper",
        "--notes",
        "e2e",
        "--tags",
        "a",
        "b",
        cwd=workspace,
    )
    assert out.returncode == 0, out.stderr
    assert "status      completed" in out.stdout and "peaktrade monitor --run-id 2" in out.stdout
    [entry] = scan_runs(workspace / "live_runs").runs
    r = RunReader(entry.path)
    assert r.meta["status"] == "completed" and r.meta["rows"] == 2000 and r.meta["tags"] == ["a", "b"]
    assert r.events().num_rows == 2000
    [rec_path] = (workspace / "reports/experiments/live_sessions").glob("*.json")
    rec = json.loads(rec_path.read_text())
    assert rec["status"] == "completed" and rec["run_id"] == entry.run_id and rec["notes"] == "e2e"
    assert set(rec["metrics"]) == {
        "realized_pnl",
        "unrealized_pnl",
        "max_drawdown",
        "num_orders",
        "num_trades",
        "num_blocked",
        "fees",
        "steps",
        "fill_rate",
        "final_equity",
        "return_pct",
    }
    last = r.last_event()
    assert rec["metrics"]["final_equity"] == pytest.approx(last["equity"])
    assert rec["metrics"]["num_orders"] == r.totals()["orders"] and rec["metrics"]["steps"] == 2000
    assert len([o for o in r.orders() if o["status"] == "filled"]) == rec["metrics"]["num_trades"]


def test_cli_dry_run_writes_nothing_and_refusals(workspace: Path) -> None:
    out = run_cli("session", "run", "--steps", "10", "--dry-run", cwd=workspace)
    assert out.returncode == 0 and "stops after        10 bars" in out.stdout
    assert not (workspace / "live_runs").exists() and not (workspace / "reports").exists()
    live = run_cli("session", "run", "--mode", "live", "--steps", "10", cwd=workspace)
    assert live.returncode == 2 and "refused" in live.stderr
    testnet = run_cli(
        "session", "run", "--mode", "testnet", "--steps", "10", cwd=workspace, env={"KRAKEN_API_KEY": ""}
    )
    assert testnet.returncode == 2 and "KRAKEN_API_KEY and KRAKEN_API_SECRET" in testnet.stderr
    assert len(testnet.stderr.strip().splitlines()) == 1
    bad = run_cli("session", "run", "--strategy", "nope", "--steps", "10", cwd=workspace)
    assert bad.returncode == 2 and "available: ma_crossover" in bad.stderr
    forever = run_cli("session", "run", cwd=workspace)
    assert forever.returncode == 2 and "--steps" in forever.stderr
    assert not (workspace / "live_runs").exists()


def test_cli_failed_replay_finalizes_artifacts(workspace: Path) -> None:
    path = workspace / "XBTEUR_1.csv"
    rows = [f"{1735689600 + 60 * i},100,101,99,100.5,1,1" for i in range(300)]
    rows[200] = "garbage"
    path.write_text("\n".join(rows) + "\n")
    out = run_cli("session", "run", "--source", f"csv:{path}", "--no-registry", cwd=workspace)
    assert out.returncode == 1 and "XBTEUR_1.csv:201" in out.stdout
    [entry] = scan_runs(workspace / "live_runs").runs
    r = RunReader(entry.path)
    # the first 30 rows warm ma_crossover up (slow_window 30); rows 31..200 are traded, row 201 is refused
    assert r.meta["status"] == "failed" and "DataError" in r.meta["error"] and r.events().num_rows == 170
    assert not (workspace / "reports").exists()


def test_sigterm_aborts_with_readable_artifacts(workspace: Path) -> None:
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "peaktrade", "session", "run", "--steps", "100000", "--bar-delay", "0.02"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = scan_runs(workspace / "live_runs").runs
        if runs and runs[0].meta.get("rows", 0) >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "status      aborted (SIGTERM)" in out
    [entry] = scan_runs(workspace / "live_runs").runs
    r = RunReader(entry.path)
    assert r.meta["status"] == "aborted" and r.meta["error"] == "SIGTERM"
    assert r.events().num_rows == r.meta["rows"] >= 10 and (entry.path / "events.parquet").exists()
    [rec] = [json.loads(p.read_text()) for p in (workspace / "reports/experiments/live_sessions").glob("*.json")]
    assert rec["status"] == "aborted" and rec["metrics"]["steps"] == r.meta["rows"]


def test_demo_runs_sessions_of_every_kind(workspace: Path) -> None:
    started = time.monotonic()
    out = run_cli("demo", cwd=workspace)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started < 60
    runs = scan_runs(workspace / "live_runs").runs
    assert len(runs) == 5
    statuses = sorted(e.meta["status"] for e in runs)
    assert statuses == ["completed"] * 4 + ["failed"]
    assert {e.meta["mode"] for e in runs} == {"shadow", "paper"}
    assert len({e.meta["strategy_name"] for e in runs}) == 4
    assert any(RunReader(e.path).totals()["blocked"] > 0 for e in runs)
    assert "what to run next" in out.stdout
