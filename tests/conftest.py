from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `python -m peaktrade` in `cwd`."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    full_env.pop("PEAKTRADE_CONFIG", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "peaktrade", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def event(i: int, **over) -> dict:
    """A complete, consistent event row for step i."""
    price = 40_000.0 + 10 * i
    row = {
        "step": i,
        "ts_bar": T0 + timedelta(minutes=i),
        "ts_event": T0 + timedelta(minutes=i, seconds=1),
        "open": price,
        "high": price + 5,
        "low": price - 5,
        "close": price,
        "volume": 1.5,
        "price": price,
        "signal": 1 if i >= 5 else 0,
        "signal_changed": i == 5,
        "position_size": 0.1 if i >= 5 else 0.0,
        "avg_entry_price": 40_050.0 if i >= 5 else None,
        "cash": 10_000.0 - (4005.0 if i >= 5 else 0.0),
        "equity": 10_000.0 + 5 * i,
        "realized_pnl": 0.0,
        "unrealized_pnl": 5.0 * i,
        "fees_paid": 0.0,
        "drawdown": 0.0,
        "orders_generated": 1 if i == 5 else 0,
        "orders_filled": 1 if i == 5 else 0,
        "orders_rejected": 0,
        "orders_blocked": 1 if i == 15 else 0,
        "risk_allowed": i != 15,
        "risk_reasons": "max_total_exposure" if i == 15 else "",
        "risk_severity": "breach" if i == 15 else "ok",
    }
    row.update(over)
    return row


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory with a config file; the current directory for the test."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(
        '[shadow_paper_logging]\nfsync = false\n[general]\nenv_name = "test_env"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PEAKTRADE_CONFIG", raising=False)
    return tmp_path
