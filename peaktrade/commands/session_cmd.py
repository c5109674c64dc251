from __future__ import annotations

import sys
import time

from peaktrade.commands import few_gc_pauses, out, settings
from peaktrade.terminal import printable


def _feed_line(message: str) -> None:
    print(f"feed: {printable(message)}", file=sys.stderr, flush=True)


def run(args) -> int:
    from peaktrade import session

    if args.list_strategies:
        return list_strategies(args)
    cfg = settings(args)
    plan = session.make_plan(
        cfg,
        dry_run=args.dry_run,
        mode=args.mode,
        strategy=args.strategy,
        symbol=args.symbol,
        timeframe=args.timeframe,
        steps=args.steps,
        duration=args.duration,
        source=args.source,
        bar_delay=args.bar_delay,
        start_balance=args.start_balance,
        position_fraction=args.position_fraction,
        notes=args.notes,
        tags=args.tags,
        no_registry=args.no_registry,
        cli_args=session.cli_args_of(sys.argv[1:]),
    )
    if args.dry_run:
        print("dry run: nothing is written")
        for line in session.dry_run_lines(plan, cfg):
            print(f"  {line}")
        return 0
    print(f"session: {plan.mode} {plan.strategy} {plan.symbol} {plan.timeframe} from {plan.source}", flush=True)
    progress = _Progress(plan.steps) if sys.stderr.isatty() else None

    def notify(kind: str, info: dict) -> None:
        if kind == "warmup":
            print(f"Warmup complete: {info['bars']:,} bars of history from {info['source']}", flush=True)
        elif kind == "started":
            print(f"run         {info['run_dir']}", flush=True)
            print(f"tip: monitor this run with `{session.monitor_tip(info['run_id'], args.config)}`", flush=True)
        elif kind == "progress" and progress is not None:
            progress.show(info)

    try:
        with few_gc_pauses():
            result = session.run(plan, cfg, notify=notify, on_status=_feed_line)
    finally:
        if progress is not None:
            progress.clear()
    print_result(result, cfg.general.base_currency)
    return 0 if result.status == "completed" else 1


class _Progress:
    """A one-line status on stderr, rewritten in place at most a few times a second (only on a terminal)."""

    def __init__(self, steps: int | None):
        self.steps = steps
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False

    def show(self, row: dict) -> None:
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        done = int(row["step"]) + 1
        of = f"/{self.steps:,}" if self.steps else ""
        rate = done / max(now - self.started, 1e-9)
        ts = row["ts_bar"].strftime("%Y-%m-%d %H:%M") if hasattr(row["ts_bar"], "strftime") else row["ts_bar"]
        sys.stderr.write(
            f"\r\x1b[K  bar {done:,}{of}  {ts}  equity {row['equity']:,.2f}  {rate:,.0f} bars/s  (Ctrl+C stops)"
        )
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def print_result(result, currency: str) -> None:
    m = result.metrics
    out(f"status      {result.status}" + (f" ({result.error})" if result.error else ""))
    if result.registry_path:
        print(f"registry    {result.registry_path}")
    print(
        f"bars        {m['steps']:,}   orders {m['num_orders']}   filled {m['num_trades']}   "
        f"blocked {m['num_blocked']}   fill rate {m['fill_rate']:.0%}"
    )
    print(
        f"equity      {m['final_equity']:,.2f} {currency}   return {m['return_pct']:+.2f}%   "
        f"max drawdown {m['max_drawdown']:.2%}"
    )
    print(
        f"pnl         realized {m['realized_pnl']:+,.2f}   unrealized {m['unrealized_pnl']:+,.2f}   "
        f"fees {m['fees']:,.2f}"
    )


def list_strategies(args) -> int:
    from peaktrade.strategies import SPECS

    cfg = settings(args)
    for spec in SPECS:
        print(f"{spec.name}: {spec.description}")
        configured = cfg.strategy.get(spec.name, {})
        for p in spec.params:
            value = configured.get(p.name, p.default)
            note = "" if value == p.default else f" (config: {value})"
            print(f"  {p.name:<12} default {p.default!s:<8}{note}  {p.help}")
    return 0
