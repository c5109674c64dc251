"""The session's pure core: one closed bar in, one event row and the orders it touched out.

Order of work per bar t (no look-ahead: a decision on bar t uses bars <= t only and fills on bar t+1):
1. fill the orders decided on bar t-1 at this bar's open ± slippage, fee = fee_rate × notional;
2. mark the ledger at this bar's close;
3. ask the strategy for its signal on this closed bar;
4. on a signal change, size the target (position_fraction × equity / close), create market orders from the
   current position to it, and put each opening order through the risk limits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from peaktrade.config import RiskConfig
from peaktrade.execution import Executor, SimulatedExecutor
from peaktrade.ledger import Ledger
from peaktrade.models import Bar, Order
from peaktrade.risk import SEVERITY_RANK, Portfolio, check_order
from peaktrade.strategies.base import Strategy

_NO_ORDERS: tuple[Order, ...] = ()


@dataclass(frozen=True)
class EngineConfig:
    symbol: str
    start_balance: float
    position_fraction: float
    fee_rate: float
    slippage_bps: float
    allow_short: bool
    risk: RiskConfig


class Engine:
    def __init__(self, cfg: EngineConfig, strategy: Strategy, executor: Executor | None = None):
        self.cfg = cfg
        self.strategy = strategy
        self.executor = executor or SimulatedExecutor()
        self.ledger = Ledger(cfg.start_balance)
        self.step = 0
        self.signal = 0
        self.pending: list[Order] = []
        self.day = None
        self.day_start_equity = cfg.start_balance
        self.num_orders = self.num_filled = self.num_blocked = self.num_rejected = 0
        self._slip = cfg.slippage_bps / 10_000.0

    def warm_up(self, history: Iterable[Bar]) -> None:
        """Show the strategy bars from before the session, without trading or counting them. The engine's own
        signal stays flat, so the first counted bar acts on whatever the warmed-up strategy wants."""
        update = self.strategy.update
        for bar in history:
            update(bar)

    def on_bar(self, bar: Bar, now: datetime) -> tuple[dict, tuple[Order, ...] | list[Order]]:
        """Process one closed bar; returns the event row and the orders filled, rejected or decided on it."""
        led = self.ledger
        touched: list[Order] | tuple[Order, ...] = _NO_ORDERS
        filled = rejected = 0
        day = bar.ts.date()
        if day != self.day:
            self.day = day
            self.day_start_equity = led.equity if self.step else self.cfg.start_balance
        if self.pending:
            touched = []
            for order in self.pending:
                self._fill(order, bar)
                touched.append(order)
                if order.status == "filled":
                    filled += 1
                else:
                    rejected += 1
            self.pending = []
        led.mark(bar.close)
        signal = self.strategy.update(bar)
        if not self.cfg.allow_short and signal < 0:
            signal = 0
        changed = signal != self.signal
        generated = blocked = 0
        reasons = ""
        severity = "ok"
        if changed:
            self.signal = signal
            decided = self._decide(signal, bar)
            if decided:
                touched = [*touched, *decided]
                generated = len(decided)
                notes = []
                for order in decided:
                    if order.status == "blocked":
                        blocked += 1
                    else:
                        self.executor.submit(order)
                        if order.status == "rejected":
                            rejected += 1
                        else:
                            self.pending.append(order)
                    notes += order.reasons
                    if SEVERITY_RANK[order.severity] > SEVERITY_RANK[severity]:
                        severity = order.severity
                reasons = "; ".join(notes)
        self.num_orders += generated
        self.num_filled += filled
        self.num_blocked += blocked
        self.num_rejected += rejected
        pos = led.position
        close = bar.close
        equity = led.cash + pos * close
        peak = led.peak_equity
        row = {
            "step": self.step,
            "ts_bar": bar.ts,
            "ts_event": now,
            "open": bar.open,
            "high": bar.high,
            "low": bar.low,
            "close": close,
            "volume": bar.volume,
            "price": close,
            "signal": signal,
            "signal_changed": changed,
            "position_size": pos,
            "avg_entry_price": led.avg_entry if pos else None,
            "cash": led.cash,
            "equity": equity,
            "realized_pnl": led.realized_pnl,
            "unrealized_pnl": pos * (close - led.avg_entry) if pos else 0.0,
            "fees_paid": led.fees_paid,
            "drawdown": (peak - equity) / peak if peak > 0 and equity < peak else 0.0,
            "orders_generated": generated,
            "orders_filled": filled,
            "orders_rejected": rejected,
            "orders_blocked": blocked,
            "risk_allowed": blocked == 0,
            "risk_reasons": reasons,
            "risk_severity": severity,
        }
        self.step += 1
        return row, touched

    def finish(self) -> list[Order]:
        """End of data: orders still waiting for a next bar are rejected (never silently dropped)."""
        left, self.pending = self.pending, []
        for order in left:
            order.status = "rejected"
            order.reasons.append("session_ended_before_fill")
        self.num_rejected += len(left)
        return left

    # -- internals ------------------------------------------------------------------------------------------

    def _decide(self, signal: int, bar: Bar) -> list[Order]:
        led = self.ledger
        price = bar.close
        target = signal * self.cfg.position_fraction * max(led.equity, 0.0) / price if price > 0 else 0.0
        pos = led.position
        orders: list[Order] = []
        if pos and (target == 0 or (target > 0) != (pos > 0)):  # close first: an exit is its own order
            orders.append(
                Order(self.step, bar.ts, self.cfg.symbol, "sell" if pos > 0 else "buy", abs(pos), price, True)
            )
            pos = 0.0
        delta = target - pos
        if abs(delta) * price > 1e-9:
            reduces = abs(target) < abs(pos) and (target == 0 or (target > 0) == (pos > 0))
            order = Order(
                self.step, bar.ts, self.cfg.symbol, "buy" if delta > 0 else "sell", abs(delta), price, reduces
            )
            if not reduces:
                self._risk(order, pos_before=pos)
            orders.append(order)
        return orders

    def _risk(self, order: Order, pos_before: float) -> None:
        led = self.ledger
        portfolio = Portfolio(
            {order.symbol: pos_before}, {order.symbol: order.price}, led.equity, self.day_start_equity
        )
        verdict = check_order(self.cfg.risk, order.symbol, order.signed_qty, order.price, portfolio)
        order.severity = verdict.severity
        order.reasons = list(verdict.reasons)
        if not verdict.allowed:
            order.status = "blocked"

    def _fill(self, order: Order, bar: Bar) -> None:
        led = self.ledger
        buy = order.side == "buy"
        price = bar.open * (1.0 + self._slip if buy else 1.0 - self._slip)
        qty = order.qty
        if buy and not order.reduces and led.position >= 0:
            # Long without margin: never spend more cash than there is (the open can gap above the decision).
            affordable = led.cash / (price * (1.0 + self.cfg.fee_rate)) if led.cash > 0 else 0.0
            if qty > affordable:
                qty = affordable
                order.reasons.append("qty_reduced_to_available_cash")
        if order.reduces:
            qty = min(qty, abs(led.position))
        if qty * price <= 1e-9:
            order.status = "rejected"
            order.reasons.append("insufficient_cash" if buy else "nothing_to_sell")
            return
        fee = self.cfg.fee_rate * qty * price
        led.apply_fill(qty if buy else -qty, price, fee)
        order.qty = qty
        order.status = "filled"
        order.fill_price = price
        order.fee = fee
        order.fill_ts = bar.ts
