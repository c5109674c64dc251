"""Run one trading session: market data -> engine -> run artifacts + registry record.

This module is the I/O edge around the pure `engine`: it reads the clock, paces bars, writes artifacts and
the registry, and turns Ctrl+C and SIGTERM into a clean `aborted` run.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
from peaktrade.errors import SessionError, UsageError, WriteFailed
from peaktrade.ids import new_session_id
from peaktrade.marketdata import BarSource, open_source
from peaktrade.models import timeframe_seconds
from peaktrade.risk import config_problems
from peaktrade.strategies import get as get_strategy

MODES = ("shadow", "paper", "testnet", "live")
_REGISTRY_HEARTBEAT_S = 30.0


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


def make_plan(settings: Settings, **flags: Any) -> SessionPlan:
    """Merge CLI flags over `[session]` and validate the result (UsageError names the flag and the fix)."""
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
        raise UsageError(
            "--mode testnet needs the Kraken exchange integration (orders validated by the exchange, "
            "never executed), which this version does not have yet; use shadow or paper"
        )
    name = pick("strategy", s.strategy)
    spec = get_strategy(name)
    params = {**spec.defaults(), **settings.strategy.get(name, {})}
    timeframe = pick("timeframe", s.timeframe)
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
    source = pick("source", s.source)
    if source.startswith("synthetic") and steps is None and duration is None:
        raise UsageError("synthetic data never ends: give --steps N or --duration MINUTES")
    fraction = pick("position_fraction", s.position_fraction)
    if not 0 < fraction <= 1:
        raise UsageError(f"--position-fraction {fraction}: must be > 0 and <= 1 (a fraction of equity)")
    balance = pick("start_balance", s.start_balance)
    if balance <= 0:
        raise UsageError(f"--start-balance {balance}: must be positive")
    symbol = pick("symbol", s.symbol)
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
        notes=flags.get("notes") or "",
        tags=tuple(flags.get("tags") or ()),
        use_registry=not flags.get("no_registry", False),
        cli_args=tuple(flags.get("cli_args") or ()),
        risk_overrides=dict(flags.get("risk_overrides") or {}),
    )


def open_plan_source(plan: SessionPlan, now: datetime) -> BarSource:
    """The plan's data source; a synthetic feed is laid out so that its last bar closes about now."""
    tf = timeframe_seconds(plan.timeframe)
    start = datetime.fromtimestamp((int(now.timestamp()) // tf) * tf, now.tzinfo)
    if plan.steps:
        start -= timedelta(seconds=tf * plan.steps)
    return open_source(plan.source, timeframe=plan.timeframe, start=start, gap_policy=plan.gap_policy)


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
) -> SessionResult:
    """Run the session to its end; never raises for trading or data problems (they end as `failed`)."""
    import dataclasses

    started = utcnow()
    risk = dataclasses.replace(settings.live_risk, **plan.risk_overrides)
    spec = get_strategy(plan.strategy)
    strategy = spec.build(plan.params)
    source = open_plan_source(plan, started)
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
    )
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
    deadline = time.monotonic() + plan.duration_minutes * 60 if plan.duration_minutes else None
    with _Stop(stop) as stopper:
        try:
            _loop(plan, source, engine, writer, stopper, deadline, on_bar, record, reg_dir)
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


@contextmanager
def _few_gc_pauses() -> Iterator[None]:
    """The bar loop allocates many short-lived, acyclic objects (bars, rows); the default gen-0 threshold
    makes the cyclic GC run every 700 of them and costs ~20% of a replay. Raise it for the loop only."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def _loop(plan, source, engine, writer, stopper, deadline, on_bar, record, reg_dir) -> None:
    with _few_gc_pauses():
        _bars(plan, source, engine, writer, stopper, deadline, on_bar, record, reg_dir)


def _bars(plan, source, engine, writer, stopper, deadline, on_bar, record, reg_dir) -> None:
    now = utcnow
    append_event, append_order = writer.append_event, writer.append_order
    steps = plan.steps
    delay = plan.bar_delay
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
        if steps is not None and engine.step >= steps:
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
