"""Chart data, sparklines, ids and number wording of the site: pure functions, checked on what a reader sees."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from peaktrade.charts import downsample_minmax, line_chart
from peaktrade.site import chartdata, fmt
from peaktrade.views import short_id


def test_downsampling_keeps_the_final_point() -> None:
    """The bug: the last value sat mid-bucket, neither min nor max, and vanished (wrong "last", wrong end time)."""
    n = 1_000
    xs = np.arange(n, dtype="float64")
    ys = np.sin(xs / 7.0) * 100
    ys[-1] = 1.2345  # neither the minimum nor the maximum of its bucket
    dx, dy = downsample_minmax(xs, ys, buckets=100)
    assert dx[-1] == n - 1 and dy[-1] == 1.2345 and dx[0] == 0
    svg = line_chart(xs * 60_000, ys, title="Position")
    assert "last 1.234" in svg and "1970-01-01 16:39 UTC" in svg  # 999 minutes after the epoch


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=3000), st.integers(1, 200))
def test_downsampling_keeps_ends_and_extremes(values: list[float], buckets: int) -> None:
    ys = np.asarray(values)
    xs = np.arange(len(ys), dtype="float64")
    dx, dy = downsample_minmax(xs, ys, buckets)
    assert dx[0] == 0 and dx[-1] == len(ys) - 1
    assert dy.max() == ys.max() and dy.min() == ys.min()
    assert (np.diff(dx) > 0).all()


def _cols(n: int, close: np.ndarray, **over: np.ndarray) -> dict[str, np.ndarray]:
    cols = {
        "open": close - 1,
        "high": close + 3,
        "low": close - 3,
        "close": close,
        "price": close,
        "equity": close / 4,
        "drawdown": np.zeros(n),
        "position_size": np.zeros(n),
    }
    cols.update(over)
    return cols


def test_chart_of_a_million_bars_stays_small_and_ends_on_the_final_bar() -> None:
    n = 1_000_000
    t = 1_735_689_600 + np.arange(n, dtype="float64") * 60
    close = 40_000 + np.cumsum(np.random.default_rng(7).normal(0, 5, n))
    dd = np.zeros(n)
    dd[123_457] = 0.25  # one spike inside a bucket: the drawdown pane must still show it
    grid = chartdata.series(t, _cols(n, close, drawdown=dd))
    assert len(grid["t"]) == chartdata.CANDLES and grid["bars_per_candle"] == 2_500
    assert grid["t"][-1] == int(t[-1]) and grid["c"][-1] == round(close[-1], 8)  # final bar: time and value
    assert grid["equity"][-1] == round(close[-1] / 4, 2)
    assert max(grid["h"]) == round(float((close + 3).max()), 8) and max(grid["drawdown"]) == 0.25
    assert all(len(grid[k]) == 400 for k in ("o", "h", "l", "c", "equity", "drawdown", "position"))
    orders = [
        {"ts": datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=i * 50), "status": "filled", "side": "buy"}
        for i in range(20_000)
    ]
    marks = chartdata.markers(orders, grid["t"])
    assert marks["totals"] == {"buy": 20_000, "sell": 0, "blocked": 0}
    assert len(marks["markers"]) <= chartdata.CANDLES and sum(m["n"] for m in marks["markers"]) == 20_000
    script = chartdata.chart_script({**grid, **marks})
    assert len(script) < 150_000  # a 1M-bar run does not make a multi-megabyte page


def test_markers_count_per_bucket_at_the_fill_time() -> None:
    grid = [0, 300, 600]  # bucket times are their last bar's: (..0], (0..300], (300..600]
    orders = [
        {
            "ts": "1970-01-01T00:04:00+00:00",
            "fill_ts": "1970-01-01T00:05:00+00:00",
            "status": "filled",
            "side": "sell",
            "qty": 0.5,
            "fill_price": 10.0,
        },
        {"ts": "1970-01-01T00:02:00+00:00", "status": "filled", "side": "sell", "qty": 1.5, "fill_price": 20.0},
        {"ts": "1970-01-01T00:00:00+00:00", "status": "blocked", "side": "buy", "reasons": ["max_order_notional"]},
        {"ts": "1970-01-01T00:00:10+00:00", "status": "rejected", "side": "buy"},
        {"ts": "1970-01-01T01:00:00+00:00", "status": "filled", "side": "buy", "qty": 1.0, "fill_price": 5.0},
        {"ts": "not a time", "status": "filled", "side": "buy"},
    ]
    out = chartdata.markers(orders, grid)
    assert [(m["t"], m["kind"], m["n"]) for m in out["markers"]] == [
        (0, "blocked", 1),
        (300, "sell", 2),
        (600, "buy", 1),
    ]
    sells = out["markers"][1]
    assert sells["qty"] == 2.0 and sells["price"] == 17.5  # the average fill price
    assert out["markers"][0]["reason"] == "max_order_notional"
    assert out["totals"] == {"buy": 1, "sell": 2, "blocked": 1}


def test_chart_script_cannot_end_the_script_element() -> None:
    text = chartdata.chart_script({"symbol": "</script><script>alert(1)</script>", "x": [1.5]})
    assert "</script>" not in text and text.startswith("window.PEAKTRADE_CHART=")
    assert json.loads(text[len("window.PEAKTRADE_CHART=") : -2])["symbol"].startswith("</script>")


def test_gaps_and_repeated_times_in_legacy_data() -> None:
    """Legacy runs: no OHLC columns, rows without a price, a repeated time, rows out of order."""
    t = np.array([0, 60, 60, np.nan, 180, 120], dtype="float64")
    price = np.array([1.0, 2.0, 3.0, 4.0, np.nan, 5.0])
    nan = np.full(6, np.nan)
    cols = {k: nan for k in ("open", "high", "low", "close", "drawdown", "position_size")}
    out = chartdata.series(t, {**cols, "price": price, "equity": price * 10})
    assert out["t"] == [0, 60, 120, 180]
    assert out["c"] == [1.0, 3.0, 5.0, 5.0]  # the gap at 180 carries the last price
    assert out["o"] == out["c"] and out["h"] == out["c"] and out["l"] == out["c"]
    assert out["equity"] == [10.0, 30.0, 50.0, 50.0] and out["drawdown"] == [None] * 4
    assert chartdata.series(np.array([]), {k: np.array([]) for k in (*cols, "price", "equity")})["t"] == []


def test_sparkline() -> None:
    points = chartdata.sparkline_points(np.linspace(100, 200, 10_000))
    assert len(points) <= chartdata.SPARK_POINTS + 1 and points[-1] == 200.0
    svg = fmt.sparkline_svg(points)
    assert svg.startswith('<svg class="spark"') and "#15803d" in svg  # rising: green
    assert "#b91c1c" in fmt.sparkline_svg([3, 2, 1])
    assert fmt.sparkline_svg([1.0]) == "" and fmt.sparkline_svg([]) == ""


def test_short_ids_keep_the_distinguishing_end() -> None:
    a, b = "session_20261121_080645_shadow_34fff7", "session_20261121_080645_shadow_9a0b1c"
    assert short_id(a) == "…080645_shadow_34fff7" and short_id(a) != short_id(b)
    assert short_id("short_id") == "short_id"
    assert short_id("20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002", 26) == "…ETH-EUR_1m_bbbb0002"


def test_numbers_as_an_operator_reads_them() -> None:
    assert fmt.metric_text("max_drawdown", 0.04351603) == "4.35%"
    assert fmt.metric_text("realized_pnl", 1234.5, "EUR") == "+1,234.50 EUR"
    assert fmt.metric_text("final_equity", 10234.5, "EUR") == "10,234.50 EUR"
    assert fmt.metric_text("return_pct", 2.5) == "+2.50%"
    assert fmt.metric_text("fill_rate", 0.5) == "50.00%"
    assert fmt.metric_text("num_orders", 12000.0) == "12,000"
    assert fmt.limit_text("max_order_notional", 0.0, "EUR") == "off"
    assert fmt.limit_text("max_order_notional", 2500.0, "EUR") == "2,500.00 EUR"
    assert fmt.limit_text("max_open_positions", 0) == "off"
    assert fmt.limit_text("max_open_positions", 3) == "3"
    assert fmt.limit_text("max_daily_loss_pct", 5.0) == "5% of the day's starting equity"
    assert fmt.metric_label("num_blocked") == "Blocked orders" and fmt.metric_label("realized_pnl") == "Realized PnL"
    assert fmt.money_ccy(None, "EUR") == "-"
