"""Numbers as an operator reads them on a page: money with the base currency, fractions as %, a limit of 0 as
"off". Pure; used as Jinja filters (peaktrade.templating) and by the page models.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from peaktrade.clock import parse_ts
from peaktrade.coerce import is_number

# metric key -> how to show it; keys not listed are shown as plain numbers
_MONEY = {"realized_pnl", "unrealized_pnl", "fees", "final_equity", "start_equity", "equity", "cash"}
_SIGNED = {"realized_pnl", "unrealized_pnl"}
_FRACTION = {"max_drawdown", "drawdown", "fill_rate"}
_PERCENT_POINTS = {"return_pct", "max_daily_loss_pct"}  # already in percent (5.0 = 5 %)
_COUNT_LIMITS = {"max_open_positions"}
_LABELS = {
    "num_orders": "Orders",
    "num_trades": "Trades (filled orders)",
    "num_blocked": "Blocked orders",
    "steps": "Bars processed",
    "fees": "Fees paid",
    "return_pct": "Return",
    "fill_rate": "Fill rate",
    "max_daily_loss_pct": "Max daily loss (%)",
    "max_daily_loss_abs": "Max daily loss (amount)",
}


def _number(value: Any) -> float | None:
    return float(value) if is_number(value) else None


def money_ccy(value: Any, currency: str = "", signed: bool = False) -> str:
    """`1,234.50 EUR` (`+1,234.50 EUR` when signed); `-` for a missing number."""
    v = _number(value)
    if v is None:
        return "-"
    text = f"{v:+,.2f}" if signed else f"{v:,.2f}"
    return f"{text} {currency}".rstrip()


def metric_text(key: str, value: Any, currency: str = "") -> str:
    """One registry metric as text: PnL and equity as money, drawdown and fill rate as %, counts as integers."""
    v = _number(value)
    if v is None:
        return "-" if value is None else str(value)
    if key in _MONEY:
        return money_ccy(v, currency, signed=key in _SIGNED)
    if key in _FRACTION:
        return f"{v * 100:.2f}%"
    if key in _PERCENT_POINTS:
        return f"{v:+.2f}%" if key == "return_pct" else f"{v:g}%"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.6g}"


def limit_text(key: str, value: Any, currency: str = "") -> str:
    """A risk limit: 0 (or less) disables it, so it reads "off"; else money, % or a count."""
    v = _number(value)
    if v is None:
        return "-" if value is None else str(value)
    if v <= 0:
        return "off"
    if key in _PERCENT_POINTS:
        return f"{v:g}% of the day's starting equity"
    if key in _COUNT_LIMITS:
        return f"{int(v):,}"
    return money_ccy(v, currency)


def short_time(value: Any) -> str:
    """`2026-11-21 08:06` (UTC, minutes): for table cells, whose column header says UTC."""
    ts = value if isinstance(value, datetime) else parse_ts(value)
    return ts.strftime("%Y-%m-%d %H:%M") if ts else "-"


def metric_label(key: str) -> str:
    """`max_drawdown` -> `Max drawdown`, `realized_pnl` -> `Realized PnL`, `num_blocked` -> `Blocked orders`."""
    if key in _LABELS:
        return _LABELS[key]
    words = key.replace("_", " ").split()
    out = " ".join({"pnl": "PnL", "pct": "%", "num": "number of"}.get(w, w) for w in words)
    return out[:1].upper() + out[1:]


def sparkline_svg(values: Sequence[float], width: int = 100, height: int = 26) -> str:
    """A tiny inline SVG polyline; green if the last value is at or above the first, else red. Numbers only."""
    vals = [float(v) for v in values if isinstance(v, float | int) and is_number(v)]
    if len(vals) < 2:
        return ""
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    step = (width - 2) / (len(vals) - 1)
    pts = " ".join(
        f"{1 + i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}" for i, v in enumerate(vals)
    )
    colour = "#15803d" if vals[-1] >= vals[0] else "#b91c1c"
    return (
        f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="equity trend">'
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/></svg>'
    )
