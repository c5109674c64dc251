from __future__ import annotations

import re

from peaktrade.commands import print_json, settings, warn

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _safe(text: str) -> str:
    """Artifact text may carry terminal escapes: show control characters (except newlines) escaped."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def test(args) -> int:
    from peaktrade.alerts import send_test

    cfg = settings(args)
    result = send_test(cfg.alerts)
    print(result.message)
    return 0 if result.ok else 1


def run(args) -> int:
    from peaktrade.alerts.runner import run as run_alerts

    cfg = settings(args)
    outcome = run_alerts(cfg, dry_run=args.dry_run)
    for problem in outcome.problems:
        warn(_safe(problem))
    if args.dry_run and args.json:
        print_json([p.__dict__ for p in outcome.previews])
        return 0
    for p in outcome.previews:
        print(f"--- to {p.target} [{p.notify_type}] {_safe(p.title)}\n{_safe(p.body)}\n")
    if outcome.targets.startswith("0 targets"):
        warn(
            "no alert targets configured ([alerts] urls, config_file or $PEAKTRADE_ALERT_URLS): "
            f"{outcome.passed} item(s) were recorded in the history only"
        )
    print(_safe(outcome.summary()))
    return 0 if outcome.ok else 1
