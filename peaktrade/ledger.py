"""The paper ledger: cash, position, average entry, realized/unrealized PnL, fees, equity, drawdown.

Pure. Invariants (property-tested): equity = cash + position × price, and
equity = start_balance + realized_pnl + unrealized_pnl (realized PnL is net of fees).
"""

from __future__ import annotations

from dataclasses import dataclass

_EPS = 1e-12


@dataclass(slots=True)
class Ledger:
    start_balance: float
    cash: float = 0.0
    position: float = 0.0
    avg_entry: float = 0.0
    realized_pnl: float = 0.0
    fees_paid: float = 0.0
    mark_price: float = 0.0
    peak_equity: float = 0.0
    max_drawdown: float = 0.0

    def __post_init__(self) -> None:
        self.cash = self.start_balance
        self.peak_equity = self.start_balance

    @property
    def equity(self) -> float:
        return self.cash + self.position * self.mark_price

    @property
    def unrealized_pnl(self) -> float:
        return self.position * (self.mark_price - self.avg_entry) if self.position else 0.0

    @property
    def drawdown(self) -> float:
        """(peak − equity) / peak as a positive fraction; 0 at a new high."""
        peak = self.peak_equity
        return max(0.0, (peak - self.equity) / peak) if peak > 0 else 0.0

    def apply_fill(self, qty: float, price: float, fee: float) -> float:
        """Book a fill of signed `qty` at `price` paying `fee`; returns the realized PnL of this fill (net of fee)."""
        pos = self.position
        realized = -fee
        if pos == 0 or (pos > 0) == (qty > 0):
            new_pos = pos + qty
            self.avg_entry = (self.avg_entry * abs(pos) + price * abs(qty)) / abs(new_pos)
        else:
            closed = min(abs(qty), abs(pos))
            realized += closed * (price - self.avg_entry) * (1.0 if pos > 0 else -1.0)
            new_pos = pos + qty
            if abs(new_pos) <= _EPS * max(1.0, abs(pos)):
                new_pos = 0.0
                self.avg_entry = 0.0
            elif (new_pos > 0) != (pos > 0):  # flipped through zero: the rest opens at this price
                self.avg_entry = price
        self.position = new_pos
        self.cash -= qty * price + fee
        self.fees_paid += fee
        self.realized_pnl += realized
        return realized

    def mark(self, price: float) -> None:
        """Mark the position at `price` and update peak equity and max drawdown."""
        self.mark_price = price
        equity = self.cash + self.position * price
        if equity > self.peak_equity:
            self.peak_equity = equity
        elif self.peak_equity > 0:
            dd = (self.peak_equity - equity) / self.peak_equity
            if dd > self.max_drawdown:
                self.max_drawdown = dd
