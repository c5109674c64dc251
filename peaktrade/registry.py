"""The session registry: one JSON record per session under `reports/experiments/live_sessions/`.

File names and fields follow the original system (`<started:%Y%m%dT%H%M%S>_<run_type>_<session_id>.json`).
Records are rewritten atomically. Corrupt or foreign files are skipped and reported, never fatal. Listing is
fast at 10,000 records through an index cache keyed by each file's size and mtime.
"""

from __future__ import annotations

import json
import os
import time
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade.atomic import write_json
from peaktrade.clock import iso, parse_ts, to_utc
from peaktrade.errors import ArtifactError
from peaktrade.ids import slug, validate_id
from peaktrade.redact import redact, redact_args

SCHEMA_VERSION = 1
_INDEX_VERSION = 3
_RACY_NS = 2_000_000_000  # a directory changed this close to an index build is re-checked file by file
_INDEX_FIELDS = (
    "session_id",
    "run_id",
    "run_type",
    "mode",
    "status",
    "strategy",
    "symbol",
    "env_name",
    "started_at",
    "finished_at",
    "heartbeat_at",
)
_INDEX_METRICS = ("realized_pnl", "max_drawdown", "num_orders", "num_blocked", "final_equity", "return_pct")
_COLUMNS = ("_file", "_size", "_mtime", "_started", *_INDEX_FIELDS, *_INDEX_METRICS)


def run_type_for(mode: str) -> str:
    return f"live_session_{mode}"


def record_filename(started_at: datetime, run_type: str, session_id: str) -> str:
    stamp = to_utc(started_at).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}_{slug(run_type)}_{validate_id(session_id, 'session id')}.json"


def new_record(
    *,
    session_id: str,
    run_id: str | None,
    mode: str,
    env_name: str,
    symbol: str,
    strategy: str,
    started_at: datetime,
    config: Mapping[str, Any] | None = None,
    cli_args: Iterable[str] = (),
    notes: str | None = None,
    tags: Iterable[str] = (),
) -> dict[str, Any]:
    """A `started` record (config and cli_args redacted)."""
    validate_id(session_id, "session id")
    started = iso(started_at)
    return {
        "schema_version": SCHEMA_VERSION,
        "session_id": session_id,
        "run_id": run_id,
        "run_type": run_type_for(mode),
        "mode": mode,
        "env_name": env_name,
        "symbol": symbol,
        "strategy": strategy,
        "status": "started",
        "started_at": started,
        "finished_at": None,
        "heartbeat_at": started,
        "config": redact(dict(config or {})),
        "metrics": {},
        "cli_args": redact_args(list(cli_args)),
        "error": None,
        "notes": redact(notes),
        "tags": redact(list(tags)),
        "created_at": started,
    }


def write_record(registry_dir: Path, record: Mapping[str, Any]) -> Path:
    """Atomically (re)write a record; the same session always maps to the same file."""
    started = parse_ts(record.get("started_at"))
    if started is None:
        raise ArtifactError(f"registry record {record.get('session_id')!r} has no valid started_at")
    registry_dir = Path(registry_dir)
    registry_dir.mkdir(parents=True, exist_ok=True)
    path = registry_dir / record_filename(started, str(record["run_type"]), str(record["session_id"]))
    write_json(path, dict(record))
    return path


def load_record(path: Path) -> dict[str, Any]:
    """Parse one record; `ArtifactError` if it is not a session record."""
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc.__class__.__name__}); skipped") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read ({exc.strerror}); skipped") from None
    if not isinstance(data, dict) or not isinstance(data.get("session_id"), str) or "started_at" not in data:
        raise ArtifactError(f"{path}: not a session record (no session_id/started_at); skipped")
    if parse_ts(data.get("started_at")) is None:
        raise ArtifactError(f"{path}: started_at {data.get('started_at')!r} is not a timestamp; skipped")
    return data


@dataclass(frozen=True)
class Filters:
    """Filters applied before the limit. `since`/`until` bound the start time."""

    mode: str | None = None
    status: str | None = None
    run_type: str | None = None
    strategy: str | None = None
    symbol: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matcher(self) -> typing.Callable[[Mapping[str, Any]], bool]:
        """A predicate with the active filters bound once (it runs per index entry)."""
        equal = [
            (k, getattr(self, k))
            for k in ("mode", "status", "run_type", "strategy", "symbol")
            if getattr(self, k) is not None
        ]
        lo = to_utc(self.since).timestamp() if self.since is not None else float("-inf")
        hi = to_utc(self.until).timestamp() if self.until is not None else float("inf")
        if not equal and self.since is None and self.until is None:
            return lambda e: True

        def match(e: Mapping[str, Any]) -> bool:
            return lo <= e["_started"] <= hi and all(e.get(k) == v for k, v in equal)

        return match


