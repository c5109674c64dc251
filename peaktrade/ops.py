"""`ops orders` and `ops portfolio` (seed Phase 51): orders from forward signals, and the portfolio with risk.

Pure parts (`build_orders`, `evaluate_portfolio`) take data and return data; the edges (`preview_orders`,
`portfolio_snapshot`) read signals, runs, tickers and balances, and write `reports/live/<name>_orders.csv`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade.atomic import write_text
from peaktrade.clock import iso, parse_ts
from peaktrade.config import RiskConfig, Settings
from peaktrade.errors import PeaktradeError, UsageError
from peaktrade.risk import Portfolio, check_order
from peaktrade.signals import Signal, SignalsError, read_signals

ORDER_COLUMNS = (
    "row",
    "symbol",
    "direction",
    "side",
    "qty",
    "price",
    "notional",
    "price_source",
    "risk",
    "reasons",
    "as_of",
    "strategy_key",
    "run_name",
)
ACTIVE_MODES = ("shadow", "paper", "testnet")


class OpsError(PeaktradeError):
    """An ops command could not get what it needs (exchange down and no fallback); exit 1."""


@dataclass
class PlannedOrder:
    row: int
    symbol: str
    direction: int
    side: str  # buy | sell | none
    qty: float
    price: float
    notional: float
    price_source: str
    risk: str  # ok | warning | breach | skipped | none
    reasons: list[str]
    as_of: str
    strategy_key: str
    run_name: str


@dataclass
class OrdersPreview:
    signals_file: str
    orders: list[PlannedOrder]
    risk_mode: str  # enforce | warn | skip
    violations: int
    output: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "signals_file": self.signals_file,
            "risk_mode": self.risk_mode,
            "violations": self.violations,
            "output": self.output,
            "notes": list(self.notes),
            "orders": [asdict(o) for o in self.orders],
        }


# -- pure ---------------------------------------------------------------------------------------------------


def build_orders(
    signals: list[Signal],
    prices: dict[str, tuple[float, str]],
    *,
    notional: float,
    limits: RiskConfig,
    portfolio: Portfolio,
    risk_mode: str,
) -> tuple[list[PlannedOrder], int]:
    """Market orders for the notional per signal (+1 buy, -1 sell, 0 close the position), each checked against
    the limits and the portfolio as the orders before it leave it. Returns the orders and the breach count."""
    positions = dict(portfolio.positions)
    marks = dict(portfolio.prices)
    violations = 0
    out = []
    for s in signals:
        price, source = prices[s.symbol]
        marks.setdefault(s.symbol, price)
        held = positions.get(s.symbol, 0.0)
        if s.direction == 0:
            signed = -held
        else:
            size = s.size_hint * notional if s.size_hint else notional
            signed = s.direction * size / price
        side = "buy" if signed > 0 else "sell" if signed < 0 else "none"
        risk, reasons = "none", []
        if side != "none" and risk_mode != "skip":
            snapshot = Portfolio(positions, marks, portfolio.equity, portfolio.day_start_equity)
            verdict = check_order(limits, s.symbol, signed, price, snapshot)
            risk, reasons = verdict.severity, list(verdict.reasons)
            if verdict.severity == "breach":
                violations += 1
        elif risk_mode == "skip" and side != "none":
            risk = "skipped"
        if side != "none" and risk != "breach":
            positions[s.symbol] = held + signed
        out.append(
            PlannedOrder(
                s.row,
                s.symbol,
                s.direction,
                side,
                abs(signed),
                price,
                abs(signed) * price,
                source,
                risk,
                reasons,
                s.as_of,
                s.strategy_key,
                s.run_name,
            )
        )
    return out, violations


@dataclass
class Position:
    symbol: str
    qty: float
    price: float
    source: str  # e.g. "session <id>" or "kraken balance"
    price_from: str

    @property
    def exposure(self) -> float:
        return abs(self.qty) * self.price


def evaluate_portfolio(
    positions: list[Position], limits: RiskConfig, *, daily_loss: float, starting_cash: float | None
) -> dict[str, Any]:
    """Exposure per symbol and total, open positions and daily loss against `[live_risk]`. Pure."""
    per_symbol: dict[str, float] = {}
    for p in positions:
        per_symbol[p.symbol] = per_symbol.get(p.symbol, 0.0) + p.exposure
    total = sum(per_symbol.values())
    open_positions = sum(1 for v in per_symbol.values() if v > 0)
    factor = limits.warning_threshold_factor
    checks = []

    def judge(name: str, value: float, limit: float, *, count: bool = False) -> None:
        if limit <= 0:
            return
        over = value > limit if count else value >= limit
        severity = "breach" if over else "warning" if value >= factor * limit else "ok"
        checks.append({"name": name, "value": round(value, 8), "limit": limit, "severity": severity})

    for symbol, exposure in sorted(per_symbol.items()):
        judge(f"max_symbol_exposure_notional[{symbol}]", exposure, limits.max_symbol_exposure_notional)
    judge("max_total_exposure_notional", total, limits.max_total_exposure_notional)
    judge("max_open_positions", float(open_positions), float(limits.max_open_positions), count=True)
    judge("max_daily_loss_abs", daily_loss, limits.max_daily_loss_abs)
    notes = []
    if limits.max_daily_loss_pct > 0:
        if starting_cash:
            judge("max_daily_loss_pct", daily_loss / starting_cash * 100.0, limits.max_daily_loss_pct)
        else:
            notes.append("max_daily_loss_pct not evaluated: give --starting-cash")
    rank = {"ok": 0, "warning": 1, "breach": 2}
    worst = max((c["severity"] for c in checks), key=rank.__getitem__, default="ok")
    return {
        "enabled": limits.enabled,
        "severity": worst if limits.enabled else "ok",
        "exposure_per_symbol": {k: round(v, 8) for k, v in sorted(per_symbol.items())},
        "total_exposure": round(total, 8),
        "open_positions": open_positions,
        "daily_loss": round(daily_loss, 8),
        "checks": checks if limits.enabled else [],
        "notes": notes if limits.enabled else ["[live_risk].enabled is false"],
    }


# -- edges --------------------------------------------------------------------------------------------------


def preview_orders(
    settings: Settings,
    signals_path: Path,
    *,
    notional: float | None,
    risk_mode: str,
    offline: bool,
    output_dir: Path | None,
    now: datetime,
) -> OrdersPreview:
    """Read signals, price them, check them, write `<output_dir>/<name>_orders.csv`; the preview."""
    signals = read_signals(signals_path)
    amount = notional if notional is not None else settings.session.start_balance * settings.session.position_fraction
    if amount <= 0:
        raise UsageError(f"--notional {amount}: must be a positive amount of {settings.general.base_currency}")
    client = None if offline else _client(settings)
    held = session_positions(settings, now)
    notes: list[str] = []
    if client is not None:
        for s in signals:
            if not _has_symbol(client, s.symbol):
                raise SignalsError(
                    f"{signals_path}: row {s.row}, column 'symbol': unknown symbol {s.symbol!r} on "
                    f"{settings.exchange.id}; use a symbol the exchange lists, e.g. BTC/EUR"
                )
    prices: dict[str, tuple[float, str]] = {}
    local = last_bar_prices(settings)
    for s in signals:
        if s.symbol in prices:
            continue
        if client is not None:
            prices[s.symbol] = (_ticker(client, s.symbol), f"{settings.exchange.id} ticker")
        elif s.symbol in local:
            price, run_id = local[s.symbol]
            prices[s.symbol] = (price, f"last bar of run {run_id}")
        else:
            raise SignalsError(
                f"{signals_path}: row {s.row}, column 'symbol': no local run has bars for {s.symbol!r} to price "
                f"it offline; run a session for it, or drop --offline to use the exchange ticker"
            )
    equity = sum(p.exposure for p in held) or settings.session.start_balance
    portfolio = Portfolio({p.symbol: p.qty for p in held}, {p.symbol: p.price for p in held}, equity, equity)
    orders, violations = build_orders(
        signals, prices, notional=amount, limits=settings.live_risk, portfolio=portfolio, risk_mode=risk_mode
    )
    if held:
        notes.append(f"checked against {len(held)} open position(s) of running sessions")
    name = signals_path.name.removesuffix(".csv").removesuffix("_signals") or "signals"
    out_dir = Path(output_dir) if output_dir else Path(settings.paths.reports_dir) / "live"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}_orders.csv"
    write_text(path, _orders_csv(orders))
    return OrdersPreview(str(signals_path), orders, risk_mode, violations, str(path), notes)


def _orders_csv(orders: list[PlannedOrder]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ORDER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for o in orders:
        row = asdict(o)
        row["reasons"] = "; ".join(o.reasons)
        row["qty"] = f"{o.qty:.8f}"
        row["notional"] = f"{o.notional:.2f}"
        writer.writerow(row)
    return buf.getvalue()


def portfolio_snapshot(
    settings: Settings, *, starting_cash: float | None, with_risk: bool, now: datetime
) -> dict[str, Any]:
    """Open positions of running sessions plus (with credentials) exchange balances, marked, with risk."""
    from peaktrade.exchange import ExchangeRejected, ExchangeUnavailable, credentials

    if starting_cash is not None and starting_cash <= 0:
        raise UsageError(f"--starting-cash {starting_cash}: must be a positive amount")
    positions = session_positions(settings, now)
    notes: list[str] = []
    cash: dict[str, float] = {}
    base = settings.general.base_currency
    creds = credentials(settings.exchange)
    client = None
    if creds is None:
        notes.append(
            f"no exchange balances: {settings.exchange.api_key_env}/{settings.exchange.api_secret_env} not set"
        )
    else:
        from peaktrade.exchange import ExchangeClient

        client = ExchangeClient(settings.exchange, creds)
        try:
            for currency, amount in client.balances().items():
                if currency == base:
                    cash[currency] = amount
                else:
                    positions.append(Position(f"{currency}/{base}", amount, 0.0, "exchange balance", ""))
        except (ExchangeUnavailable, ExchangeRejected) as exc:
            notes.append(f"exchange balances unavailable: {exc}")
    if positions:
        _mark(positions, client or _client(settings), last_bar_prices(settings), notes)
    daily_loss = sum(loss for _run, loss in session_daily_losses(settings, now))
    out: dict[str, Any] = {
        "generated_at": iso(now),
        "base_currency": base,
        "positions": [asdict(p) | {"exposure": round(p.exposure, 8)} for p in positions],
        "cash": cash,
        "starting_cash": starting_cash,
        "notes": notes,
    }
    if with_risk:
        out["risk"] = evaluate_portfolio(
            positions, settings.live_risk, daily_loss=daily_loss, starting_cash=starting_cash
        )
    return out


def _mark(positions: list[Position], client: Any, local: dict[str, tuple[float, str]], notes: list[str]) -> None:
    from peaktrade.exchange import ExchangeRejected, ExchangeUnavailable

    tickers: dict[str, float] = {}
    down: str | None = None
    for p in positions:
        price = None
        if client is not None and down is None:
            try:
                price = tickers.get(p.symbol) or client.ticker_price(p.symbol)
                tickers[p.symbol] = price
                p.price_from = "ticker"
            except ExchangeUnavailable as exc:
                down = str(exc)
                notes.append(f"exchange unreachable, marked at the last bar instead: {exc}")
            except ExchangeRejected as exc:
                notes.append(f"{p.symbol}: no ticker ({exc.code})")
        if price is None:
            if p.symbol in local:
                price, run_id = local[p.symbol]
                p.price_from = f"last bar of run {run_id}"
            elif p.price:
                price = p.price
            else:
                price = 0.0
                p.price_from = "no price"
                notes.append(f"{p.symbol}: no price from the exchange or a local run; counted as 0")
        p.price = price


def session_positions(settings: Settings, now: datetime) -> list[Position]:
    """Open positions of running shadow/paper/testnet sessions, from the newest event of each run."""
    out = []
    for entry, last in _running_runs(settings, now):
        qty = last.get("position_size") or 0.0
        close = last.get("close") or 0.0
        if qty:
            out.append(
                Position(
                    str(entry.meta.get("symbol")), float(qty), float(close), f"session {entry.run_id}", "last bar"
                )
            )
    return out


def session_daily_losses(settings: Settings, now: datetime) -> list[tuple[str, float]]:
    """Per running session: the loss since the start of its newest bar's UTC day (losses only)."""
    from peaktrade.artifacts import RunReader

    out = []
    for entry, last in _running_runs(settings, now):
        equity = last.get("equity")
        day = parse_ts(last.get("ts_bar"))
        if equity is None or day is None:
            continue
        try:
            table = RunReader(entry.path).events(columns=["ts_bar", "equity"]).to_pylist()
        except PeaktradeError:
            continue
        start = next((r["equity"] for r in table if r["ts_bar"] and r["ts_bar"].date() == day.date()), equity)
        out.append((entry.run_id, max(0.0, float(start) - float(equity))))
    return out


