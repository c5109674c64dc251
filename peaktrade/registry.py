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
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade.atomic import write_bytes, write_json
from peaktrade.clock import iso, parse_ts, to_utc
from peaktrade.errors import ArtifactError
from peaktrade.ids import slug, validate_id
from peaktrade.redact import redact

SCHEMA_VERSION = 1
STATUSES = ("started", "completed", "failed", "aborted")
METRIC_KEYS = (
    "realized_pnl",
    "unrealized_pnl",
    "max_drawdown",
    "num_orders",
    "num_trades",
    "num_blocked",
    "fees",
    "steps",
    "fill_rate",
    "final_equity",
    "return_pct",
)
_INDEX_VERSION = 4
# A file changed this close to an index build could change again within the same mtime tick with the same
# size; its entry is not trusted: it is parsed again on the next scan, until it has settled.
_RACY_NS = 2_000_000_000
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
_COLUMNS = ("_file", "_size", "_mtime", "_ino", "_started", *_INDEX_FIELDS, *_INDEX_METRICS)
_STARTED, _SESSION = _COLUMNS.index("_started"), _COLUMNS.index("session_id")


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
    """A `started` record (config redacted)."""
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
        "cli_args": list(cli_args),
        "error": None,
        "notes": notes,
        "tags": list(tags),
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

    With `index_path`, parsed entries are cached keyed by each file's (size, mtime_ns, inode): every file is
    stat'ed (one `scandir` plus one `stat` each, ~10 ms for 10,000 records) so that a record edited in place
    is noticed, and only changed files are parsed again. `refresh` parses every file.
    """
    registry_dir = Path(registry_dir)
    rows, problems = _scan_rows(registry_dir, index_path, refresh)
    return Scan([dict(zip(_COLUMNS, row)) for row in rows], problems, registry_dir)


def _scan_rows(registry_dir: Path, index_path: Path | None, refresh: bool) -> tuple[list[list[Any]], list[str]]:
    """`scan` as index rows (lists in `_COLUMNS` order): callers that need only a few make dicts of those."""
    try:
        entries = list(os.scandir(registry_dir))
    except FileNotFoundError:
        return [], []
    cache = _load_index(index_path) if index_path and not refresh else None
    if cache is not None and cache["dir"] != str(registry_dir.resolve()):
        cache = None
    # Rows stay lists until the end: at 10,000 records the per-entry work is what costs (measured).
    old = {row[0]: row for row in cache["rows"]} if cache else {}
    old_problems = cache["problem_files"] if cache else {}
    trusted_before = cache["built_ns"] - _RACY_NS if cache else 0
    problem_files: dict[str, list[Any]] = {}
    built_ns = time.time_ns()
    changed = cache is None
    kept: list[list[Any]] = []
    fresh: list[dict[str, Any]] = []
    for entry in entries:
        name = entry.name
        if name[0] == "." or not name.endswith(".json") or not entry.is_file():
            continue
        st = entry.stat()
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        prev = old.get(name)
        same = prev is not None and prev[1] == key[0] and prev[2] == key[1] and prev[3] == key[2]
        if same and key[1] < trusted_before:
            kept.append(prev)
            continue
        known = old_problems.get(name)
        known_same = known is not None and tuple(known[:3]) == key
        if known_same and key[1] < trusted_before:
            problem_files[name] = known
            continue
        # New, changed, or too recent to trust: parse it. Saving the index again is needed only if what
        # was parsed differs, or if saving now lets a recent file be trusted from then on.
        settles = key[1] < built_ns - _RACY_NS
        try:
            record = load_record(Path(entry.path))
        except ArtifactError as exc:
            problem_files[name] = [*key, str(exc)]
            changed = changed or not known_same or known[3] != str(exc) or settles
            continue
        entry = _index_entry(name, key, record)
        fresh.append([entry.get(c) for c in _COLUMNS])
        changed = changed or not same or fresh[-1] != prev or settles
    if len(kept) + len(fresh) + len(problem_files) != len(old) + len(old_problems):
        changed = True  # a file was removed
    if changed:
        rows = kept + fresh
        rows.sort(key=lambda r: (r[_STARTED], r[_SESSION]), reverse=True)
    else:  # every file as indexed: the index is stored sorted already
        rows = cache["rows"]
    problems = [p[3] for _, p in sorted(problem_files.items())]
    if index_path is not None and changed:
        _save_index(index_path, registry_dir, built_ns, rows, problem_files)
    return rows, problems


def list_records(
    registry_dir: Path,
    filters: Filters = Filters(),
    limit: int | None = None,
    index_path: Path | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Full records matching `filters`, newest first, at most `limit`; plus the problems met."""
    rows, problems = _scan_rows(Path(registry_dir), index_path, False)
    records: list[dict[str, Any]] = []
    match = filters.matcher()
    for row in rows:
        entry = dict(zip(_COLUMNS, row))
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


