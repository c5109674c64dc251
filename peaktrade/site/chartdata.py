"""Data for the run page's interactive chart and the Live-Track sparklines. Pure: arrays in, small dicts out.

The interactive chart (templates/site/static/runchart.js, drawn by the vendored lightweight-charts) reads one
`<script>` per run that assigns `window.PEAKTRADE_CHART`: a `<script>` works from `file://`, where `fetch()` of a
neighbouring JSON file is blocked.

Its size is bounded whatever the run's length: the bars are cut into at most `CANDLES` buckets of equal bar count,
and every series is given on that one grid, so the panes line up and hovering one time shows every value:

- price: a candle per bucket (open of its first bar, highest high, lowest low, close of its last bar);
- equity and position: the value at the bucket's last bar;
- drawdown: the bucket's worst (largest) drawdown, so no drawdown spike is hidden;
- orders: per bucket, one marker each for buys filled, sells filled and orders blocked, with their count.

A bucket's time is that of its *last* bar, so the final point is always the run's final bar, value and time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from peaktrade.clock import parse_ts
from peaktrade.coerce import is_number, strict_json

CANDLES = 400  # ~3 px per candle on a 1280 px page
SPARK_POINTS = 48


def _clean(values: np.ndarray, digits: int) -> list[float | None]:
    """Rounded (short JSON), non-finite values as None (JSON has no NaN); vectorized: this runs per run page."""
    with np.errstate(over="ignore", invalid="ignore"):  # rounding 1e300 to 8 places overflows: keep such values
        out = np.where(np.abs(values) < 1e15, np.round(values, digits), values).tolist()
    if np.isfinite(values).all():
        return out
    return [v if math.isfinite(v) else None for v in out]


def _ffill(values: np.ndarray) -> np.ndarray:
    """Carry the last finite value over gaps (legacy files have rows without a price); leading gaps stay NaN."""
    ok = np.isfinite(values)
    if ok.all() or not ok.any():
        return values
    idx = np.where(ok, np.arange(len(values)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = values[idx]
    out[: int(np.argmax(ok))] = np.nan
    return out


def series(times_s: np.ndarray, cols: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Every chart series on one grid of at most `CANDLES` buckets (see the module doc).

    `cols` holds float arrays as long as `times_s`: open, high, low, close, price, equity, drawdown,
    position_size (NaN where missing). Rows without a time are dropped; a repeated time keeps its last row.
    """
    keep = np.isfinite(times_s)
    t, picked = _unique_times(times_s[keep], *(np.asarray(cols[k], dtype="float64")[keep] for k in _COLS))
    c = dict(zip(_COLS, picked))
    n = len(t)
    if n == 0:
        empty: dict[str, Any] = {k: [] for k in ("t", "o", "h", "l", "c", "equity", "drawdown", "position")}
        return {**empty, "bars_per_candle": 0}
    close = _ffill(np.where(np.isfinite(c["close"]), c["close"], c["price"]))
    opens = np.where(np.isfinite(c["open"]), c["open"], close)
    highs = np.fmax(np.fmax(c["high"], opens), close)
    lows = np.fmin(np.fmin(c["low"], opens), close)
    size = max(1, -(-n // CANDLES))
    starts = np.arange(0, n, size)
    ends = np.minimum(starts + size, n) - 1
    return {
        "t": t[ends].astype("int64").tolist(),
        "o": _clean(opens[starts], 8),
        "h": _clean(np.fmax.reduceat(highs, starts), 8),
        "l": _clean(np.fmin.reduceat(lows, starts), 8),
        "c": _clean(close[ends], 8),
        "equity": _clean(_ffill(c["equity"])[ends], 2),
        "drawdown": _clean(np.fmax.reduceat(c["drawdown"], starts), 6),
        "position": _clean(_ffill(c["position_size"])[ends], 8),
        "bars_per_candle": size,
    }


_COLS = ("open", "high", "low", "close", "price", "equity", "drawdown", "position_size")


def markers(orders: Sequence[Mapping[str, Any]], grid_s: Sequence[int]) -> dict[str, Any]:
    """Filled buys, filled sells and blocked orders, counted per bucket of the grid (bucket times are their last
    bar's). A fill is placed at its fill time (`fill_ts`, the next bar's open), else at its decision time; an
    order after the last bucket goes to the last one. One marker per bucket and kind keeps a busy run readable."""
    total = {"buy": 0, "sell": 0, "blocked": 0}
    rows: list[tuple[str, float, Mapping[str, Any]]] = []
    for o in orders:
        status = o.get("status")
        if status == "filled":
            kind = "buy" if o.get("side") == "buy" else "sell"
            ts = _order_time(o.get("fill_ts")) or _order_time(o.get("ts"))
        elif status == "blocked":
            kind, ts = "blocked", _order_time(o.get("ts"))
        else:
            continue
        if ts is not None:
            rows.append((kind, ts.timestamp(), o))
            total[kind] += 1
    out: list[dict[str, Any]] = []
    if grid_s and rows:
        grid = np.asarray(grid_s, dtype="int64")
        slots = grid[np.minimum(np.searchsorted(grid, np.array([r[1] for r in rows]), side="left"), len(grid) - 1)]
        merged: dict[tuple[int, str], dict[str, Any]] = {}
        for (kind, _, o), slot in zip(rows, slots.tolist()):
            m = merged.get((slot, kind))
            if m is None:
                m = merged[(slot, kind)] = {"t": slot, "kind": kind, "n": 0, "qty": 0.0, "value": 0.0, "reason": ""}
            m["n"] += 1
            qty, price = _num(o.get("qty")), _num(o.get("fill_price"))
            if qty is not None:
                m["qty"] += qty
                if price is not None:
                    m["value"] += qty * price
            if kind == "blocked" and not m["reason"]:
                m["reason"] = "; ".join(str(r) for r in o.get("reasons") or [])[:200]
        for m in merged.values():
            m["price"] = round(m["value"] / m["qty"], 8) if m["qty"] and m["value"] else None  # average fill
            m["qty"] = round(m["qty"], 10)
            del m["value"]
            out.append(m)
    out.sort(key=lambda m: (m["t"], m["kind"]))  # the library wants markers in time order
    return {"markers": out, "totals": total}


def chart_script(payload: Mapping[str, Any]) -> str:
    """The `<script>` source that hands `payload` to the page. `</` is escaped so no text can end the script."""
    text = strict_json(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    return "window.PEAKTRADE_CHART=" + text.replace("</", "<\\/") + ";\n"


def sparkline_points(values: np.ndarray, points: int = SPARK_POINTS) -> list[float]:
    """About `points` equity values in time order for a sparkline (the last value always included)."""
    v = values[np.isfinite(values)]
    if len(v) > points:
        v = v[np.unique(np.append(np.linspace(0, len(v) - 1, points).round().astype("int64"), len(v) - 1))]
    return np.round(v, 6).tolist()


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
    return float(value) if is_number(value) else None


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
