"""The alerts' on-disk state in `state/alerts/` (this module owns the format; nothing else builds these paths).

- `gate.json`: per-key gate entries, how far each run's orders.jsonl was read, each running run's day-start
  equity;
- `outbox.json`: per target (a hash of its URL, never the URL) the items not yet delivered, plus the outcome
  of the last delivery attempt (`outbox_status` reads it for `ops health`);
- `history.jsonl`: what was raised, sent, suppressed, resolved, delivered or expired; the newest
  `[alerts] history_limit` lines;
- `charts/<run_id>.png`: equity charts attached to drawdown and loss alerts.

Every file is written atomically; a corrupt file reads as empty and is named in the problems. Writers hold the
`alerts-run` job lock (peaktrade.lock), so concurrent runs never interleave.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade.atomic import write_bytes, write_json, write_text
from peaktrade.clock import iso, parse_ts
from peaktrade.errors import ArtifactError
from peaktrade.safeio import MAX_JSON_BYTES, load_json_object, loads, read_bytes

SCHEMA_VERSION = 1
MAX_HISTORY_BYTES = 64 * 1024 * 1024
_FIX = "it is rebuilt by the next `peaktrade alerts run` (remove it if it stays broken)"


def alerts_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "alerts"


def _load(path: Path) -> tuple[dict[str, Any], str | None]:
    try:
        data = load_json_object(path, MAX_JSON_BYTES, fix=_FIX)
    except FileNotFoundError:
        return {}, None
    except ArtifactError as exc:
        return {}, str(exc)
    return data, None


def load_gate(state_dir: Path) -> tuple[dict[str, Any], str | None]:
    """({"keys", "offsets", "day_equity"}, problem or None); a missing file is a fresh start."""
    data, problem = _load(alerts_dir(state_dir) / "gate.json")
    return {
        "keys": {k: v for k, v in _dict(data.get("keys")).items() if isinstance(v, dict)},
        "offsets": {k: v for k, v in _dict(data.get("offsets")).items() if isinstance(v, int) and v >= 0},
        "day_equity": _dict(data.get("day_equity")),
        "runs": {k: v for k, v in _dict(data.get("runs")).items() if isinstance(v, str)},
    }, problem


def save_gate(state_dir: Path, gate: dict[str, Any]) -> None:
    directory = alerts_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "gate.json", {"schema_version": SCHEMA_VERSION, **gate}, fsync=True, indent=None)


def load_outbox(state_dir: Path) -> tuple[dict[str, Any], str | None]:
    """({"targets": {target_id: {"name", "items"}}, "last_attempt_at", ...}, problem or None)."""
    data, problem = _load(alerts_dir(state_dir) / "outbox.json")
    targets = {}
    for tid, value in _dict(data.get("targets")).items():
        if isinstance(value, dict) and isinstance(value.get("items"), list):
            items = [i for i in value["items"] if isinstance(i, dict)]
            if items:
                targets[tid] = {"name": str(value.get("name") or "?"), "items": items}
    data["targets"] = targets
    return data, problem


def save_outbox(state_dir: Path, outbox: dict[str, Any]) -> None:
    directory = alerts_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "outbox.json", {**outbox, "schema_version": SCHEMA_VERSION}, fsync=True, indent=None)


def append_history(state_dir: Path, records: list[dict[str, Any]], limit: int) -> None:
    """Append `records` and keep the newest `limit` lines (rewritten atomically; called under the job lock)."""
    if not records:
        return
    directory = alerts_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "history.jsonl"
    old, _ = _read_history(path)
    lines = [json.dumps(r, sort_keys=True, allow_nan=False, default=str) for r in [*old, *records]]
    write_text(path, "".join(line + "\n" for line in lines[-max(1, limit) :]), fsync=False)


def history(state_dir: Path, limit: int | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The recorded alert events, newest first (at most `limit`), and problems met reading them."""
    records, problems = _read_history(alerts_dir(state_dir) / "history.jsonl")
    records.reverse()
    return (records[:limit] if limit is not None else records), problems


def _read_history(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        data = read_bytes(path, MAX_HISTORY_BYTES)
    except FileNotFoundError:
        return [], []
    except ArtifactError as exc:
        return [], [str(exc)]
    out, bad = [], 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            doc = loads(line)
        except (ValueError, RecursionError):
            bad += 1
            continue
        if isinstance(doc, dict) and isinstance(doc.get("at"), str) and isinstance(doc.get("event"), str):
            out.append(doc)
        else:
            bad += 1
    problems = [f"{path}: {bad} unreadable line(s) skipped; they are dropped at the next `alerts run`"] if bad else []
    return out, problems


def chart_path(state_dir: Path, run_id: str) -> Path:
    return alerts_dir(state_dir) / "charts" / f"{run_id}.png"


def save_chart(state_dir: Path, run_id: str, png: bytes) -> Path:
    path = chart_path(state_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, png, fsync=False)
    return path


@dataclass(frozen=True)
class OutboxStatus:
    """What `ops health` needs to warn while deliveries fail."""

    pending_messages: int  # targets with undelivered items
    pending_items: int
    oldest_pending_at: datetime | None
    last_attempt_at: datetime | None
    last_ok: bool | None  # None: `alerts run` never delivered anything
    failing_targets: list[str] = field(default_factory=list)  # service names, never URLs
    problem: str | None = None

    @property
    def failing(self) -> bool:
        return bool(self.pending_items) or self.last_ok is False


def outbox_status(state_dir: Path) -> OutboxStatus:
    """Undelivered alert messages and the last delivery outcome, read from `state/alerts/outbox.json`."""
    data, problem = load_outbox(state_dir)
    items = [i for t in data["targets"].values() for i in t["items"]]
    stamps = [parse_ts(i.get("raised_at")) for i in items if isinstance(i.get("raised_at"), str)]
    stamps = [s for s in stamps if s is not None]
    last_ok = data.get("last_ok")
    return OutboxStatus(
        pending_messages=len(data["targets"]),
        pending_items=len(items),
        oldest_pending_at=min(stamps) if stamps else None,
        last_attempt_at=parse_ts(data.get("last_attempt_at"))
        if isinstance(data.get("last_attempt_at"), str)
        else None,
        last_ok=last_ok if isinstance(last_ok, bool) else None,
        failing_targets=sorted({str(n) for n in data.get("failing_targets") or [] if isinstance(n, str)}),
        problem=problem,
    )


def delivery_outcome(outbox: dict[str, Any], now: datetime, failing: list[str]) -> dict[str, Any]:
    """The outbox document with the outcome of this run's delivery attempt recorded."""
    return {
        "targets": outbox.get("targets", {}),
        "last_attempt_at": iso(now),
        "last_ok": not failing,
        "failing_targets": sorted(set(failing)),
        "last_ok_at": iso(now) if not failing else outbox.get("last_ok_at"),
    }


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}
