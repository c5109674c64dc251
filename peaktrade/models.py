"""Plain data shared by the session's pure core: bars and orders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class Bar:
    """One closed OHLCV bar; `ts` is the bar's open time (aware UTC)."""

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(slots=True)
class Order:
    """A market order decided on a closed bar; filled (or not) at the next bar's open."""

    step: int
    ts: datetime
    symbol: str
    side: str  # "buy" | "sell"
    qty: float  # base units, > 0
    price: float  # decision price (the close it was decided on)
    reduces: bool  # True if it only reduces the open position
    status: str = "pending"  # pending | filled | blocked | rejected
    reasons: list[str] = field(default_factory=list)
    severity: str = "ok"
    fill_price: float | None = None
    fee: float = 0.0
    fill_ts: datetime | None = None
    exchange_verdict: str | None = None  # testnet: the exchange's answer to the validate-only order

    @property
    def notional(self) -> float:
        return self.qty * self.price

    @property
    def signed_qty(self) -> float:
        return self.qty if self.side == "buy" else -self.qty

    def record(self) -> dict:
        """The orders-log record (see docs/artifacts.md); `exchange_verdict` only when an exchange judged it."""
        out = {
            "ts": self.ts,
            "step": self.step,
            "symbol": self.symbol,
            "side": self.side,
            "qty": self.qty,
            "price": self.price,
            "notional": self.notional,
            "reduces": self.reduces,
            "status": self.status,
            "reasons": list(self.reasons),
            "severity": self.severity,
            "fill_price": self.fill_price,
            "fee": self.fee,
            "fill_ts": self.fill_ts,
        }
        if self.exchange_verdict is not None:
            out["exchange_verdict"] = self.exchange_verdict
        return out


TIMEFRAMES = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14_400, "1d": 86_400, "1w": 604_800}


def timeframe_seconds(timeframe: str) -> int:
    """Seconds per bar for `1m`, `5m`, `15m`, `30m`, `1h`, `4h`, `1d`, `1w`; ValueError otherwise."""
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        raise ValueError(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}") from None