def stats(registry_dir: Path, filters: Filters = Filters(), index_path: Path | None = None) -> dict[str, Any]:
    """Counts by status/mode/run_type, realized PnL per mode (never summed across modes), average max
    drawdown, first and last start. Computed from the index alone."""
    match = filters.matcher()
    entries = [e for e in scan(registry_dir, index_path).entries if match(e)]
    pnl_by_mode: dict[str, float] = {}
    by_status: Counter[str] = Counter()
    by_mode: Counter[str] = Counter()
    by_run_type: Counter[str] = Counter()
    drawdowns = []
    for e in entries:
        mode = e["mode"] or "unknown"
        by_mode[mode] += 1
        by_status[e["status"] or "unknown"] += 1
        by_run_type[e["run_type"] or "unknown"] += 1
        pnl = e["realized_pnl"]
        if pnl is not None:
            pnl_by_mode[mode] = pnl_by_mode.get(mode, 0.0) + pnl
        if e["max_drawdown"] is not None:
            drawdowns.append(e["max_drawdown"])
    starts = [e["started_at"] for e in entries]
    return {
        "num_sessions": len(entries),
        "by_status": dict(sorted(by_status.items())),
        "by_mode": dict(sorted(by_mode.items())),
        "by_run_type": dict(sorted(by_run_type.items())),
        "realized_pnl_by_mode": {k: round(v, 10) for k, v in sorted(pnl_by_mode.items())},
        "avg_max_drawdown": (sum(drawdowns) / len(drawdowns)) if drawdowns else 0.0,
        "first_started_at": starts[-1] if starts else None,
        "last_started_at": starts[0] if starts else None,
    }


# -- index ------------------------------------------------------------------------------------------------


def _index_entry(name: str, key: tuple[int, int, int], record: Mapping[str, Any]) -> dict[str, Any]:
    started = parse_ts(record["started_at"])
    size, mtime, ino = key
    entry: dict[str, Any] = {"_file": name, "_size": size, "_mtime": mtime, "_ino": ino}
    entry["_started"] = started.timestamp()
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
    # A cache of another layout, or damaged, counts as missing: the scan rebuilds it from the records.
    if not isinstance(data, dict) or data.get("version") != _INDEX_VERSION or data.get("columns") != list(_COLUMNS):
        return None
    rows, problems = data.get("rows"), data.get("problem_files")
    if not isinstance(rows, list) or not isinstance(problems, dict) or not isinstance(data.get("built_ns"), int):
        return None
    if not all(isinstance(r, list) and len(r) == len(_COLUMNS) for r in rows):
        return None
    if not all(isinstance(p, list) and len(p) == 4 for p in problems.values()):
        return None
    return data


def _save_index(
    path: Path,
    registry_dir: Path,
    built_ns: int,
    rows: list[list[Any]],
    problem_files: dict[str, list[Any]],
) -> None:
    data = {
        "version": _INDEX_VERSION,
        "dir": str(registry_dir.resolve()),
        "built_ns": built_ns,
        "columns": list(_COLUMNS),
        "rows": rows,
        "problem_files": problem_files,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # the direct dump is several times faster than write_json's walk over every value
            write_bytes(path, json.dumps(data, allow_nan=False, separators=(",", ":")).encode(), fsync=False)
        except ValueError:  # NaN or Infinity in a metric: write_json turns them into null
            write_json(path, data, fsync=False, indent=None)
    except OSError:
        pass  # the cache is an optimisation; a read-only state dir must not break listing
