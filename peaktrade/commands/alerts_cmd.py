from __future__ import annotations

from peaktrade.commands import out, print_json, settings, warn


def test(args) -> int:
    from peaktrade.alerts import send_test

    cfg = settings(args)
    result = send_test(cfg.alerts)
    out(result.message)
    return 0 if result.ok else 1


def run(args) -> int:
    from peaktrade.alerts.runner import run as run_alerts

    cfg = settings(args)
    outcome = run_alerts(cfg, dry_run=args.dry_run)
    for problem in outcome.problems:
        warn(problem)
    if args.dry_run and args.json:
        print_json([p.__dict__ for p in outcome.previews])
        return 0
    for p in outcome.previews:
        out(f"--- to {p.target} [{p.notify_type}] {p.title}\n{p.body}\n")
    if outcome.targets.startswith("0 targets"):
        warn(
            "no alert targets configured ([alerts] urls, config_file or $PEAKTRADE_ALERT_URLS): "
            f"{outcome.passed} item(s) were recorded in the history only"
        )
    out(outcome.summary())
    return 0 if outcome.ok else 1
