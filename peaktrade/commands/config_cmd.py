from __future__ import annotations

from peaktrade.commands import out, print_json, settings
from peaktrade.redact import redact


def check(args) -> int:
    cfg = settings(args)
    out(f"config OK: {cfg.source or 'built-in defaults (no config file found)'}")
    return 0


def show(args) -> int:
    cfg = settings(args)
    print_json({"source": str(cfg.source) if cfg.source else None, **redact(cfg.as_dict())})
    return 0