@dataclass
class Scan:
    """Index entries (newest first) plus one line per file that was skipped."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    registry_dir: Path = Path(".")


def scan(registry_dir: Path, index_path: Path | None = None, *, refresh: bool = False) -> Scan:
    """Index entries for every record, newest first by start time (ties: session id, descending).

    With `index_path`, parsed entries are cached keyed by (size, mtime_ns) of each file; when the directory
    itself has not changed since a settled build, not even a stat per file is needed.
    """
    registry_dir = Path(registry_dir)
    out = Scan(registry_dir=registry_dir)
    try:
        dir_mtime = os.stat(registry_dir).st_mtime_ns
    except FileNotFoundError:
        return out
    cache = _load_index(index_path) if index_path else None
    if (
        cache is not None
        and not refresh
        and cache["dir"] == str(registry_dir.resolve())
        and cache["dir_mtime_ns"] == dir_mtime
        and cache["built_ns"] - dir_mtime > _RACY_NS
    ):
        out.entries = cache["entries"]
        out.problems = cache["problems"]
        return out
    old = {e["_file"]: e for e in cache["entries"]} if cache else {}
    old_problems = cache.get("problem_files", {}) if cache else {}
    problem_files: dict[str, list[Any]] = {}
    built_ns = time.time_ns()
    changed = cache is None
    for entry in os.scandir(registry_dir):
        name = entry.name
        if name.startswith(".") or not name.endswith(".json") or not entry.is_file():
            continue
        st = entry.stat()
        prev = old.get(name)
        if prev is not None and prev["_size"] == st.st_size and prev["_mtime"] == st.st_mtime_ns:
            out.entries.append(prev)
            continue
        known = old_problems.get(name)
        if known is not None and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            problem_files[name] = known
            continue
        changed = True
        try:
            record = load_record(Path(entry.path))
        except ArtifactError as exc:
            problem_files[name] = [st.st_size, st.st_mtime_ns, str(exc)]
            continue
        out.entries.append(_index_entry(name, st.st_size, st.st_mtime_ns, record))
    if len(out.entries) + len(problem_files) != len(old) + len(old_problems):
        changed = True
    out.entries.sort(key=lambda e: (e["_started"], e["session_id"]), reverse=True)
    out.problems = [p[2] for _, p in sorted(problem_files.items())]
    settled = cache is not None and cache["built_ns"] - cache["dir_mtime_ns"] > _RACY_NS
    if index_path is not None and (changed or not settled or cache["dir_mtime_ns"] != dir_mtime):
        _save_index(index_path, registry_dir, dir_mtime, built_ns, out.entries, problem_files)
    return out


def list_records(
    registry_dir: Path,
    filters: Filters = Filters(),
    limit: int | None = None,
    index_path: Path | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Full records matching `filters`, newest first, at most `limit`; plus the problems met."""
    result = scan(registry_dir, index_path)
    records: list[dict[str, Any]] = []
    problems = list(result.problems)
    match = filters.matcher()
    for entry in result.entries:
        if not match(entry):
            continue
        try:
            records.append(load_record(Path(registry_dir) / entry["_file"]))
        except ArtifactError as exc:  # changed or vanished since the index was built
            problems.append(str(exc))
            continue
        if limit is not None and len(records) >= limit:
            break
    return records, problems


def find_session(registry_dir: Path, session_id: str, index_path: Path | None = None) -> dict[str, Any] | None:
    validate_id(session_id, "session id")
    for entry in scan(registry_dir, index_path).entries:
        if entry["session_id"] == session_id:
            return load_record(Path(registry_dir) / entry["_file"])
    return None


# -- index ------------------------------------------------------------------------------------------------


def _index_entry(name: str, size: int, mtime: int, record: Mapping[str, Any]) -> dict[str, Any]:
    started = parse_ts(record["started_at"])
    entry: dict[str, Any] = {"_file": name, "_size": size, "_mtime": mtime, "_started": started.timestamp()}
    for key in _INDEX_FIELDS:
        value = record.get(key)
        entry[key] = value if isinstance(value, str | type(None)) else str(value)
    entry["started_at"] = iso(started)
    if not entry.get("run_type") and entry.get("mode"):
        entry["run_type"] = run_type_for(entry["mode"])
    if not entry.get("mode") and isinstance(entry.get("run_type"), str):
        entry["mode"] = entry["run_type"].removeprefix("live_session_").removeprefix("live_session") or None
    entry["strategy"] = entry.get("strategy") or _strategy_from_config(record)
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    for key in _INDEX_METRICS:
        value = metrics.get(key)
        entry[key] = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return entry


def _strategy_from_config(record: Mapping[str, Any]) -> str | None:
    config = record.get("config")
    if isinstance(config, dict):
        value = config.get("strategy_name") or config.get("strategy")
        return value if isinstance(value, str) else None
    return None


def _load_index(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != _INDEX_VERSION:
        return None
    columns = data.pop("columns")
    data["entries"] = [dict(zip(columns, row)) for row in data.pop("rows")]
    return data


def _save_index(
    path: Path,
    registry_dir: Path,
    dir_mtime: int,
    built_ns: int,
    entries: list[dict[str, Any]],
    problem_files: dict[str, list[Any]],
) -> None:
    data = {
        "version": _INDEX_VERSION,
        "dir": str(registry_dir.resolve()),
        "dir_mtime_ns": dir_mtime,
        "built_ns": built_ns,
        "columns": list(_COLUMNS),
        "rows": [[e.get(c) for c in _COLUMNS] for e in entries],
        "problems": [p[2] for _, p in sorted(problem_files.items())],
        "problem_files": problem_files,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, data, fsync=False, indent=None)
    except OSError:
        pass  # the cache is an optimisation; a read-only state dir must not break listing


def finalize(
    registry_dir: Path,
    session_id: str,
    *,
    status: str,
    finished_at: str | None,
    error: str | None,
    metrics: Mapping[str, Any],
    index_path: Path | None = None,
) -> Path | None:
    """Rewrite the `started` record of `session_id` in place as finished; None if there is no such record or it
    is already finished (a session that ended on its own keeps its own account)."""
    for entry in scan(registry_dir, index_path).entries:
        if entry["session_id"] != session_id:
            continue
        path = Path(registry_dir) / entry["_file"]
        record = load_record(path)
        if record.get("status") not in (None, "started", "running"):
            return None
        record.update(
            status=status, finished_at=finished_at, heartbeat_at=finished_at, error=error, metrics=dict(metrics)
        )
        write_json(path, record)
        return path
    return None
