"""Pure page models for the static site: JSON mirrors of the seeds' endpoints and template contexts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peaktrade import views
from peaktrade.clock import iso, parse_ts
from peaktrade.site import healthview
from peaktrade.snapshot import LiveRunSnapshot, build_snapshot
from peaktrade.status import FINAL, session_state

CONTRACT_VERSION = "peaktrade-1"


@dataclass
class RunInfo:
    """One run as the site needs it; `detail` is filled only for runs whose pages are (re)rendered."""

    run_id: str
    meta: dict[str, Any]
    snapshot: LiveRunSnapshot
    fingerprint: str
    detail: dict[str, Any] | None = None
    totals: dict[str, Any] = field(default_factory=dict)  # whole-run totals, read once by the gather


@dataclass(frozen=True)
class SessionsSummary:
    """What the pages show of all sessions taken together, when a build kept it from the last one instead of
    reading 10,000 registry entries (`site.manifest.sessions_view`: the registry unchanged, every session final)."""

    total: int
    by_status: dict[str, int]
    stats: dict[str, Any]  # `stats_json`
    newest_time: datetime | None  # the sessions' part of `newest_data_time`
    records: list[dict[str, Any]]  # the newest sessions' records (at most `site.render.API_SESSIONS`)


@dataclass
class SiteInput:
    now: datetime
    title: str
    refresh_seconds: int
    page_size: int
    currency: str
    sessions: list[dict[str, Any]]  # registry index entries, newest first
    records: dict[str, dict[str, Any]]  # full records loaded (newest N and changed ones), by session_id
    runs: list[RunInfo]  # newest first
    problems: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # alert records (alerts_json), newest first
    ops_health: dict[str, Any] | None = None  # the latest `ops health` result (state/health/latest.json)
    ops_health_max_age: float = 1500.0  # older than this, the result no longer vouches for now
    summary: SessionsSummary | None = None  # set instead of `sessions` (then empty) when kept from the last build


def run_snapshot(
    meta: Mapping[str, Any],
    totals: Mapping[str, Any],
    last: Mapping[str, Any] | None,
    now: datetime,
    stale_bars: int,
    stale_min: float,
) -> LiveRunSnapshot:
    return build_snapshot(dict(meta), dict(totals), dict(last or {}), now, stale_bars, stale_min)


def session_truth(
    entry: dict[str, Any], run_meta: Mapping[str, Any] | None, now: datetime, stale_seconds: float
) -> dict[str, Any]:
    """A registry index entry with `status` set to what really happened (`status.session_state`): a record
    still `started` shows its run's final status (and end), or `stale`/`dead` when the writer is gone."""
    state = session_state(entry, run_meta, now, stale_seconds)
    if state == entry.get("status"):
        return entry
    out = {**entry, "status": state}
    if state in FINAL and run_meta is not None and not entry.get("finished_at"):
        ended = run_meta.get("ended_at")
        out["finished_at"] = ended if isinstance(ended, str) else None
    return out


