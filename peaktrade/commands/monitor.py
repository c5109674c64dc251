from __future__ import annotations

import sys

from peaktrade.commands import out, print_json, settings, warn
from peaktrade.errors import UsageError


def monitor(args) -> int:
    from pathlib import Path

    from peaktrade import monitoring
    from peaktrade.artifacts import find_run, scan_runs
    from peaktrade.clock import parse_ts, utcnow
    from peaktrade.errors import RunNotFound
    from peaktrade.status import run_states
    from peaktrade.terminal import MonitorOptions, colors_wanted, run_monitor

    cfg = settings(args)
    mcfg = monitoring.load_live_monitoring_config(cfg)
    runs_dir = cfg.paths.runs_dir
    if args.list:
        scan = scan_runs(runs_dir)
        now = utcnow()
        shown = scan.runs[: args.limit]
        states = run_states(shown, now, mcfg)
        if args.json:
            print_json(
                [
                    {
                        "run_id": e.run_id,
                        "mode": e.meta.get("mode"),
                        "status": e.meta.get("status"),
                        "state": states[e.run_id],
                        "started_at": e.meta.get("started_at"),
                    }
                    for e in shown
                ]
            )
            return 0
        for e in shown:
            hb = parse_ts(e.meta.get("heartbeat_at")) or e.started_at
            age = monitoring.short_age((now - hb).total_seconds()) if hb else "-"
            out(f"{e.run_id:<72} {e.meta.get('mode') or '?':<8} {states[e.run_id]:<10} {age:>5} ago")
        out(f"Total: {len(scan.runs)} runs in {runs_dir}")
        for problem in scan.problems:
            warn(problem)
        return 0
    if args.run_dir:
        run_dir = Path(args.run_dir)
    elif args.run_id:
        run_dir = find_run(runs_dir, args.run_id)
    else:
        latest = monitoring.get_latest_run_dir(runs_dir)
        if latest is None:
            raise RunNotFound(f"no runs in {runs_dir}; start one with `peaktrade session run --steps 100`")
        run_dir = latest
    interval = args.interval if args.interval is not None else mcfg.default_interval_seconds
    rows = args.rows if args.rows is not None else mcfg.default_tail_rows
    if interval <= 0 or rows < 0:
        raise UsageError("--interval must be > 0 and --rows >= 0")
    opts = MonitorOptions(
        run_dir,
        interval,
        rows,
        args.view,
        colors_wanted(args.no_colors, mcfg.use_colors, sys.stdout),
        mcfg.stale_after_bars,
        mcfg.stale_min_seconds,
        Path(cfg.paths.state_dir),
    )
    return run_monitor(opts, once=args.once)
