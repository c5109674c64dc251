"""The on-disk health record: the latest `ops health` result and a bounded history, in `state/health/`.

- `latest.json`: the newest result document (the same JSON `ops health --json` prints), written atomically;
- `history.jsonl`: one result per line, oldest first, at most `retention` lines; rewritten atomically under a
  lock, so a crashed or concurrent `ops health` never corrupts it. An unreadable line is dropped and counted.

A result document: {"schema_version", "overall": "OK"|"DEGRADED"|"FAIL", "checked_at": ISO,
"checks": [{"name", "status": "ok"|"warn"|"fail"|"skip", "message", "fix", "seconds"}], ...seed keys}.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peaktrade.atomic import write_json, write_text
from peaktrade.errors import ArtifactError
from peaktrade.safeio import load_json_object, loads, read_bytes

SCHEMA_VERSION = 1
OVERALL = ("OK", "DEGRADED", "FAIL")
MAX_HISTORY_BYTES = 64 * 1024 * 1024


def health_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "health"


@dataclass
class HealthHistory:
    results: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    problems: list[str] = field(default_factory=list)


def append(state_dir: Path, result: Mapping[str, Any], retention: int) -> None:
    """Make `result` the latest and append it to the history, keeping the newest `retention` results."""
    directory = health_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    doc = {"schema_version": SCHEMA_VERSION, **dict(result)}
    fd = os.open(directory / "history.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # short critical section: concurrent runs wait, never interleave
        history = _read_history(directory / "history.jsonl")
        kept = [*history.results, doc][-max(1, int(retention)) :]
        lines = [json.dumps(r, sort_keys=True, allow_nan=False, default=str) for r in kept]
        write_text(directory / "history.jsonl", "".join(line + "\n" for line in lines), fsync=False)
        write_json(directory / "latest.json", doc, fsync=False)
    finally:
        os.close(fd)


def latest(state_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the latest result, None) or (None, a problem line); (None, None) when `ops health` never ran."""
    path = health_dir(state_dir) / "latest.json"
    try:
        doc = load_json_object(path, fix="it is rewritten by the next `peaktrade ops health`")
    except FileNotFoundError:
        return None, None
    except ArtifactError as exc:
        return None, str(exc)
    if doc.get("overall") not in OVERALL or not isinstance(doc.get("checks"), list):
        return None, f"{path}: not a health result (overall/checks); it is rewritten by the next `ops health`"
    return doc, None


def history(state_dir: Path, limit: int | None = None) -> HealthHistory:
    """The recorded results, oldest first (the newest `limit` when given)."""
    out = _read_history(health_dir(state_dir) / "history.jsonl")
    if limit is not None:
        out.results = out.results[-limit:] if limit > 0 else []
    return out


def _read_history(path: Path) -> HealthHistory:
    out = HealthHistory()
    try:
        data = read_bytes(path, MAX_HISTORY_BYTES)
    except FileNotFoundError:
        return out
    except ArtifactError as exc:
        out.problems.append(str(exc))
        return out
    bad = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            doc = loads(line)
        except (ValueError, RecursionError):
            bad += 1
            continue
        if isinstance(doc, dict) and doc.get("overall") in OVERALL and isinstance(doc.get("checks"), list):
            out.results.append(doc)
        else:
            bad += 1
    if bad:
        out.problems.append(f"{path}: {bad} unreadable line(s) skipped; they are dropped at the next `ops health`")
    return out
