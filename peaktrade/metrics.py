"""The registry metrics of a session (DESIGN.md §3): one function, used when a session ends and when
`runs recover` finalizes the session of a run whose writer died, so both give the same numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def session_metrics(
    *,
    realized_pnl: float,
    unrealized_pnl: float,
    max_drawdown: float,
    num_orders: int,
    num_trades: int,
    num_blocked: int,
    fees: float,
    steps: int,
    final_equity: float,
    start_balance: float,
) -> dict[str, Any]:
    """realized_pnl (net of fees), unrealized_pnl, max_drawdown, order counts, fill_rate, final equity, return."""
    return {
        "realized_pnl": round(realized_pnl, 8),
        "unrealized_pnl": round(unrealized_pnl, 8),
        "max_drawdown": round(max_drawdown, 8),
        "num_orders": num_orders,
        "num_trades": num_trades,
        "num_blocked": num_blocked,
        "fees": round(fees, 8),
        "steps": steps,
        "fill_rate": round(num_trades / num_orders, 6) if num_orders else 0.0,
        "final_equity": round(final_equity, 8),
        "return_pct": round((final_equity / start_balance - 1.0) * 100.0, 6) if start_balance else 0.0,
    }


def from_run(totals: Mapping[str, Any], last: Mapping[str, Any], start_balance: float) -> dict[str, Any]:
    """The same metrics from a run's artifacts: whole-run totals and the last event (the ledger after the last
    bar the writer flushed). With no event at all, nothing was traded: the start balance is the final equity."""

    def num(key: str, default: float = 0.0) -> float:
        value = last.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default

    return session_metrics(
        realized_pnl=num("realized_pnl"),
        unrealized_pnl=num("unrealized_pnl"),
        max_drawdown=float(totals.get("max_drawdown") or 0.0),
        num_orders=int(totals.get("orders") or 0),
        num_trades=int(totals.get("filled") or 0),
        num_blocked=int(totals.get("blocked") or 0),
        fees=num("fees_paid"),
        steps=int(totals.get("steps") or 0),
        final_equity=num("equity", start_balance),
        start_balance=start_balance,
    )
