"""`peaktrade signals generate`."""

from __future__ import annotations

from peaktrade.commands import settings


def generate(args) -> int:
    from peaktrade import signals
    from peaktrade.clock import utcnow

    cfg = settings(args)
    result = signals.generate(
        cfg,
        strategy=args.strategy,
        symbols=args.symbol or [],
        timeframe=args.timeframe,
        source=args.source or "kraken",
        now=utcnow(),
    )
    for s in result.signals:
        print(f"{s.symbol:<10} {s.direction:+d}  as of {s.as_of}  {s.strategy_key}")
    print(f"written   {result.path}")
    print(f"next      peaktrade ops orders --signals {result.path}")
    return 0
