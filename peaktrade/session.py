"""Run one trading session: market data -> engine -> run artifacts + registry record.

This module is the I/O edge around the pure `engine`: it reads the clock, paces bars, writes artifacts and
the registry, and turns Ctrl+C and SIGTERM into a clean `aborted` run.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from peaktrade import metrics as metrics_mod
from peaktrade import registry
from peaktrade.artifacts import RunWriter
from peaktrade.clock import iso, utcnow
from peaktrade.config import Settings
from peaktrade.engine import Engine, EngineConfig
from peaktrade.errors import DataError, SessionError, UsageError, WriteFailed
from peaktrade.ids import new_session_id
from peaktrade.marketdata import BarSource, csv_name_info, open_source
from peaktrade.models import timeframe_seconds
from peaktrade.risk import config_problems
from peaktrade.strategies import get as get_strategy

MODES = ("shadow", "paper", "testnet", "live")
_REGISTRY_HEARTBEAT_S = 30.0
_PROGRESS_EVERY = 1024  # bars between progress notices on a replay (a live or paced session: every bar)

# `notify(kind, info)` is how a running session tells its caller (the CLI prints) what happens, while it happens:
#   "warmup"   {"bars", "needed", "source"}            the strategy has seen its history
#   "started"  {"run_id", "run_dir", "session_id"}     the run directory exists: it can be monitored now
#   "progress" {"step", "ts_bar", "equity"}            throttled; the CLI shows it only on a terminal
Notify = Callable[[str, dict], None]


@dataclass(frozen=True)
class SessionPlan:
    """Everything a session needs, validated; `describe()` is what `--dry-run` prints."""

    mode: str
    strategy: str
    params: dict[str, Any]
    symbol: str
    timeframe: str
    source: str
    steps: int | None
    duration_minutes: float | None
    bar_delay: float
    start_balance: float
    position_fraction: float
    fee_rate: float
    slippage_bps: float
    allow_short: bool
    gap_policy: str
    max_gap_bars: int = 1440
    notes: str = ""
    tags: tuple[str, ...] = ()
    use_registry: bool = True
    cli_args: tuple[str, ...] = ()
    risk_overrides: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> list[tuple[str, str]]:
        stop = []
        if self.steps is not None:
            stop.append(f"{self.steps} bars")
        if self.duration_minutes is not None:
            stop.append(f"{self.duration_minutes:g} min")
        if not stop and self.source.startswith("synthetic"):
            stop.append("never: synthetic data does not end; a real run needs --steps N or --duration MINUTES")
        return [
            ("mode", self.mode),
            ("strategy", f"{self.strategy} {self.params}"),
            ("symbol", self.symbol),
            ("timeframe", self.timeframe),
            ("source", self.source),
            ("stops after", " or ".join(stop) or "end of data"),
            ("pacing", f"{self.bar_delay:g} s between bars" if self.bar_delay else "as fast as possible"),
            ("start balance", f"{self.start_balance:,.2f}"),
            ("position fraction", f"{self.position_fraction:g}"),
            ("fees / slippage", f"{self.fee_rate:g} of notional / {self.slippage_bps:g} bps"),
            ("shorts", "allowed" if self.allow_short else "off (sell signals go flat)"),
            ("registry", "yes" if self.use_registry else "no (--no-registry)"),
        ]


@dataclass
class SessionResult:
    run_id: str
    run_dir: Path
    session_id: str
    status: str
    error: str | None
    metrics: dict[str, Any]
    registry_path: Path | None


def make_plan(settings: Settings, *, dry_run: bool = False, **flags: Any) -> SessionPlan:
    """Merge CLI flags over `[session]` and validate the result (UsageError names the flag and the fix).

    A CSV replay takes its symbol and timeframe from the file name `<PAIR>_<minutes>.csv` unless the flags give
    them. `dry_run` accepts a plan without an end (it is only printed)."""
    s = settings.session
    pick = lambda name, default: default if flags.get(name) is None else flags[name]  # noqa: E731
    mode = pick("mode", s.mode)
    if mode not in MODES:
        raise UsageError(f"--mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "live":
        raise UsageError(
            "--mode live is refused: live trading is governance-locked in peaktrade; use shadow, paper or testnet"
        )
    if mode == "testnet":
        from peaktrade.exchange import require_credentials

        require_credentials(settings.exchange, why="--mode testnet (every order is validated by Kraken)")
    name = pick("strategy", s.strategy)
    spec = get_strategy(name)
    params = {**spec.defaults(), **settings.strategy.get(name, {})}
    source = pick("source", s.source)
    timeframe = pick("timeframe", s.timeframe)
    symbol = pick("symbol", s.symbol)
    if source.startswith("csv:") and len(source) > 4:
        file_symbol, file_timeframe = csv_name_info(source[4:])
        if flags.get("timeframe") is not None and flags["timeframe"] != file_timeframe:
            raise UsageError(
                f"--timeframe {flags['timeframe']}: {source[4:]} holds {file_timeframe} bars (its file name says "
                f"so); drop --timeframe or replay a <PAIR>_<minutes>.csv file of that interval"
            )
        timeframe = file_timeframe
        if flags.get("symbol") is None:
            if file_symbol is None:
                raise UsageError(f"{source[4:]}: cannot tell the symbol from the file name; give --symbol BASE/QUOTE")
            symbol = file_symbol
    try:
        timeframe_seconds(timeframe)
    except ValueError as exc:
        raise UsageError(f"--timeframe: {exc}") from None
    steps, duration, delay = flags.get("steps"), flags.get("duration"), pick("bar_delay", 0.0)
    if steps is not None and steps < 1:
        raise UsageError("--steps must be at least 1")
    if duration is not None and duration <= 0:
        raise UsageError("--duration must be a positive number of minutes")
    if delay < 0:
        raise UsageError("--bar-delay must be >= 0 seconds")
    if source.startswith("synthetic") and steps is None and duration is None and not dry_run:
        raise UsageError("synthetic data never ends: give --steps N or --duration MINUTES")
    fraction = pick("position_fraction", s.position_fraction)
    if not 0 < fraction <= 1:
        raise UsageError(f"--position-fraction {fraction}: must be > 0 and <= 1 (a fraction of equity)")
    balance = pick("start_balance", s.start_balance)
    if balance <= 0:
        raise UsageError(f"--start-balance {balance}: must be positive")
    if "/" not in symbol:
        raise UsageError(f"--symbol {symbol!r}: use BASE/QUOTE, e.g. BTC/EUR")
    return SessionPlan(
        mode=mode,
        strategy=name,
        params=params,
        symbol=symbol,
        timeframe=timeframe,
        source=source,
        steps=steps,
        duration_minutes=duration,
        bar_delay=delay,
        start_balance=balance,
        position_fraction=fraction,
        fee_rate=s.fee_rate,
        slippage_bps=s.slippage_bps,
        allow_short=s.allow_short,
        gap_policy=s.csv_gap_policy,
        max_gap_bars=s.max_gap_bars,
        notes=flags.get("notes") or "",
        tags=tuple(flags.get("tags") or ()),
        use_registry=not flags.get("no_registry", False),
        cli_args=tuple(flags.get("cli_args") or ()),
        risk_overrides=dict(flags.get("risk_overrides") or {}),
    )


def open_plan_source(plan: SessionPlan, now: datetime, settings: Settings | None = None, client=None) -> BarSource:
    """The plan's data source; a synthetic feed is laid out so that its last bar closes about now."""
    if plan.source == "kraken":
        from peaktrade.livefeed import KrakenLiveSource

        cfg = (settings or Settings()).exchange
        return KrakenLiveSource(client, plan.symbol, plan.timeframe, cfg.poll_seconds, plan.gap_policy)
    tf = timeframe_seconds(plan.timeframe)
    start = datetime.fromtimestamp((int(now.timestamp()) // tf) * tf, now.tzinfo)
    bars = [n for n in (plan.steps, _duration_bars(plan.duration_minutes, tf)) if n]
    if bars:
        start -= timedelta(seconds=tf * min(bars))
    return open_source(
        plan.source,
        timeframe=plan.timeframe,
        start=start,
        gap_policy=plan.gap_policy,
        max_gap_bars=plan.max_gap_bars,
    )


def _duration_bars(minutes: float | None, tf: int) -> int | None:
    return math.ceil(minutes * 60 / tf) if minutes else None


class _Stop:
    """Set by SIGINT/SIGTERM handlers (or another thread); the loop ends at the next bar boundary."""

    def __init__(self, event: threading.Event | None):
        self.event = event or threading.Event()
        self.reason: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig, reason in ((signal.SIGINT, "KeyboardInterrupt"), (signal.SIGTERM, "SIGTERM")):
                self._old[sig] = signal.signal(sig, lambda *_a, r=reason: self.set(r))
        return self

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def run(
    plan: SessionPlan,
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    on_bar: Callable[[dict], None] | None = None,
    notify: Notify | None = None,
    on_status: Callable[[str], None] | None = None,
) -> SessionResult:
    """Run the session to its end. The strategy first warms up on the source's history; data that is refused
    before the first counted bar (an empty file, a bad row in the warm-up) raises `DataError` and no run is
    created. Later trading or data problems never raise: the run ends `failed`.

    `notify(kind, info)` hears `warmup`, `started` and `progress`; `on_status` receives one-line notices of a
    live data feed (exchange unreachable, back, gaps)."""
    import dataclasses

    from peaktrade.execution import executor_for

    started = utcnow()
    risk = dataclasses.replace(settings.live_risk, **plan.risk_overrides)
    spec = get_strategy(plan.strategy)
    strategy = spec.build(plan.params)
    client = _exchange_client(plan, settings)
    source = open_plan_source(plan, started, settings, client)
    engine = Engine(
        EngineConfig(
            plan.symbol,
            plan.start_balance,
            plan.position_fraction,
            plan.fee_rate,
            plan.slippage_bps,
            plan.allow_short,
            risk,
        ),
        strategy,
        executor_for(plan.mode, client),
    )
    tell = notify or _ignore
    needed = spec.warmup_bars(plan.params)
    if source.live:  # a live feed warms up on more recent candles than the strategy strictly needs
        needed = max(needed, settings.exchange.history_bars)
    warm = _warm_up(plan, needed, source, engine, tell)
    logging_cfg = settings.shadow_paper_logging
    session_id = new_session_id(plan.mode, started)
    snapshot = {
        "session": {k: v for k, v in asdict(plan).items() if k not in ("cli_args", "risk_overrides")},
        "live_risk": dataclasses.asdict(risk),
        "general": dataclasses.asdict(settings.general),
    }
    writer = _create_writer(
        settings.paths.runs_dir,
        mode=plan.mode,
        strategy_name=plan.strategy,
        symbol=plan.symbol,
        timeframe=source.timeframe,
        strategy_params=plan.params,
        data_source=source.describe(),
        session_id=session_id,
        config_snapshot=snapshot,
        notes=plan.notes,
        tags=plan.tags,
        started_at=started,
        flush_rows=1 if plan.bar_delay else logging_cfg.replay_flush_steps,
        flush_seconds=logging_cfg.flush_interval_seconds,
        segment_rows=logging_cfg.segment_rows,
        fsync=logging_cfg.fsync,
    )
    record = registry.new_record(
        session_id=session_id,
        run_id=writer.run_id,
        mode=plan.mode,
        env_name=settings.general.env_name,
        symbol=plan.symbol,
        strategy=plan.strategy,
        started_at=started,
        config=snapshot,
        cli_args=plan.cli_args,
        notes=plan.notes or None,
        tags=plan.tags,
    )
    # who writes this session, so readers can tell a dead writer at once (liveness.writer_state)
    record.update(pid=writer.meta["pid"], host=writer.meta["host"], pid_start_ticks=writer.meta["pid_start_ticks"])
    reg_dir = settings.paths.registry_dir
    try:
        reg_path = registry.write_record(reg_dir, record) if plan.use_registry else None
    except OSError as exc:  # e.g. a read-only registry dir: end the run as failed, say which file
        failed = WriteFailed.of(exc, reg_dir)
        _close_quietly(writer, str(failed))
        raise failed from None
    status, error = "completed", None
    # --duration: wall-clock time for a live source; market time (the bars' own timestamps) for a replay.
    deadline = time.monotonic() + plan.duration_minutes * 60 if plan.duration_minutes and source.live else None
    market_bars = None if source.live else _duration_bars(plan.duration_minutes, timeframe_seconds(source.timeframe))
    with _Stop(stop) as stopper:
        # told once Ctrl+C and SIGTERM end the run cleanly: someone acting on the tip may stop it at once
        tell("started", {"run_id": writer.run_id, "run_dir": writer.run_dir, "session_id": session_id})
        try:
            _bind_live(source, writer, stopper, on_status, warm)
            _bars(plan, source, engine, writer, stopper, deadline, market_bars, on_bar, tell, record, reg_dir)
            if stopper.event.is_set():
                status, error = "aborted", stopper.reason or "stopped"
        except WriteFailed as exc:  # disk full or read-only: one line naming the file
            status, error = "failed", str(exc)
        except SessionError as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug or an I/O error: still finalize the artifacts, report it
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        for order in engine.finish():
            writer.append_order(order.record())
        for note in source.notes:
            writer.meta["notes"] = "\n".join(filter(None, [writer.meta.get("notes"), note]))
            record["notes"] = "\n".join(filter(None, [record.get("notes"), note]))
        try:
            writer.close(status, error)
        except WriteFailed as exc:  # the run could not be finalized; meta.json says failed if the disk let it
            status, error = "failed", error if status == "failed" else str(exc)
    metrics = session_metrics(engine, plan.start_balance)
    record.update(status=status, error=error, finished_at=iso(utcnow()), heartbeat_at=iso(utcnow()), metrics=metrics)
    if plan.use_registry:
        try:
            reg_path = registry.write_record(reg_dir, record)
        except OSError as exc:
            raise WriteFailed.of(exc, reg_dir) from None
    return SessionResult(writer.run_id, writer.run_dir, session_id, status, error, metrics, reg_path)


def _ignore(kind: str, info: dict) -> None:
    pass


def _create_writer(runs_dir: Path, **kwargs: Any) -> RunWriter:
    """`RunWriter.create`; a directory that cannot be written is one line naming it, not a traceback."""
    try:
        return RunWriter.create(runs_dir, **kwargs)
    except OSError as exc:
        raise WriteFailed.of(exc, runs_dir) from None


def _close_quietly(writer: RunWriter, error: str) -> None:
    try:
        writer.close("failed", error)
    except WriteFailed:
        pass  # the caller raises the first failure, which is the one to fix


def _exchange_client(plan: SessionPlan, settings: Settings):
    """One client (one circuit breaker) shared by the live feed and the testnet executor, or None."""
    if plan.source != "kraken" and plan.mode != "testnet":
        return None
    from peaktrade.exchange import ExchangeClient, credentials

    return ExchangeClient(settings.exchange, credentials(settings.exchange))


def _bind_live(source, writer: RunWriter, stopper: _Stop, on_status, warm: list) -> None:
    """A live source: heartbeat while waiting, feed notices into meta.json (`feed_status`, notes) and the
    status line, starting with what the warm-up had."""
    bind = getattr(source, "bind", None)
    if bind is None:
        return

    user_notes = writer.meta.get("notes") or ""
    notices: list[str] = []

    def status(message: str) -> None:
        stamp = iso(utcnow())
        writer.meta["feed_status"] = f"{stamp} {message}"
        notices[:] = [*notices[-19:], f"{stamp} {message}"]  # the operator's --notes stay; the last 20 notices
        writer.meta["notes"] = "\n".join([user_notes, *notices]).strip()
        writer.heartbeat()
        if on_status is not None:
            on_status(message)

    bind(stopper.event, writer.heartbeat, status)
    if warm:
        status(f"warm-up on {len(warm)} closed candles up to {iso(warm[-1].ts)}; now polling for new ones")


def _warm_up(plan: SessionPlan, needed: int, source: BarSource, engine: Engine, tell: Notify) -> list:
    """Feed the strategy its history before the first counted bar, so a short session can trade at once."""
    history = source.history(needed) if needed else []
    if len(history) < needed and not source.live:
        raise DataError(
            f"{source.describe()}: only {len(history)} bars, fewer than the {needed} bars of history "
            f"{plan.strategy} needs to warm up (and then bars to trade on); use a longer file or shorter windows"
        )
    engine.warm_up(history)
    tell("warmup", {"bars": len(history), "needed": needed, "source": source.describe()})
    return history


def _bars(plan, source, engine, writer, stopper, deadline, market_bars, on_bar, tell, record, reg_dir) -> None:
    now = utcnow
    append_event, append_order = writer.append_event, writer.append_order
    steps = plan.steps
    delay = plan.bar_delay
    every = 1 if delay or source.live else _PROGRESS_EVERY
    tf = timedelta(seconds=timeframe_seconds(source.timeframe))
    market_end = None
    last_registry = time.monotonic()
    for bar in source:
        if stopper.event.is_set():
            return
        row, orders = engine.on_bar(bar, now())
        for order in orders:
            if order.status != "pending":
                append_order(order.record())
        append_event(row)
        if on_bar is not None:
            on_bar(row)
        if engine.step % every == 0:
            tell("progress", row)
        if steps is not None and engine.step >= steps:
            return
        if market_bars is not None:  # market time: stop once a bar closes at or after first open + duration
            if market_end is None:
                market_end = bar.ts + tf * market_bars
            if bar.ts + tf >= market_end:
                return
        if deadline is not None and time.monotonic() >= deadline:
            return
        if delay:
            _sleep(delay, writer, stopper)
            if plan.use_registry and time.monotonic() - last_registry >= _REGISTRY_HEARTBEAT_S:
                record["heartbeat_at"] = iso(utcnow())
                try:
                    registry.write_record(reg_dir, record)
                except OSError as exc:
                    raise WriteFailed.of(exc, reg_dir) from None
                last_registry = time.monotonic()
    if engine.step == 0 and not source.live:
        raise DataError(f"{source.describe()}: no bars left after the warm-up; use a longer file")


def _sleep(seconds: float, writer: RunWriter, stopper: _Stop) -> None:
    """Wait for the next bar in short slices, keeping the heartbeat fresh and reacting to a stop at once."""
    end = time.monotonic() + seconds
    last_beat = time.monotonic()
    while not stopper.event.is_set():
        left = end - time.monotonic()
        if left <= 0:
            return
        stopper.event.wait(min(left, 0.1))
        if time.monotonic() - last_beat >= 5.0:
            writer.heartbeat()
            last_beat = time.monotonic()


def session_metrics(engine: Engine, start_balance: float) -> dict[str, Any]:
    """The registry metrics (DESIGN.md §3), from the session's own ledger (`metrics.session_metrics`)."""
    led = engine.ledger
    return metrics_mod.session_metrics(
        realized_pnl=led.realized_pnl,
        unrealized_pnl=led.unrealized_pnl,
        max_drawdown=led.max_drawdown,
        num_orders=engine.num_orders,
        num_trades=engine.num_filled,
        num_blocked=engine.num_blocked,
        fees=led.fees_paid,
        steps=engine.step,
        final_equity=led.equity,
        start_balance=start_balance,
    )


def dry_run_lines(plan: SessionPlan, settings: Settings) -> list[str]:
    """What `--dry-run` prints: the plan and any inconsistent risk limits; nothing is written."""
    lines = [f"{k:<18} {v}" for k, v in plan.describe()]
    for problem in config_problems(settings.live_risk):
        lines.append(f"warning: live_risk: {problem}")
    return lines


def monitor_tip(run_id: str, config: str | None) -> str:
    cfg = f" --config {config}" if config else ""
    return f"peaktrade monitor --run-id {run_id}{cfg}"


def cli_args_of(argv: Sequence[str]) -> tuple[str, ...]:
    return ("peaktrade", *argv)
