from __future__ import annotations

import sys

from peaktrade.commands import out, settings, warn
from peaktrade.errors import UsageError


def sessions(args) -> int:
    from pathlib import Path

    from peaktrade import registry, reports
    from peaktrade.clock import utcnow
    from peaktrade.commands.sessions import registry_index
    from peaktrade.status import session_states
    from peaktrade.terminal import printable

    cfg = settings(args)
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.stdout and args.output_format == "both":
        raise UsageError("--stdout prints one format: use --output-format markdown or html with it")
    filters = registry.Filters(mode=args.mode, status=args.status, run_type=args.run_type)
    records, problems = registry.list_records(cfg.paths.registry_dir, filters, args.limit, registry_index(cfg))
    for problem in problems:
        warn(problem)
    now = utcnow()
    # show what really happened: a session whose writer died is `dead`/`stale`, not `started`
    states = session_states(records, cfg.paths.runs_dir, now, cfg.live_monitoring.stale_min_seconds)
    records = [{**r, "status": states.get(r["session_id"], r.get("status"))} for r in records]
    described = (
        ", ".join(
            f"{k}={v}"
            for k, v in (
                ("run_type", args.run_type),
                ("status", args.status),
                ("mode", args.mode),
                ("limit", args.limit),
            )
            if v
        )
        or "none"
    )
    currency = cfg.general.base_currency
    if args.stdout:
        render = reports.render_sessions_summary if args.summary_only else reports.render_sessions_report
        text = render(records, generated_at=now, filters=described, currency=currency)
        if args.output_format == "html":
            text = reports.markdown_to_html(text, "Live sessions report")
        sys.stdout.write(printable(text, keep_newlines=True))
        return 0
    out_dir = Path(args.output_dir) if args.output_dir else cfg.paths.reports_dir
    for path in reports.write_sessions_reports(
        out_dir,
        records,
        summary_only=args.summary_only,
        fmt=args.output_format,
        now=now,
        filters=described,
        currency=currency,
    ):
        out(path)
    return 0


def run(args) -> int:
    from pathlib import Path

    from peaktrade import reports
    from peaktrade.artifacts import find_run
    from peaktrade.clock import utcnow

    cfg = settings(args)
    run_dir = find_run(cfg.paths.runs_dir, args.run_id)
    out_dir = Path(args.output_dir) if args.output_dir else cfg.paths.reports_dir / "runs" / args.run_id
    problems: list[str] = []
    path = reports.write_run_report(
        run_dir, out_dir, now=utcnow(), currency=cfg.general.base_currency, problems=problems
    )
    for problem in problems:
        warn(problem)
    out(path)
    return 0
