"""Health results (pure): one `CheckResult` per check, the overall verdict, the JSON document, the text lines.

Overall (seed Phase 51): `FAIL` when a *critical* check fails, `DEGRADED` when any other check fails or warns,
else `OK`. Whether a failure is critical is decided by the check itself (`CheckResult.critical`): the config
always, a dead session writer always, the exchange only when a running session or the config needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peaktrade.clock import iso

STATUSES = ("ok", "warn", "fail", "skip")
OK, DEGRADED, FAIL = "OK", "DEGRADED", "FAIL"
NAGIOS = {OK: 0, DEGRADED: 1, FAIL: 2}
NAGIOS_UNKNOWN = 3
NAGIOS_WORDS = {OK: "OK", DEGRADED: "WARNING", FAIL: "CRITICAL"}

# The seed's keys (Phase 51 `live_ops health --json`), with what they say when no check filled them in.
SEED_DEFAULTS: dict[str, Any] = {
    "config_ok": False,
    "config_errors": [],
    "exchange_ok": None,
    "exchange_errors": [],
    "alerts_enabled": False,
    "alert_sinks_configured": [],
    "alert_config_warnings": [],
    "live_risk_ok": None,
    "live_risk_warnings": [],
}

MAX_DETAILS = 50


@dataclass(frozen=True)
class CheckResult:
    """What one check found. `data` carries the seed keys it answers; `details` one line per finding."""

    name: str
    status: str  # ok | warn | fail | skip
    message: str
    fix: str = ""
    critical: bool = False
    data: Mapping[str, Any] = field(default_factory=dict)
    details: tuple[str, ...] = ()
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check {self.name}: status {self.status!r} is not one of {STATUSES}")


def evaluate(results: Iterable[CheckResult]) -> str:
    """`FAIL` if a critical check failed, `DEGRADED` if any check failed or warned, else `OK`."""
    overall = OK
    for r in results:
        if r.status == "fail" and r.critical:
            return FAIL
        if r.status in ("fail", "warn"):
            overall = DEGRADED
    return overall


def document(results: Sequence[CheckResult], checked_at: datetime, seconds: float | None = None) -> dict[str, Any]:
    """The `ops health --json` document: the seed's keys, `overall`, `checked_at` and `checks`."""
    doc: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in SEED_DEFAULTS.items()}
    for r in results:
        doc.update(r.data)
    doc["overall"] = evaluate(results)
    doc["checked_at"] = iso(checked_at)
    if seconds is not None:
        doc["seconds"] = round(seconds, 3)
    doc["checks"] = [
        {
            "name": r.name,
            "status": r.status,
            "message": r.message,
            "fix": r.fix,
            "seconds": round(r.seconds, 3),
            "critical": r.critical,
            "details": _capped(r.details),
        }
        for r in results
    ]
    return doc


def _capped(details: Sequence[str]) -> list[str]:
    """At most MAX_DETAILS lines per check: every result is kept in the history, so it must stay small."""
    out = [str(d)[:500] for d in details[:MAX_DETAILS]]
    if len(details) > MAX_DETAILS:
        out.append(f"... and {len(details) - MAX_DETAILS} more")
    return out


def escape(text: object) -> str:
    """Control characters (from artifacts, file names) as visible `\\xNN`, so they never reach a terminal."""
    from peaktrade.terminal import printable

    return printable(text)


def text_lines(doc: Mapping[str, Any], nagios: bool = False) -> list[str]:
    """One line per check (status, what was found, the fix), then the overall line; escaped."""
    checks = [c for c in doc.get("checks") or [] if isinstance(c, Mapping)]
    counts = {s: sum(1 for c in checks if c.get("status") == s) for s in STATUSES}
    summary = ", ".join(f"{counts[s]} {s}" for s in ("fail", "warn", "skip") if counts[s]) or "all ok"
    overall = str(doc.get("overall"))
    lines = []
    if nagios:
        bad = ", ".join(str(c.get("name")) for c in checks if c.get("status") in ("fail", "warn"))
        lines.append(
            escape(f"PEAKTRADE HEALTH {NAGIOS_WORDS.get(overall, 'UNKNOWN')} - {summary}{': ' if bad else ''}{bad}")
        )
    width = max([len(str(c.get("name"))) for c in checks] or [0])
    for c in checks:
        status = str(c.get("status"))
        line = f"{status.upper():<4}  {c.get('name')!s:<{width}}  {c.get('message')}"
        if status in ("warn", "fail") and c.get("fix"):
            line += f"  -> fix: {c.get('fix')}"
        lines.append(escape(line))
    took = f" in {doc['seconds']:.2f} s" if isinstance(doc.get("seconds"), int | float) else ""
    lines.append(escape(f"overall: {overall} ({summary}){took}, checked at {doc.get('checked_at')}"))
    return lines


def exit_code(overall: str, nagios: bool) -> int:
    """Seed codes: 0 for OK and DEGRADED, 1 for FAIL; Nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
    if nagios:
        return NAGIOS.get(overall, NAGIOS_UNKNOWN)
    return 1 if overall == FAIL else 0


def listing(items: Sequence[str], limit: int = 3) -> str:
    """`a; b; c and 4 more`: a bounded message from a long list (the full list goes into `details`)."""
    shown = "; ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
