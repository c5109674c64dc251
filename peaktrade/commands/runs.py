from __future__ import annotations

from peaktrade.commands import out, print_json, settings, warn


def list_runs(args) -> int:
    from peaktrade.artifacts import scan_runs

    cfg = settings(args)
    result = scan_runs(cfg.paths.runs_dir)
    for problem in result.problems:
        warn(problem)
    if args.json:
        print_json(
            [
                {
                    k: e.meta.get(k)
                    for k in (
                        "run_id",
                        "mode",
                        "status",
                        "strategy_name",
                        "symbol",
                        "timeframe",
                        "started_at",
                        "ended_at",
                        "rows",
                        "error",
                    )
                }
                for e in result.runs
            ]
        )
        return 0
    if not result.runs:
        out(f"no runs in {cfg.paths.runs_dir}")
        return 0
    for e in result.runs:
        m = e.meta
        rows = m.get("rows")
        out(
            f"{e.run_id}  {m.get('mode') or '?':<8} {m.get('status') or '?':<10} rows={'?' if rows is None else rows}"
        )
    return 0


def recover(args) -> int:
    from peaktrade.artifacts import find_run, recover_all, recover_run, writer_alive
    from peaktrade.artifacts.reader import RunReader
    from peaktrade.clock import utcnow
    from peaktrade.errors import UsageError
    from peaktrade.lock import job_lock

    cfg = settings(args)
    stale = args.stale_seconds if args.stale_seconds is not None else cfg.live_monitoring.stale_min_seconds
    now = utcnow()
    with job_lock(cfg.paths.state_dir, "runs-recover"):
        if args.run_id:
            run_dir = find_run(cfg.paths.runs_dir, args.run_id)
            meta = RunReader(run_dir).meta
            if meta.get("status") != "running":
                out(f"{args.run_id}: already {meta.get('status')}; nothing to do")
                return 0
            if writer_alive(meta, now, stale) and not args.force:
                raise UsageError(
                    f"{args.run_id}: its writer (pid {meta.get('pid')}) looks alive; stop it first or use --force"
                )
            done, problems = [recover_run(run_dir, now)], []
        else:
            done, problems = recover_all(cfg.paths.runs_dir, now, stale)
    for item in done:
        out(f"recovered {item.run_id}: {item.rows} events, {item.orders} orders; status aborted (writer died)")
    for problem in problems:
        warn(problem)
    if not done:
        print("no crashed runs to recover")
    return 1 if problems and not done else 0
