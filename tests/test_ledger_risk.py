"""Property tests: ledger conservation and the equity identity; risk never accepts over a limit and never
blocks a reducing order."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from peaktrade.config import RiskConfig
from peaktrade.ledger import Ledger
from peaktrade.risk import Portfolio, check_order

prices = st.floats(min_value=1.0, max_value=100_000.0, allow_nan=False)
qtys = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False).filter(lambda q: abs(q) > 1e-6)
fills = st.lists(st.tuples(qtys, prices, st.floats(min_value=0.0, max_value=50.0)), max_size=40)


@given(start=st.floats(min_value=100.0, max_value=1e6), fills=fills, mark=prices)
@settings(max_examples=300, deadline=None)
def test_ledger_conservation_and_equity_identity(start: float, fills: list, mark: float) -> None:
    led = Ledger(start)
    for qty, price, fee in fills:
        led.apply_fill(qty, price, fee)
        led.mark(price)
        assert abs(led.equity - (led.cash + led.position * price)) < 1e-6 * max(1.0, abs(led.equity))
    led.mark(mark)
    scale = max(1.0, start, sum(abs(q) * p for q, p, _ in fills))
    # Conservation: nothing is created or lost: equity = start + realized (net of fees) + unrealized.
    assert abs(led.equity - (start + led.realized_pnl + led.unrealized_pnl)) < 1e-7 * scale
    assert abs(led.fees_paid - sum(f for _, _, f in fills)) < 1e-7 * scale
    assert led.max_drawdown >= 0


def test_ledger_round_trip_books_pnl_net_of_fees() -> None:
    led = Ledger(10_000.0)
    led.apply_fill(0.1, 40_000.0, 4.0)
    led.apply_fill(-0.1, 41_000.0, 4.1)
    assert led.position == 0 and led.avg_entry == 0
    assert abs(led.realized_pnl - (100.0 - 8.1)) < 1e-9 and abs(led.cash - 10_091.9) < 1e-9
    led.apply_fill(-0.2, 41_000.0, 0.0)  # open a short
    led.apply_fill(0.3, 40_000.0, 0.0)  # cover and flip long through zero
    assert abs(led.position - 0.1) < 1e-12 and led.avg_entry == 40_000.0
    assert abs(led.realized_pnl - (91.9 + 200.0)) < 1e-9


limits = st.builds(
    RiskConfig,
    max_order_notional=st.sampled_from([0.0, 100.0, 1000.0, 5000.0]),
    max_symbol_exposure_notional=st.sampled_from([0.0, 500.0, 2000.0]),
    max_total_exposure_notional=st.sampled_from([0.0, 800.0, 3000.0]),
    max_open_positions=st.sampled_from([0, 1, 2]),
    max_daily_loss_abs=st.sampled_from([0.0, 25.0, 500.0]),
    max_daily_loss_pct=st.sampled_from([0.0, 1.0, 5.0]),
    min_order_notional=st.sampled_from([0.0, 10.0]),
)
positions = st.dictionaries(st.sampled_from(["BTC/EUR", "ETH/EUR", "SOL/EUR"]), st.floats(-3, 3), max_size=3)


@given(
    limits=limits,
    positions=positions,
    qty=qtys,
    price=st.floats(min_value=1.0, max_value=5000.0),
    equity=st.floats(min_value=1000.0, max_value=20_000.0),
    day_start=st.floats(min_value=1000.0, max_value=20_000.0),
)
@settings(max_examples=500, deadline=None)
def test_risk_never_accepts_over_a_limit_and_never_blocks_reducing(
    limits: RiskConfig, positions: dict, qty: float, price: float, equity: float, day_start: float
) -> None:
    symbol = "BTC/EUR"
    prices = {s: price for s in [*positions, symbol]}
    pf = Portfolio(positions, prices, equity, day_start)
    verdict = check_order(limits, symbol, qty, price, pf)
    current = positions.get(symbol, 0.0)
    after = current + qty
    reducing = abs(after) <= abs(current) and (after == 0 or (after > 0) == (current > 0))
    if reducing:
        assert verdict.allowed
        return
    if not verdict.allowed:
        assert verdict.severity == "breach" and verdict.reasons
        assert all("limit=" in r and "value=" in r for r in verdict.reasons)
        return
    exposure = abs(after) * price
    total = exposure + sum(abs(q) * price for s, q in positions.items() if s != symbol)
    loss = max(0.0, day_start - equity)
    checks = [
        (limits.max_order_notional, abs(qty) * price),
        (limits.max_symbol_exposure_notional, exposure),
        (limits.max_total_exposure_notional, total),
        (limits.max_daily_loss_abs, loss),
        (limits.max_daily_loss_pct, loss / day_start * 100),
    ]
    for limit, value in checks:
        assert limit == 0 or value < limit
    if limits.max_open_positions:
        opened = sum(1 for s, q in positions.items() if q and s != symbol) + (1 if after else 0)
        assert opened <= limits.max_open_positions
    if limits.min_order_notional:
        assert abs(qty) * price >= limits.min_order_notional


def test_daily_profit_never_blocks_and_reason_format() -> None:
    lim = RiskConfig(max_daily_loss_abs=500.0, max_total_exposure_notional=500.0)
    rich = Portfolio({}, {"BTC/EUR": 100.0}, equity=20_000.0, day_start_equity=10_000.0)
    assert check_order(lim, "BTC/EUR", 1.0, 100.0, rich).allowed  # +10,000 today is not a loss
    verdict = check_order(lim, "BTC/EUR", 6.4, 100.0, rich)
    assert not verdict.allowed and verdict.reasons == ("max_total_exposure_exceeded: limit=500 value=640",)
    warn = check_order(lim, "BTC/EUR", 4.5, 100.0, rich)
    assert warn.allowed and warn.severity == "warning"
    assert warn.reasons == ("max_total_exposure_notional_warning: limit=500 value=450",)
    off = check_order(dataclasses.replace(lim, block_on_violation=False), "BTC/EUR", 6.4, 100.0, rich)
    assert off.allowed and off.severity == "breach"
