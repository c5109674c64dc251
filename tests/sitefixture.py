"""A fixed workspace for site tests: two runs and three sessions with fixed times, ids and numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from peaktrade import registry
from peaktrade.artifacts import RunWriter
from tests.conftest import T0, event

FIXED_EPOCH = "1735740000"  # 2025-01-01T14:00:00Z: the build clock of the golden tree
XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'


def make_workspace(root: Path, *, xss: bool = False) -> None:
    runs = root / "live_runs"
    reg = root / "reports/experiments/live_sessions"
    text = XSS if xss else ""
    specs = [
        (
            "20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001",
            "session_20250101_000000_paper_aaaa01",
            "paper",
            "completed",
            0,
        ),
        (
            "20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002",
            "session_20250101_120000_shadow_bbbb02",
            "shadow",
            "running",
            12 * 60,
        ),
    ]
    for run_id, sid, mode, status, offset in specs:
        started = T0 + timedelta(minutes=offset)
        w = RunWriter.create(
            runs,
            mode=mode,
            strategy_name="ma_crossover" + text,
            symbol="BTC/EUR" + text,
            timeframe="1m",
            run_id=run_id,
            session_id=sid,
            started_at=started,
            fsync=False,
            notes="note" + text,
            data_source="synthetic:42",
        )
        for i in range(60):
            row = event(
                i,
                ts_bar=started + timedelta(minutes=i),
                ts_event=started + timedelta(minutes=i),
                risk_reasons=("max_total_exposure" + text) if i == 15 else "",
            )
            w.append_event(row)
        w.append_order(
            {
                "ts": started + timedelta(minutes=5),
                "step": 5,
                "side": "buy",
                "qty": 0.1,
                "notional": 4005.0,
                "status": "filled",
                "reasons": [],
                "fill_price": 40050.0,
                "fee": 1.0,
            }
        )
        w.append_order(
            {
                "ts": started + timedelta(minutes=15),
                "step": 15,
                "side": "buy",
                "qty": 0.1,
                "notional": 4015.0,
                "status": "blocked",
                "fill_price": None,
                "fee": 0.0,
                "reasons": ["max_total_exposure_exceeded: limit=500 value=4015" + text],
            }
        )
        if status == "completed":
            w.close("completed")
        else:
            w.flush()
        meta_path = w.run_dir / "meta.json"
        meta = json.loads(meta_path.read_text())
        end = started + timedelta(minutes=60)
        beat = end if status == "completed" else datetime(2025, 1, 1, 13, 59, 30, tzinfo=UTC)  # 30 s before the build
        meta.update(
            pid=1,
            host="fixture-host",
            heartbeat_at=beat.isoformat(),
            ended_at=end.isoformat() if status == "completed" else None,
        )
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True))
        rec = registry.new_record(
            session_id=sid,
            run_id=run_id,
            mode=mode,
            env_name="fixture",
            symbol="BTC/EUR",
            strategy="ma_crossover",
            started_at=started,
            cli_args=["peaktrade", "session", "run"],
            notes=text or None,
            config={"live_risk": {"max_total_exposure_notional": 500.0}},
        )
        rec.update(
            status="completed" if status == "completed" else "started",
            finished_at=end.isoformat() if status == "completed" else None,
            metrics={
                "realized_pnl": 12.345 if mode == "paper" else -3.5,
                "max_drawdown": 0.0123,
                "num_orders": 2,
                "num_trades": 1,
                "num_blocked": 1,
                "steps": 60,
            },
            error=("boom" + text) if xss else None,
        )
        registry.write_record(reg, rec)
    failed = registry.new_record(
        session_id="session_20250101_060000_shadow_cccc03",
        run_id=None,
        mode="shadow",
        env_name="fixture",
        symbol="ETH/EUR" + text,
        strategy="rsi_reversion" + text,
        started_at=T0 + timedelta(hours=6),
    )
    failed.update(
        status="failed",
        finished_at=(T0 + timedelta(hours=6, minutes=1)).isoformat(),
        error="DataError: bad row" + text,
        metrics={"realized_pnl": -1.0, "max_drawdown": 0.001},
    )
    registry.write_record(reg, failed)
