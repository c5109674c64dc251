"""Pure models of the site's health parts: the badge status and the `health.html` page (latest + timeline).

Inputs are the documents `peaktrade.healthlog` reads (the `ops health --json` result and its history).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from peaktrade.clock import parse_ts
from peaktrade.views import age_text

STATUS_OF_OVERALL = {"OK": "ok", "DEGRADED": "degraded", "FAIL": "fail"}
_RANK = {"ok": 0, "degraded": 1, "fail": 2}
CHANGES_SHOWN = 50


def worst(*statuses: str | None) -> str:
    """The worse of badge statuses (`ok` < `degraded` < `fail`); None is ignored."""
    known = [s for s in statuses if s in _RANK]
    return max(known, key=_RANK.__getitem__) if known else "ok"


def badge(health: Mapping[str, Any]) -> dict[str, str]:
    """The header's health badge: its status and hover text, from `api/health.json` as a build writes it. Every
    page is rendered with it, and `build-time.js` carries the newest build's, which the page's script shows: a
    page not rendered again since (nothing on it changed) still shows the health of the site as it is now."""
    status = health.get("status")
    ops = health.get("ops_health")
    ops = ops if isinstance(ops, Mapping) else {}
    text = f"ops health: {ops.get('overall') or 'never ran'}"
    if ops.get("late"):
        text += f" (result {ops.get('age')} old)"
    problems, stale = health.get("problems"), health.get("stale_runs")
    problems = len(problems) if isinstance(problems, list) else 0
    stale = len(stale) if isinstance(stale, list) else 0
    text += f" · build: {problems} problem(s), {stale} stale run(s)"
    return {"status": status if isinstance(status, str) and status in _RANK else "degraded", "title": text}


def ops_summary(latest: Mapping[str, Any] | None, now: datetime, max_age_seconds: float) -> dict[str, Any]:
    """What the badge says about `ops health`: its overall status, when, and whether the result is too old."""
    if latest is None:
        return {
            "overall": None,
            "status": None,
            "checked_at": None,
            "checked_epoch": None,
            "age": None,
            "late": False,
        }
    checked = parse_ts(latest.get("checked_at"))
    age = (now - checked).total_seconds() if checked else None
    late = age is None or age > max_age_seconds
    status = STATUS_OF_OVERALL.get(str(latest.get("overall")), "degraded")
    return {
        "overall": latest.get("overall"),
        # a result that is too old says nothing about now: at least "degraded" (cron or `ops health` stopped)
        "status": worst(status, "degraded") if late else status,
        "checked_at": latest.get("checked_at"),
        "checked_epoch": int(checked.timestamp()) if checked else None,  # the page's script keeps `age` current
        "age": age_text(age) if age is not None else "unknown",
        "late": late,
    }


def page(latest: Mapping[str, Any] | None, results: Sequence[Mapping[str, Any]], columns: int) -> dict[str, Any]:
    """Context of `health.html`: the latest result per check, and a timeline (row per check, cell per run)."""
    shown = list(results)[-columns:] if columns > 0 else []
    names: list[str] = []
    for doc in [latest or {}, *reversed(shown)]:
        for c in _checks(doc):
            if c["name"] not in names:
                names.append(c["name"])
    times = [parse_ts(doc.get("checked_at")) for doc in shown]
    rows = []
    changes = []
    for name in names:
        cells = []
        previous = None
        for doc, ts in zip(shown, times):
            check = next((c for c in _checks(doc) if c["name"] == name), None)
            status = check["status"] if check else "none"
            changed = status != previous
            cells.append(
                {
                    "status": status,
                    "label": ts.strftime("%H:%M") if changed and ts else "",
                    "title": f"{ts.strftime('%Y-%m-%d %H:%M') if ts else '?'} {status}: "
                    f"{check['message'] if check else 'not checked'}",
                }
            )
            if changed and previous is not None:
                changes.append({"at": ts, "name": name, "before": previous, "after": status})
            previous = status
        rows.append({"name": name, "cells": cells})
    changes.sort(key=lambda c: c["at"].timestamp() if c["at"] else 0.0, reverse=True)
    return {
        "checks": _checks(latest or {}),
        "timeline": rows,
        "timeline_from": times[0] if times else None,
        "timeline_to": times[-1] if times else None,
        "timeline_runs": len(shown),
        "changes": changes[:CHANGES_SHOWN],
    }


def _checks(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in doc.get("checks") or []:
        if isinstance(c, Mapping) and isinstance(c.get("name"), str):
            status = c.get("status") if c.get("status") in ("ok", "warn", "fail", "skip") else "none"
            details = c.get("details") if isinstance(c.get("details"), list) else []
            out.append(
                {
                    "name": c["name"],
                    "status": status,
                    "message": str(c.get("message") or ""),
                    "fix": str(c.get("fix") or ""),
                    "details": [str(d) for d in details[:50]],
                }
            )
    return out
