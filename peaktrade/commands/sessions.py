from __future__ import annotations

from peaktrade.commands import out, print_json, settings, warn
from peaktrade.errors import UsageError


def registry_index(cfg):
    return cfg.paths.state_dir / "registry-index.json"


def list_sessions(args) -> int:
    from peaktrade import registry
    from peaktrade.clock import parse_ts, utcnow
    from peaktrade.status import session_states

    cfg = settings(args)
    since = None
    if args.since:
        since = parse_ts(args.since)
        if since is None:
            raise UsageError(f"--since {args.since!r} is not an ISO time; use e.g. 2025-12-01T00:00:00Z")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    filters = registry.Filters(
        mode=args.mode,
        status=args.status,
        run_type=args.run_type,
        strategy=args.strategy,
        symbol=args.symbol,
        since=since,
    )
    records, problems = registry.list_records(cfg.paths.registry_dir, filters, args.limit, registry_index(cfg))
    for problem in problems:
        warn(problem)
    states = session_states(records, cfg.paths.runs_dir, utcnow(), cfg.live_monitoring.stale_min_seconds)
    if args.json:
        print_json([{**r, "state": states.get(r["session_id"], r.get("status"))} for r in records])
        return 0
    if not records:
        out(f"no sessions in {cfg.paths.registry_dir} match")
        return 0
    for r in records:  # records are clean (registry.read_record): known fields have their types
        m = r.get("metrics") or {}
        pnl = m.get("realized_pnl")
        pnl_text = f"{pnl:+.2f}" if isinstance(pnl, int | float) else "-"
        out(
            f"{r['started_at'][:19]}  {r.get('mode') or '?':<8} {states.get(r['session_id'], '?'):<10} "
            f"{r.get('strategy') or '?':<14} {r.get('symbol') or '?':<9} pnl={pnl_text:<10} {r['session_id']}"
        )
    return 0


def show(args) -> int:
    from peaktrade import registry

    cfg = settings(args)
    record, problems = registry.find_session_checked(cfg.paths.registry_dir, args.session_id, registry_index(cfg))
    if record is None:
        raise UsageError(f"no session {args.session_id!r} in {cfg.paths.registry_dir}")
    for problem in problems:
        warn(problem)
    print_json(record)
    return 0
