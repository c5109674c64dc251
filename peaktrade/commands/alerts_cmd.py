from __future__ import annotations

from peaktrade.commands import out, settings


def test(args) -> int:
    from peaktrade.alerts import send_test

    cfg = settings(args)
    result = send_test(cfg.alerts)
    out(result.message)
    return 0 if result.ok else 1
