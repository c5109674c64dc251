from __future__ import annotations

import sys

from peaktrade.commands import out, settings


def run(args) -> int:
    from peaktrade import session

    cfg = settings(args)
    plan = session.make_plan(
        cfg,
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
    result = session.run(plan, cfg)
    print_result(result, cfg.general.base_currency, args.config)
    return 0 if result.status == "completed" else 1


def print_result(result, currency: str, config: str | None) -> None:
    from peaktrade import session

    m = result.metrics
    out(f"status      {result.status}" + (f" ({result.error})" if result.error else ""))
    print(f"run         {result.run_dir}")
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
    print(f"tip: watch it with `{session.monitor_tip(result.run_id, config)}`")


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
