"""`peaktrade ops orders`, `ops portfolio` and `ops health`."""

from __future__ import annotations

import sys
from pathlib import Path

from peaktrade.commands import print_json, settings, warn
from peaktrade.errors import EXIT_FAILURE, UsageError


def safe(text: object) -> str:
    """Control characters from files (signals, run metadata) never reach the terminal unescaped."""
    from peaktrade.terminal import printable

    return printable(text)


def orders(args) -> int:
    from peaktrade import ops
    from peaktrade.clock import utcnow

    path = args.signals_opt or args.signals
    if not path:
        raise UsageError("ops orders: give the signals CSV (--signals FILE or as the argument)")
    if args.signals_opt and args.signals and args.signals_opt != args.signals:
        raise UsageError("ops orders: give the signals file once (--signals FILE or positional, not both)")
    cfg = settings(args)
    risk_mode = "skip" if args.skip_live_risk else "enforce" if args.enforce_live_risk else "warn"
    preview = ops.preview_orders(
        cfg,
        Path(path),
        notional=args.notional,
        risk_mode=risk_mode,
        offline=args.offline,
        output_dir=Path(args.output_dir) if args.output_dir else None,
        now=utcnow(),
    )
    if args.json:
        print_json(preview.as_dict())
    else:
        currency = cfg.general.base_currency
        print(f"signals   {safe(preview.signals_file)}")
        print(f"{'row':>4} {'symbol':<10} {'dir':>3} {'side':<4} {'qty':>14} {'price':>12} {'notional':>12}  risk")
        for o in preview.orders:
            reasons = f"  {safe('; '.join(o.reasons))}" if o.reasons else ""
            print(
                f"{o.row:>4} {safe(o.symbol):<10} {o.direction:>+3} {o.side:<4} {o.qty:>14.8f} {o.price:>12,.2f} "
                f"{o.notional:>12,.2f}  {o.risk}{reasons}"
            )
        print(f"prices    {safe(', '.join(sorted({o.price_source for o in preview.orders})))} ({currency})")
        for note in preview.notes:
            print(f"note      {safe(note)}")
        print(f"written   {safe(preview.output)}")
    if preview.violations:
        message = f"{preview.violations} order(s) breach [live_risk] limits (see reasons)"
        if risk_mode == "enforce":
            print(f"peaktrade: error: {message}; --enforce-live-risk: not releasing them", file=sys.stderr)
            return EXIT_FAILURE
        warn(f"{message}; add --enforce-live-risk to fail on it")
    return 0


def portfolio(args) -> int:
    from peaktrade import ops
    from peaktrade.clock import utcnow

    cfg = settings(args)
    snap = ops.portfolio_snapshot(cfg, starting_cash=args.starting_cash, with_risk=not args.no_risk, now=utcnow())
    if args.json:
        print_json(snap)
        return 0
    base = snap["base_currency"]
    print(f"portfolio at {snap['generated_at']} ({base})")
    if not snap["positions"]:
        print("  no open positions (no running session holds one, no exchange balance)")
    for p in snap["positions"]:
        print(
            f"  {safe(p['symbol']):<10} {p['qty']:>14.8f} @ {p['price']:>12,.2f} = {p['exposure']:>12,.2f}  "
            f"{safe(p['source'])} ({safe(p['price_from'])})"
        )
    for currency, amount in snap["cash"].items():
        print(f"  cash {safe(currency)} {amount:,.2f}")
    risk = snap.get("risk")
    if risk:
        print(
            f"risk: {risk['severity']}  total exposure {risk['total_exposure']:,.2f}  open positions "
            f"{risk['open_positions']}  daily loss {risk['daily_loss']:,.2f}"
        )
        for c in risk["checks"]:
            print(f"  {c['severity']:<7} {c['name']}: limit={c['limit']:g} value={c['value']:g}")
        for note in risk["notes"]:
            print(f"  note: {safe(note)}")
    for note in snap["notes"]:
        print(f"note: {safe(note)}")
    return 0


def health(args) -> int:
    from peaktrade import health as H

    try:
        result = H.run(getattr(args, "config", None))
    except Exception as exc:  # Nagios wants UNKNOWN (3) when the check itself could not run
        if not args.nagios:
            raise
        print(f"PEAKTRADE HEALTH UNKNOWN - {H.core.escape(exc.__class__.__name__)}: {H.core.escape(exc)}")
        return H.core.NAGIOS_UNKNOWN
    for problem in result.problems:
        warn(problem)
    if args.json:
        print_json(result.doc)
    else:
        for line in H.text_lines(result.doc, nagios=args.nagios):
            print(line)
    return H.exit_code(result.overall, args.nagios)