def last_bar_prices(settings: Settings) -> dict[str, tuple[float, str]]:
    """Newest close per symbol over all local runs (newest run first): {symbol: (close, run_id)}."""
    from peaktrade.artifacts import RunReader, scan_runs

    out: dict[str, tuple[float, str]] = {}
    for entry in scan_runs(Path(settings.paths.runs_dir)).runs:
        symbol = entry.meta.get("symbol")
        if not isinstance(symbol, str) or symbol in out:
            continue
        try:
            last = RunReader(entry.path).last_event()
        except PeaktradeError:
            continue
        close = last.get("close") if last else None
        if isinstance(close, int | float) and close > 0:
            out[symbol] = (float(close), entry.run_id)
    return out


def _running_runs(settings: Settings, now: datetime) -> list[tuple[Any, dict[str, Any]]]:
    from peaktrade.artifacts import RunReader, scan_runs
    from peaktrade.liveness import RUNNING, writer_state
    from peaktrade.monitoring import stale_after_seconds

    mon = settings.live_monitoring
    out = []
    for entry in scan_runs(Path(settings.paths.runs_dir)).runs:
        meta = entry.meta
        if meta.get("mode") not in ACTIVE_MODES:
            continue
        stale = stale_after_seconds(str(meta.get("timeframe")), mon.stale_after_bars, mon.stale_min_seconds)
        if writer_state(meta, now, stale) != RUNNING:
            continue
        try:
            last = RunReader(entry.path).last_event()
        except PeaktradeError:
            continue
        if last:
            out.append((entry, last))
    return out


def _client(settings: Settings) -> Any:
    from peaktrade.exchange import ExchangeClient, credentials

    return ExchangeClient(settings.exchange, credentials(settings.exchange))


def _has_symbol(client: Any, symbol: str) -> bool:
    from peaktrade.exchange import ExchangeRejected, ExchangeUnavailable

    try:
        return client.has_symbol(symbol)
    except (ExchangeUnavailable, ExchangeRejected) as exc:
        raise OpsError(f"{exc}; or price the signals from local runs with --offline") from None


def _ticker(client: Any, symbol: str) -> float:
    from peaktrade.exchange import ExchangeRejected, ExchangeUnavailable

    try:
        return client.ticker_price(symbol)
    except (ExchangeUnavailable, ExchangeRejected) as exc:
        raise OpsError(f"{exc}; or price the signals from local runs with --offline") from None
