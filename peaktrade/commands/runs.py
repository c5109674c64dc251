from __future__ import annotations

from peaktrade.commands import out, print_json, settings, warn


def list_runs(args) -> int:
    from peaktrade.artifacts import scan_runs
    from peaktrade.clock import utcnow
    from peaktrade.status import run_states

    cfg = settings(args)
    result = scan_runs(cfg.paths.runs_dir)
    for problem in result.problems:
        warn(problem)
    states = run_states(result.runs, utcnow(), cfg.live_monitoring)
    if args.json:
        print_json(
            [
                {
                    **{
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
                    },
                    "state": states[e.run_id],
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
        out(f"{e.run_id}  {m.get('mode') or '?':<8} {states[e.run_id]:<10} rows={'?' if rows is None else rows}")
    return 0


def recover(args) -> int:
    from peaktrade.recovery import recover as recover_runs

    cfg = settings(args)
    result = recover_runs(cfg, run_id=args.run_id, stale_seconds=args.stale_seconds, force=args.force)
    if result.note:
        out(result.note)
    for item in result.recovered:
        lost = f", {item.lost} rows lost" if item.lost else ""
        out(f"recovered {item.run_id}: {item.rows} events, {item.orders} orders{lost}; status aborted (writer died)")
    for session_id, path in result.sessions:
        out(f"finalized session {session_id}: {path}")
    for problem in result.problems:
        warn(problem)
    if not result.recovered and not result.sessions and not result.note:
        print("no crashed runs to recover")
    return 1 if result.failed else 0