def with_truth(record: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """A full record with the status (and end) its index entry shows (see `session_truth`)."""
    out = dict(record)
    out["status"] = entry.get("status")
    if not out.get("finished_at") and entry.get("finished_at"):
        out["finished_at"] = entry["finished_at"]
    return out


def run_metadata(info: RunInfo) -> dict[str, Any]:
    """Phase 67 `RunMetadataResponse` plus status and stale."""
    s = info.snapshot
    return {
        "run_id": s.run_id,
        "mode": s.mode,
        "strategy_name": s.strategy_name,
        "symbol": s.symbol,
        "timeframe": s.timeframe,
        "started_at": iso(s.started_at),
        "ended_at": iso(s.ended_at),
        "is_active": s.state == "running",
        "last_event_time": iso(s.last_bar_time),
        "status": s.status,
        "state": s.state,
        "stale": s.stale,
    }


def run_snapshot_json(s: LiveRunSnapshot) -> dict[str, Any]:
    """Phase 67 `RunSnapshotResponse` plus the Phase 33 fields it lacked (position, cash) and ours."""
    return {
        "run_id": s.run_id,
        "mode": s.mode,
        "strategy_name": s.strategy_name,
        "symbol": s.symbol,
        "timeframe": s.timeframe,
        "total_steps": s.total_steps,
        "total_orders": s.total_orders,
        "total_blocked_orders": s.total_blocked_orders,
        "equity": s.equity,
        "realized_pnl": s.realized_pnl,
        "unrealized_pnl": s.unrealized_pnl,
        "drawdown": s.drawdown,
        "last_event_time": iso(s.last_bar_time),
        "position_size": s.position_size,
        "cash": s.cash,
        "last_price": s.last_price,
        "status": s.status,
        "state": s.state,
        "stale": s.stale,
        "max_drawdown": s.max_drawdown,
        "fees": s.fees,
        "started_at": iso(s.started_at),
        "ended_at": iso(s.ended_at),
        "heartbeat_age_seconds": s.heartbeat_age_seconds,
        "error": s.error,
    }


def tail_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Phase 67 `TailRowResponse` rows, oldest first."""
    return [
        {
            "ts_bar": iso(r.get("ts_bar")) if isinstance(r.get("ts_bar"), datetime) else r.get("ts_bar"),
            "equity": r.get("equity"),
            "realized_pnl": r.get("realized_pnl"),
            "unrealized_pnl": r.get("unrealized_pnl"),
            "position_size": r.get("position_size"),
            "orders_count": int(r.get("orders_generated") or 0),
            "risk_allowed": r.get("risk_allowed") is not False,
            "risk_reasons": r.get("risk_reasons") or "",
        }
        for r in rows
    ]


def session_detail(record: Mapping[str, Any]) -> dict[str, Any]:
    """Phase 85 `LiveSessionDetail`: the summary plus risk-limit details, config, metrics and CLI args."""
    out = views.live_session_summary(record)
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    risk = config.get("live_risk") if isinstance(config.get("live_risk"), dict) else {}
    out.update(
        risk_limit_details=[
            {"limit_name": k, "limit_value": v}
            for k, v in sorted(risk.items())
            if isinstance(v, int | float) and not isinstance(v, bool) and k.startswith(("max_", "min_"))
        ],
        run_type=record.get("run_type"),
        env_name=record.get("env_name"),
        config=config,
        metrics=record.get("metrics") or {},
        cli_args=record.get("cli_args") or [],
        created_at=record.get("created_at"),
        tags=record.get("tags") or [],
    )
    return out


def stats_json(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """Phase 85 stats: totals by mode and status. PnL per mode only: modes are never summed together."""
    summary = views.index_summary(sessions)
    return {
        "total_sessions": summary["num_sessions"],
        "by_mode": summary["by_mode"],
        "by_status": summary["by_status"],
        "realized_pnl_by_mode": summary["realized_pnl_by_mode"],
        "avg_drawdown": summary["avg_max_drawdown"],
        "first_started_at": summary["first_started_at"],
        "last_started_at": summary["last_started_at"],
    }


def sessions_as_records(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Index entries shaped like records (what `views` expects), without loading every file."""
    return [{**e, "metrics": {k: e.get(k) for k in ("realized_pnl", "max_drawdown", "num_orders")}} for e in entries]


def status_snapshot(inp: SiteInput, health: dict[str, Any]) -> dict[str, Any]:
    """The seed's `/api/live/status/snapshot.json`: version, generated_at, panels (sorted by id), meta."""
    running = [r for r in inp.runs if r.snapshot.state == "running"]
    stale = [r for r in inp.runs if r.snapshot.state == "stale"]
    dead = [r for r in inp.runs if r.snapshot.state == "dead"]
    summary = inp.summary
    by_status = summary.by_status if summary is not None else sessions_by_status(inp.sessions)
    total = summary.total if summary is not None else len(inp.sessions)
    panels = [
        {
            "id": "live_sessions",
            "title": "Live sessions",
            "status": "ok",
            "details": {"total": total, **dict(sorted(by_status.items()))},
        },
        {
            "id": "runs",
            "title": "Runs",
            "status": "warn" if stale or dead else "ok",
            "details": {"total": len(inp.runs), "running": len(running), "stale": len(stale), "dead": len(dead)},
        },
        {
            "id": "system",
            "title": "System status",
            "status": "ok" if health["status"] == "ok" else "warn",
            "details": {"problems": len(health["problems"]), "generator": "peaktrade site build"},
        },
    ]
    return {
        "version": "0.1",
        "generated_at": iso(inp.now),
        "panels": sorted(panels, key=lambda p: p["id"]),
        "meta": {"source": "peaktrade site build"},
    }


def health(inp: SiteInput) -> dict[str, Any]:
    """The badge and `api/health.json`: the build's own problems and stale runs plus the latest `ops health`."""
    stale = [r.run_id for r in inp.runs if r.snapshot.stale]
    build_status = "ok" if not inp.problems and not stale else "degraded"
    ops = healthview.ops_summary(inp.ops_health, inp.now, inp.ops_health_max_age)
    return {
        "status": healthview.worst(build_status, ops["status"]),
        "build_status": build_status,
        "ops_health": ops,
        "latest": inp.ops_health,
        "contract_version": CONTRACT_VERSION,
        "server_time": iso(inp.now),
        "problems": list(inp.problems),
        "stale_runs": stale,
    }


def prometheus(inp: SiteInput) -> str:
    """A node_exporter textfile: per-run gauges (only numbers; label values escaped)."""
    gauges = [
        ("peaktrade_run_equity", "Equity of the run", lambda s: s.equity),
        ("peaktrade_run_realized_pnl", "Realized PnL net of fees", lambda s: s.realized_pnl),
        ("peaktrade_run_unrealized_pnl", "Unrealized PnL", lambda s: s.unrealized_pnl),
        ("peaktrade_run_drawdown_ratio", "Current drawdown (fraction)", lambda s: s.drawdown),
        ("peaktrade_run_max_drawdown_ratio", "Max drawdown (fraction)", lambda s: s.max_drawdown),
        ("peaktrade_run_steps", "Bars processed", lambda s: s.total_steps),
        ("peaktrade_run_orders", "Orders decided", lambda s: s.total_orders),
        ("peaktrade_run_blocked_orders", "Orders blocked by risk limits", lambda s: s.total_blocked_orders),
        (
            "peaktrade_run_heartbeat_age_seconds",
            "Seconds since the run's heartbeat",
            lambda s: s.heartbeat_age_seconds if s.status == "running" else None,
        ),
        (
            "peaktrade_run_running",
            "1 while the run is running and its writer alive",
            lambda s: 1 if s.state == "running" else 0,
        ),
        (
            "peaktrade_run_stale",
            "1 if the run says running but its heartbeat is too old or its writer process is gone",
            lambda s: int(s.stale),
        ),
        (
            "peaktrade_run_dead",
            "1 if the run says running but its writer process is gone",
            lambda s: int(s.state == "dead"),
        ),
    ]
    # The label set of a run is the same for every gauge: escape it once (1,000 runs x 11 gauges per build).
    labelled = [
        (
            r.snapshot,
            ",".join(
                f'{k}="{_label(v)}"'
                for k, v in (
                    ("run_id", r.snapshot.run_id),
                    ("mode", r.snapshot.mode),
                    ("strategy", r.snapshot.strategy_name),
                    ("symbol", r.snapshot.symbol),
                )
            ),
        )
        for r in inp.runs
    ]
    lines = []
    for name, help_text, get in gauges:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for s, labels in labelled:
            value = get(s)
            if value is None:
                continue
            lines.append(f"{name}{{{labels}}} {float(value):.10g}")
    lines += [
        "# HELP peaktrade_site_generated_timestamp_seconds When the site was built",
        "# TYPE peaktrade_site_generated_timestamp_seconds gauge",
        f"peaktrade_site_generated_timestamp_seconds {inp.now.timestamp():.0f}",
    ]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def newest_data_time(inp: SiteInput) -> datetime | None:
    """The freshest input: newest heartbeat or session change (for "how old is this data")."""
    stamps = [parse_ts(r.meta.get("heartbeat_at")) for r in inp.runs]
    stamps.append(inp.summary.newest_time if inp.summary is not None else newest_session_time(inp.sessions))
    stamps = [s for s in stamps if s is not None]
    return max(stamps) if stamps else None


def newest_session_time(sessions: list[dict[str, Any]]) -> datetime | None:
    stamps = [parse_ts(e.get("heartbeat_at") or e.get("finished_at") or e.get("started_at")) for e in sessions]
    stamps = [s for s in stamps if s is not None]
    return max(stamps) if stamps else None


def sessions_by_status(sessions: list[dict[str, Any]]) -> dict[str, int]:
    by_status: dict[str, int] = {}
    for e in sessions:
        by_status[e.get("status") or "unknown"] = by_status.get(e.get("status") or "unknown", 0) + 1
    return by_status


ALERT_FIELDS = ("at", "event", "key", "severity", "title", "run_id", "session_id", "status", "raised_at", "target")


def alerts_json(records: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Alert history records for `api/alerts.json`, newest first; ids that are not safe become None."""
    from peaktrade.ids import ID_PATTERN

    out = []
    for r in records:
        row = {k: r.get(k) if isinstance(r.get(k), str) else None for k in ALERT_FIELDS}
        for key in ("run_id", "session_id"):
            if row[key] is not None and not ID_PATTERN.match(row[key]):
                row[key] = None
        if row["severity"] not in ("info", "warning", "critical"):
            row["severity"] = "info"
        out.append(row)
    return out


def alerts_by_run(alerts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Alert records grouped by run id (each list newest first)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for a in alerts:
        if a.get("run_id"):
            out.setdefault(a["run_id"], []).append(a)
    return out
