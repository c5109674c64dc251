"""Risk limits (the seeds' names), checked against the current portfolio plus the order. Pure.

- An order that only reduces exposure is never blocked.
- Severity per limit: `ok` below warning_threshold_factor × limit, `warning` from there, `breach` at the limit
  (value >= limit, as in the original system). A breach blocks the order when block_on_violation is true.
- Daily loss counts losses only (a profitable day never blocks), from the session's own ledger.
- Every verdict carries reason codes with limit and value: `max_total_exposure_exceeded: limit=500 value=640`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from peaktrade.config import RiskConfig

SEVERITY_RANK = {"ok": 0, "warning": 1, "breach": 2}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    severity: str  # ok | warning | breach
    reasons: tuple[str, ...] = ()
    details: tuple[dict, ...] = field(default=())  # {name, value, limit, ratio, severity} per limit checked


@dataclass(frozen=True)
class Portfolio:
    """What the risk check needs: positions (signed base units), mark prices, equity today."""

    positions: Mapping[str, float]
    prices: Mapping[str, float]
    equity: float
    day_start_equity: float


OK = Verdict(True, "ok")


def check_order(limits: RiskConfig, symbol: str, signed_qty: float, price: float, portfolio: Portfolio) -> Verdict:
    """Judge one order. Reducing orders are always allowed (with severity ok)."""
    if not limits.enabled:
        return OK
    current = portfolio.positions.get(symbol, 0.0)
    after = current + signed_qty
    if abs(after) <= abs(current) and (after == 0 or (after > 0) == (current > 0)):
        return OK  # reduces exposure (or closes): never blocked
    notional = abs(signed_qty) * price
    factor = limits.warning_threshold_factor
    details: list[dict] = []

    def judge(name: str, code: str, value: float, limit: float) -> None:
        if limit <= 0:
            return
        ratio = value / limit
        severity = "breach" if value >= limit else "warning" if value >= factor * limit else "ok"
        details.append(
            {"name": name, "code": code, "value": value, "limit": limit, "ratio": ratio, "severity": severity}
        )

    judge("max_order_notional", "max_order_notional_exceeded", notional, limits.max_order_notional)
    symbol_exposure = abs(after) * price
    judge(
        "max_symbol_exposure_notional",
        "max_symbol_exposure_exceeded",
        symbol_exposure,
        limits.max_symbol_exposure_notional,
    )
    total = symbol_exposure + sum(
        abs(q) * portfolio.prices.get(s, 0.0) for s, q in portfolio.positions.items() if s != symbol
    )
    judge("max_total_exposure_notional", "max_total_exposure_exceeded", total, limits.max_total_exposure_notional)
    if limits.max_open_positions > 0:
        open_after = sum(1 for s, q in portfolio.positions.items() if q and s != symbol) + (1 if after else 0)
        # A count limit: reaching it is fine, going over is the breach.
        ratio = open_after / limits.max_open_positions
        severity = (
            "breach"
            if open_after > limits.max_open_positions
            else ("warning" if open_after >= factor * limits.max_open_positions else "ok")
        )
        details.append(
            {
                "name": "max_open_positions",
                "code": "max_open_positions_exceeded",
                "value": float(open_after),
                "limit": float(limits.max_open_positions),
                "ratio": ratio,
                "severity": severity,
            }
        )
    loss = max(0.0, portfolio.day_start_equity - portfolio.equity)
    judge("max_daily_loss_abs", "max_daily_loss_abs_reached", loss, limits.max_daily_loss_abs)
    if limits.max_daily_loss_pct > 0 and portfolio.day_start_equity > 0:
        judge(
            "max_daily_loss_pct",
            "max_daily_loss_pct_reached",
            loss / portfolio.day_start_equity * 100.0,
            limits.max_daily_loss_pct,
        )
    if limits.min_order_notional > 0 and notional < limits.min_order_notional:
        details.append(
            {
                "name": "min_order_notional",
                "code": "min_order_notional_below_limit",
                "value": notional,
                "limit": limits.min_order_notional,
                "ratio": notional / limits.min_order_notional,
                "severity": "breach",
            }
        )
    if not details:
        return OK
    severity = max((d["severity"] for d in details), key=SEVERITY_RANK.__getitem__)
    reasons = tuple(
        f"{d['code'] if d['severity'] == 'breach' else d['name'] + '_warning'}: "
        f"limit={_num(d['limit'])} value={_num(d['value'])}"
        for d in details
        if d["severity"] != "ok"
    )
    allowed = not (severity == "breach" and limits.block_on_violation)
    return Verdict(allowed, severity, reasons, tuple(details))


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def config_problems(limits: RiskConfig) -> list[str]:
    """Inconsistent limits (for health checks and `session run --dry-run`)."""
    out = []
    if 0 < limits.max_total_exposure_notional < limits.max_symbol_exposure_notional:
        out.append("max_symbol_exposure_notional is larger than max_total_exposure_notional: it can never bind")
    if 0 < limits.max_order_notional < limits.min_order_notional:
        out.append("min_order_notional is larger than max_order_notional: every opening order is blocked")
    return out
