"""Data for the run page's interactive chart and the Live-Track sparklines. Pure: arrays in, small dicts out.

The interactive chart (templates/site/static/runchart.js, drawn by the vendored lightweight-charts) reads one
`<script>` per run that assigns `window.PEAKTRADE_CHART`: a `<script>` works from `file://`, where `fetch()` of a
neighbouring JSON file is blocked. Its size is bounded whatever the run's length: prices are aggregated into at
most `CANDLES` candles (open of the first bar, highest high, lowest low, close of the last bar of each bucket),
equity and drawdown are min/max downsampled (spikes survive), the final point of every series is kept, and at
most `MAX_MARKERS` orders are marked (the newest).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from peaktrade.charts import minmax_indices
from peaktrade.clock import parse_ts

CANDLES = 400  # ~3 px per candle on a 1280 px page; zooming in shows the same candles larger
LINE_BUCKETS = 300  # ~600 points: min and max per bucket
MAX_MARKERS = 1000
SPARK_POINTS = 48


def _clean(values: np.ndarray, digits: int) -> list[float | None]:
    """Rounded (short JSON), non-finite values as None (JSON has no NaN); vectorized: this runs per run page."""
    out = np.round(values, digits).tolist()
    if np.isfinite(values).all():
        return out
    return [v if math.isfinite(v) else None for v in out]


def candles(
    times_s: np.ndarray, opens: np.ndarray, highs: np.ndarray, lows: np.ndarray, closes: np.ndarray
) -> dict[str, list]:
    """OHLC aggregated into at most `CANDLES` buckets of equal bar count; the last bar closes the last candle.

    Bars without a close (gaps in legacy files) are dropped; a missing open/high/low falls back to the close.
    """
    keep = np.isfinite(times_s) & np.isfinite(closes)
    t, c = times_s[keep], closes[keep]
    o = np.where(np.isnan(opens[keep]), c, opens[keep])
    h = np.fmax(np.where(np.isnan(highs[keep]), c, highs[keep]), np.fmax(o, c))
    lo = np.fmin(np.where(np.isnan(lows[keep]), c, lows[keep]), np.fmin(o, c))
    t, (o, h, lo, c) = _unique_times(t, o, h, lo, c)
    n = len(t)
    if n == 0:
        return {"t": [], "o": [], "h": [], "l": [], "c": []}
    size = max(1, -(-n // CANDLES))
    starts = np.arange(0, n, size)
    ends = np.minimum(starts + size, n) - 1
    return {
        "t": t[starts].astype("int64").tolist(),
        "o": _clean(o[starts], 8),
        "h": _clean(np.maximum.reduceat(h, starts), 8),
        "l": _clean(np.minimum.reduceat(lo, starts), 8),
        "c": _clean(c[ends], 8),
    }


def line(times_s: np.ndarray, values: np.ndarray, digits: int = 8) -> dict[str, list]:
    """`{"t": [...], "v": [...]}` min/max downsampled to about `2 * LINE_BUCKETS` points, first and final kept."""
    keep = np.isfinite(times_s) & np.isfinite(values)
    t, (v,) = _unique_times(times_s[keep], values[keep])
    idx = minmax_indices(v, LINE_BUCKETS)
    return {"t": t[idx].astype("int64").tolist(), "v": _clean(v[idx], digits)}


def steps(times_s: np.ndarray, values: np.ndarray, digits: int = 8) -> dict[str, list]:
    """A step series (the position) as its change points plus the final point: exact, and tiny for a strategy
    that trades now and then; falls back to `line` when it changes more often than that can show."""
    keep = np.isfinite(times_s) & np.isfinite(values)
    t, (v,) = _unique_times(times_s[keep], values[keep])
    if len(v) == 0:
        return {"t": [], "v": []}
    idx = np.flatnonzero(np.concatenate([[True], v[1:] != v[:-1]]))
    if len(idx) > 2 * LINE_BUCKETS:
        return line(t, v, digits)
    idx = np.unique(np.append(idx, len(v) - 1))
    return {"t": t[idx].astype("int64").tolist(), "v": _clean(v[idx], digits)}


def markers(orders: Sequence[Mapping[str, Any]], bar_times_s: Sequence[int]) -> dict[str, Any]:
    """Filled buys, filled sells and blocked orders, each placed on the candle whose bucket holds its time.

    The marker time must be a time the price series has, or the library cannot place it; an order before the
    first or after the last candle goes to the nearest one.
    """
    chosen = [o for o in orders if o.get("status") in ("filled", "blocked")]
    total = len(chosen)
    chosen = chosen[-MAX_MARKERS:]
    out = []
    timed = [(o, ts.timestamp()) for o in chosen if (ts := _order_time(o.get("ts"))) is not None]
    if bar_times_s and timed:
        grid = np.asarray(bar_times_s, dtype="int64")
        pos = np.searchsorted(grid, np.array([t for _, t in timed]), side="right") - 1
        slots = grid[np.clip(pos, 0, len(grid) - 1)].tolist()
        for (o, _), slot in zip(timed, slots):
            out.append(
                {
                    "t": slot,
                    "side": "buy" if o.get("side") == "buy" else "sell",
                    "status": o.get("status"),
                    "qty": _num(o.get("qty")),
                    "price": _num(o.get("fill_price")),
                    "reason": "; ".join(str(r) for r in o.get("reasons") or [])[:200],
                }
            )
    out.sort(key=lambda m: m["t"])  # the library wants markers in time order
    return {"markers": out, "total": total}


def chart_script(payload: Mapping[str, Any]) -> str:
    """The `<script>` source that hands `payload` to the page. `</` is escaped so no text can end the script."""
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=True, allow_nan=False)
    return "window.PEAKTRADE_CHART=" + text.replace("</", "<\\/") + ";\n"


def sparkline_points(values: np.ndarray, points: int = SPARK_POINTS) -> list[float]:
    """About `points` equity values in time order for a sparkline (the last value always included)."""
    v = values[np.isfinite(values)]
    if len(v) > points:
        v = v[np.unique(np.append(np.linspace(0, len(v) - 1, points).round().astype("int64"), len(v) - 1))]
    return np.round(v, 6).tolist()


def sparkline_svg(values: Sequence[float], width: int = 100, height: int = 26) -> str:
    """A tiny inline SVG polyline; green if the last value is at or above the first, else red. Numbers only."""
    vals = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
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


def _order_time(value: Any) -> datetime | None:
    """orders.jsonl holds ISO text; `fromisoformat` is the fast path, `parse_ts` handles everything else."""
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            return parse_ts(value)
        return ts if ts.tzinfo is not None else parse_ts(value)
    return parse_ts(value)


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _unique_times(t: np.ndarray, *cols: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Sorted, strictly increasing times (the library's requirement); a repeated time keeps its last row."""
    if len(t) and not (np.diff(t) > 0).all():
        order = np.argsort(t, kind="stable")
        t = t[order]
        cols = tuple(c[order] for c in cols)
        last = np.append(t[1:] != t[:-1], True)
        t = t[last]
        cols = tuple(c[last] for c in cols)
    return t, cols
