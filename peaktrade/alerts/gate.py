"""The alert gate and message composition. Pure: state, alerts and `now` in; items to send and new state out.

Per key the gate remembers what was last sent. A new alert goes out; the same alert within the cool-down is held
back and counted; a higher severity goes out at once; after the cool-down a still-holding condition is repeated;
a condition no longer raised gets one "resolved" item. Items are then routed by severity to apprise tags and
batched into one message per target per run (`compose`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peaktrade.alerts.model import RANK, Alert
from peaktrade.clock import iso, parse_ts


@dataclass
class GateResult:
    items: list[dict[str, Any]]  # to send now
    keys: dict[str, dict[str, Any]]  # the new per-key state
    records: list[dict[str, Any]]  # for the history: raised / sent / suppressed / resolved
    suppressed: int = 0


def apply(
    keys: Mapping[str, Mapping[str, Any]],
    alerts: Iterable[Alert],
    now: datetime,
    cooldown: float,
    unknown: Iterable[str] = (),
) -> GateResult:
    """Pass `alerts` through the gate. Keys starting with a prefix in `unknown` are neither resolved nor dropped
    (their inputs could not be read this time)."""
    stamp = iso(now)
    state = {k: dict(v) for k, v in keys.items()}
    out = GateResult([], {}, [])
    raised: dict[str, Alert] = {}
    for alert in alerts:  # one alert per key: the worst wins
        have = raised.get(alert.key)
        if have is None or RANK[alert.severity] > RANK[have.severity]:
            raised[alert.key] = alert
    for key in sorted(raised):
        alert = raised[key]
        entry = state.get(key)
        if entry is None:
            out.records.append(_record(stamp, "raised", alert))
            _send(out, alert, stamp, "new", None)
            state[key] = _entry(alert, stamp, stamp)
            continue
        entry["last_seen"] = stamp
        if alert.kind == "once":
            continue
        age = _seconds(now, entry.get("last_sent"))
        if RANK[alert.severity] > RANK.get(entry.get("severity"), 0):
            out.records.append(_record(stamp, "raised", alert))
            _send(out, alert, stamp, "escalated", entry)
        elif age is None or age >= cooldown:
            _send(out, alert, stamp, "repeat", entry)
        else:
            entry["suppressed"] = int(entry.get("suppressed") or 0) + 1
            entry.setdefault("suppressed_since", stamp)
            held = dict(entry.get("held_counts") or {})
            for name, n in alert.counts.items():
                held[name] = int(held.get(name, 0)) + int(n)
            entry["held_counts"] = held
            entry["severity"] = alert.severity  # de-escalated: a new rise must go out at once
            out.records.append(_record(stamp, "suppressed", alert))
            out.suppressed += 1
            continue
        state[key] = {**_entry(alert, entry.get("first_seen") or stamp, stamp), "last_seen": stamp}
    skip = tuple(unknown)
    for key in sorted(set(state) - set(raised)):
        entry = state[key]
        if skip and key.startswith(skip):
            continue
        kind = entry.get("kind")
        if kind == "condition":
            item = _item_from_entry(entry, key, stamp, "resolved")
            item["suppressed"] = 0
            item["held_counts"] = {}
            out.items.append(item)
            out.records.append({**_record_from_entry(entry, key, stamp), "event": "resolved"})
            del state[key]
        elif kind == "event":
            age = _seconds(now, entry.get("last_sent"))
            if age is not None and age < cooldown:
                continue
            if entry.get("suppressed"):  # held repeats: say them once the cool-down is over
                out.items.append(_item_from_entry(entry, key, stamp, "digest"))
                out.records.append({**_record_from_entry(entry, key, stamp), "event": "sent"})
            del state[key]
        else:  # once: forget it when it is no longer raised (the session left the look-back window)
            del state[key]
    out.keys = state
    return out


def _seconds(now: datetime, stamp: Any) -> float | None:
    then = parse_ts(stamp) if isinstance(stamp, str) else None
    return None if then is None else (now - then).total_seconds()


def _entry(alert: Alert, first_seen: str, stamp: str) -> dict[str, Any]:
    return {
        "severity": alert.severity,
        "kind": alert.kind,
        "title": alert.title,
        "body": alert.body,
        "run_id": alert.run_id,
        "session_id": alert.session_id,
        "link": alert.link,
        "attach_run": alert.attach_run,
        "first_seen": first_seen,
        "last_sent": stamp,
        "last_seen": stamp,
        "suppressed": 0,
        "held_counts": {},
    }


def _send(out: GateResult, alert: Alert, stamp: str, status: str, entry: Mapping[str, Any] | None) -> None:
    out.items.append(
        {
            "key": alert.key,
            "status": status,
            "severity": alert.severity,
            "title": alert.title,
            "body": alert.body,
            "link": alert.link,
            "run_id": alert.run_id,
            "session_id": alert.session_id,
            "attach_run": alert.attach_run,
            "raised_at": stamp,
            "first_seen": (entry or {}).get("first_seen") or stamp,
            "suppressed": int((entry or {}).get("suppressed") or 0),
            "suppressed_since": (entry or {}).get("suppressed_since"),
            "held_counts": dict((entry or {}).get("held_counts") or {}),
        }
    )
    out.records.append({**_record(stamp, "sent", alert), "status": status})


def _item_from_entry(entry: Mapping[str, Any], key: str, stamp: str, status: str) -> dict[str, Any]:
    return {
        "key": key,
        "status": status,
        "severity": entry.get("severity") or "info",
        "title": entry.get("title") or key,
        "body": entry.get("body") or "",
        "link": entry.get("link"),
        "run_id": entry.get("run_id"),
        "session_id": entry.get("session_id"),
        "attach_run": None,
        "raised_at": stamp,
        "first_seen": entry.get("first_seen") or stamp,
        "suppressed": int(entry.get("suppressed") or 0),
        "suppressed_since": entry.get("suppressed_since"),
        "held_counts": dict(entry.get("held_counts") or {}),
    }


def _record(stamp: str, event: str, alert: Alert) -> dict[str, Any]:
    return {
        "at": stamp,
        "event": event,
        "key": alert.key,
        "severity": alert.severity,
        "title": alert.title,
        "run_id": alert.run_id,
        "session_id": alert.session_id,
        "link": alert.link,
    }


def _record_from_entry(entry: Mapping[str, Any], key: str, stamp: str) -> dict[str, Any]:
    return {
        "at": stamp,
        "key": key,
        "severity": entry.get("severity") or "info",
        "title": entry.get("title") or key,
        "run_id": entry.get("run_id"),
        "session_id": entry.get("session_id"),
        "link": entry.get("link"),
    }


# -- routing and composition ---------------------------------------------------------------------------------


def tags_for(severity: str, routes: Mapping[str, Iterable[str]]) -> set[str]:
    """The apprise tags that receive an item of `severity` (`[alerts] route_<severity>`)."""
    return set(routes.get(severity, ()))


@dataclass
class Message:
    title: str
    body: str
    notify_type: str  # apprise NotifyType value: info, success, warning, failure
    attach_runs: list[str] = field(default_factory=list)


_ORDER = {"critical": 0, "warning": 1, "info": 2}
FULL_ITEMS = 15  # items shown in full in one message
MORE_LINES = 50  # further items shown as one title line each
_NOTIFY = {"critical": "failure", "warning": "warning", "info": "info"}


def compose(items: list[dict[str, Any]], title_prefix: str, now: datetime) -> Message:
    """One message for a batch: title with counts per severity, the worst severity as notify type."""
    live = [i for i in items if i.get("status") != "resolved"]
    resolved = [i for i in items if i.get("status") == "resolved"]
    counts = []
    for severity in ("critical", "warning", "info"):
        n = sum(1 for i in live if i.get("severity") == severity)
        if n:
            counts.append(f"{n} {severity}")
    if resolved:
        counts.append(f"{len(resolved)} resolved")
    if live:
        worst = min((i.get("severity") for i in live), key=lambda s: _ORDER.get(s, 3))
        notify = _NOTIFY.get(worst, "info")
    else:
        notify = "success"
    head = ", ".join(counts) if counts else "no alerts"
    if len(items) == 1:
        head = f"{_label(items[0])} {_title(items[0])}"
    ordered = sorted(items, key=lambda i: (i.get("status") == "resolved", _ORDER.get(i.get("severity"), 3)))
    body = "\n\n---\n\n".join(_section(i, now) for i in ordered[:FULL_ITEMS])
    if len(ordered) > FULL_ITEMS:  # chat services cut long messages: the rest as one line each
        rest = ordered[FULL_ITEMS:]
        lines = [f"- {_label(i)} {_title(i)}" for i in rest[:MORE_LINES]]
        if len(rest) > MORE_LINES:
            lines.append(f"- ... {len(rest) - MORE_LINES} more on the site's alerts page")
        body += f"\n\n---\n\n**{len(rest)} more:**\n\n" + "\n".join(lines)
    attach = sorted({i["attach_run"] for i in items if i.get("attach_run") and i.get("status") != "resolved"})
    return Message(f"{title_prefix} {head}".strip(), body, notify, attach)


def _label(item: Mapping[str, Any]) -> str:
    return "RESOLVED" if item.get("status") == "resolved" else str(item.get("severity")).upper()


def _title(item: Mapping[str, Any]) -> str:
    status = item.get("status")
    if status == "repeat":
        return f"still: {item.get('title')}"
    return str(item.get("title"))


def _hhmm(stamp: Any) -> str:
    ts = parse_ts(stamp) if isinstance(stamp, str) else None
    return ts.strftime("%Y-%m-%d %H:%M UTC") if ts else "?"


def _section(item: Mapping[str, Any], now: datetime) -> str:
    status = item.get("status")
    lines = [f"**{_label(item)}** · {_title(item)}"]
    if status == "resolved":
        lines.append(f"No longer holds (cleared, or the run ended); raised since {_hhmm(item.get('first_seen'))}.")
    elif status == "digest":
        lines.append(f"Held back during the cool-down since {_hhmm(item.get('suppressed_since'))}:")
    else:
        lines.append(str(item.get("body") or ""))
    if status == "escalated":
        lines.append("Severity rose: sent at once.")
    if status == "repeat":
        lines.append(f"Still holding since {_hhmm(item.get('first_seen'))}.")
    n = int(item.get("suppressed") or 0)
    if n and status != "resolved":
        held = item.get("held_counts") or {}
        extra = ""
        if held:
            extra = ": " + ", ".join(f"{k} {v}" for k, v in sorted(held.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"(+{n} repeat(s) suppressed since {_hhmm(item.get('suppressed_since'))}{extra})")
    if item.get("link"):
        lines.append(f"[Open]({item['link']})")
    raised = parse_ts(item.get("raised_at")) if isinstance(item.get("raised_at"), str) else None
    delayed = raised is not None and (now - raised).total_seconds() > 60
    lines.append(f"_{_hhmm(item.get('raised_at'))}{' (delayed: a target was down)' if delayed else ''}_")
    return "\n\n".join(line for line in lines if line)
