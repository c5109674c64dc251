"""Pure view models shared by reports and the site, so both show the same numbers to the cent.

Inputs are registry records, run snapshots and event tables already loaded; nothing here touches disk or clock.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from peaktrade.clock import parse_ts

STATUSES = ("started", "completed", "failed", "aborted")
# what readers show instead of `started` when the writer is gone (peaktrade.status)
WRITER_GONE = ("stale", "dead")
STATUS_LABELS = {
    "completed": "OK",
    "failed": "FAIL",
    "aborted": "ABORT",
    "started": "RUN",
    "stale": "STALE",
    "dead": "DEAD",
}


def money(value: float | None) -> str:
    """Signed, two decimals, thousands separators: the one PnL format of reports and pages."""
    return "-" if value is None else f"{value:+,.2f}"


def amount(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.2f}%"


def short_id(text: str, limit: int = 25) -> str:
    """At most `limit` characters, keeping the end: ids share their prefix (`session_2026…`) and differ at the end
    (time, mode, random hex), so `…080645_shadow_34fff7` tells two sessions apart where a cut tail would not."""
    if len(text) <= limit:
        return text
    tail = text[len(text) - limit + 1 :]
    cut = tail.find("_")
    if 0 <= cut < len(tail) // 2:  # start at a whole part (`…080645_…`, not `…1121_080645_…`)
        tail = tail[cut + 1 :]
    return "…" + tail


def _metric(record: Mapping[str, Any], key: str) -> Any:
    metrics = record.get("metrics")
    return _number(metrics.get(key)) if isinstance(metrics, dict) else None


def live_session_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """The seed's `LiveSessionSummary` (field names and meaning of Phase 82) for one registry record."""
    started = parse_ts(record.get("started_at"))
    ended = parse_ts(record.get("finished_at"))
    status = record.get("status")
    if status not in STATUSES and status not in WRITER_GONE:
        status = "completed" if ended else "started"
    num_orders = _metric(record, "num_orders")
    if num_orders is None:
        num_orders = _metric(record, "num_trades")
    return {
        "session_id": record.get("session_id"),
        "started_at": started.isoformat() if started else None,
        "ended_at": ended.isoformat() if ended else None,
        "mode": record.get("mode") or "unknown",
        "environment": f"{record.get('env_name') or '-'} / {record.get('symbol') or '-'}",
        "status": status,
        "realized_pnl": _metric(record, "realized_pnl"),
        "max_drawdown": _metric(record, "max_drawdown"),
        "num_orders": None if num_orders is None else int(num_orders),
        "report_path": None,
        "notes": record.get("error") or record.get("notes") or None,
        "duration_seconds": int((ended - started).total_seconds()) if started and ended else None,
        "is_live_warning": record.get("mode") == "live",
        "run_id": record.get("run_id"),
        "strategy": record.get("strategy"),
        "symbol": record.get("symbol"),
    }


def sessions_summary(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Count, status distribution, realized PnL per mode (never summed across modes), average max drawdown,
    first and last start. The same function feeds `report sessions` and (as `index_summary`) the site's stats."""
    records = list(records)
    starts = [ts for ts in map(_start_time, (r.get("started_at") for r in records)) if ts]
    return _summary(
        records, [_metric(r, "realized_pnl") for r in records], [_metric(r, "max_drawdown") for r in records], starts
    )


def index_summary(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`sessions_summary` of registry index entries, whose metrics are top-level keys: no record is shaped per
    entry (the site computes this over 10,000 entries on every build)."""
    entries = list(entries)
    pnls = list(map(_number, (e.get("realized_pnl") for e in entries)))
    # first and last by `_started`, the start time the index parsed: two parsed here, not 10,000
    ends = (min(entries, key=_STARTED), max(entries, key=_STARTED)) if entries else ()
    starts = [ts for ts in (_start_time(e.get("started_at")) for e in ends) if ts]
    return _summary(entries, pnls, list(map(_number, (e.get("max_drawdown") for e in entries))), starts)


_STARTED = operator.itemgetter("_started")


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _summary(
    records: list[Mapping[str, Any]], pnls: list[Any], dds: list[Any], starts: list[datetime]
) -> dict[str, Any]:
    pnl: dict[str, float] = {}
    for r, value in zip(records, pnls):
        if value is not None:
            mode = r.get("mode") or "unknown"
            pnl[mode] = pnl.get(mode, 0.0) + value
    dds = [dd for dd in dds if dd is not None]
    return {
        "num_sessions": len(records),
        "by_status": dict(sorted(Counter(r.get("status") or "unknown" for r in records).items())),
        "by_mode": dict(sorted(Counter(r.get("mode") or "unknown" for r in records).items())),
        "realized_pnl_by_mode": {k: round(v, 8) for k, v in sorted(pnl.items())},
        "avg_max_drawdown": round(sum(dds) / len(dds), 10) if dds else 0.0,
        "first_started_at": parse_ts(min(starts)).isoformat() if starts else None,
        "last_started_at": parse_ts(max(starts)).isoformat() if starts else None,
    }


def _start_time(value: Any) -> datetime | None:
    # The common case first (an aware ISO string, as every registry record has): stats run over 10,000 records
    # on every site build, and comparing aware datetimes needs no conversion to UTC.
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            ts = None
        if ts is not None and ts.tzinfo is not None:
            return ts
    return parse_ts(value)


def funnel(totals: Mapping[str, Any], orders: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The "why no trade" funnel: signals -> orders -> blocked by reason -> rejected -> filled."""
    by_reason: Counter[str] = Counter()
    for o in orders:
        if o.get("status") == "blocked":
            for reason in o.get("reasons") or ["(no reason)"]:
                by_reason[reason.split(":", 1)[0]] += 1
    return {
        "signals": int(totals.get("signal_changes") or 0),
        "orders": int(totals.get("orders") or 0),
        "blocked": int(totals.get("blocked") or 0),
        "blocked_by_reason": dict(by_reason.most_common()),
        "rejected": int(totals.get("rejected") or 0),
        "filled": int(totals.get("filled") or 0),
    }


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size * (2 if unit != "min" else 1):
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def fmt_time(value: datetime | str | None) -> str:
    ts = parse_ts(value) if not isinstance(value, datetime) else value
    if not ts:
        return "-"
    if ts.year >= 1000:  # isoformat is C and a quarter of strftime's cost (~300 per run page); same text
        return ts.isoformat(" ", "seconds")[:19] + " UTC"
    return ts.strftime("%Y-%m-%d %H:%M:%S UTC")  # strftime does not pad a year below 1000
