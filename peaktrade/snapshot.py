"""A run's snapshot (`LiveRunSnapshot`), built from meta.json, its whole-run totals and its newest event: pure.

Shared by the monitor (`peaktrade.monitoring`, which reads the files) and the site, whose build gathers 1,000 runs
and must not import the readers' pyarrow to describe them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peaktrade.clock import parse_ts
from peaktrade.status import NOT_RUNNING, run_state, stale_after_seconds


@dataclass
class LiveRunSnapshot:
    run_id: str
    mode: str
    strategy_name: str
    symbol: str
    timeframe: str
    started_at: datetime | None
    last_bar_time: datetime | None
    last_price: float | None
    position_size: float | None
    equity: float | None
    realized_pnl: float | None
    unrealized_pnl: float | None
    total_steps: int
    total_orders: int
    total_blocked_orders: int
    ended_at: datetime | None = None
    cash: float | None = None
    status: str = "running"
    stale: bool = False
    heartbeat_age_seconds: float | None = None
    drawdown: float | None = None
    max_drawdown: float | None = None
    fees: float | None = None
    error: str | None = None
    state: str = "running"  # running | stale | dead | the final status (peaktrade.status.run_state)
    last_step: int | None = None  # the commit point: the newest step meta.json counts (None: not known)
    problems: list[str] = field(default_factory=list)  # what was skipped while reading (file and field named)


def build_snapshot(
    meta: dict[str, Any],
    totals: dict[str, Any],
    last: dict[str, Any] | None,
    now: datetime,
    stale_bars: int = 3,
    stale_min_seconds: float = 300.0,
) -> LiveRunSnapshot:
    """Pure: a snapshot from meta.json, whole-run totals and the last event."""
    last = last or {}
    started, ended = parse_ts(meta.get("started_at")), parse_ts(meta.get("ended_at"))
    status = meta.get("status") or ("completed" if ended else "running")
    heartbeat = parse_ts(meta.get("heartbeat_at")) or parse_ts(last.get("ts_event")) or started
    age = (now - heartbeat).total_seconds() if heartbeat else None
    timeframe = str(meta.get("timeframe") or "")
    limit = stale_after_seconds(timeframe, stale_bars, stale_min_seconds)
    liveness_meta = dict(meta, status=status)
    if not meta.get("heartbeat_at") and heartbeat is not None:
        liveness_meta["heartbeat_at"] = heartbeat.isoformat()
    state = run_state(liveness_meta, now, limit)
    step = last.get("step")
    price = last.get("close") if last.get("close") is not None else last.get("price")
    return LiveRunSnapshot(
        run_id=str(meta.get("run_id") or ""),
        mode=str(meta.get("mode") or "?"),
        strategy_name=str(meta.get("strategy_name") or "?"),
        symbol=str(meta.get("symbol") or "?"),
        timeframe=timeframe,
        started_at=started,
        last_bar_time=parse_ts(last.get("ts_bar")),
        last_price=price,
        position_size=last.get("position_size"),
        equity=last.get("equity"),
        realized_pnl=last.get("realized_pnl"),
        unrealized_pnl=last.get("unrealized_pnl"),
        total_steps=int(totals.get("steps") or 0),
        total_orders=int(totals.get("orders") or 0),
        total_blocked_orders=int(totals.get("blocked") or 0),
        ended_at=ended,
        cash=last.get("cash"),
        status=status,
        stale=state in NOT_RUNNING,
        heartbeat_age_seconds=age,
        drawdown=last.get("drawdown"),
        max_drawdown=totals.get("max_drawdown") if totals.get("steps") else None,
        fees=last.get("fees_paid"),
        error=meta.get("error"),
        state=state,
        last_step=step if isinstance(step, int) and not isinstance(step, bool) else None,
    )
