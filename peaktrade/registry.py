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

from peaktrade import coerce, safeio
from peaktrade.atomic import write_json
from peaktrade.clock import iso, parse_ts, to_utc
from peaktrade.errors import ArtifactError
from peaktrade.ids import slug, validate_id
from peaktrade.redact import redact, redact_args

SCHEMA_VERSION = 1
_INDEX_VERSION = 4
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
_COLUMNS = ("_file", "_size", "_mtime", "_started", "_problems", *_INDEX_FIELDS, *_INDEX_METRICS)


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
    """Parse one record; `ArtifactError` if it is not a session record. Fields of the wrong type are None."""
    return read_record(path)[0]


def read_record(path: Path) -> tuple[dict[str, Any], list[str]]:
    """One record with every known field of its type, plus one line per field that had to be dropped.

    `ArtifactError` (naming the file and the fix) if the file is unreadable or not a session record.
    """
    try:
        data = safeio.load_json(Path(path), fix="skipped; fix or remove it")
    except FileNotFoundError:
        raise ArtifactError(f"{path}: vanished while reading; skipped") from None
    return coerce.record(data, Path(path))


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

    With `index_path`, parsed entries are cached keyed by (size, mtime_ns) of each file. Every file is stat'ed
    (a record edited in place changes no directory mtime) and only new or changed ones are parsed; a file
    changed within `_RACY_NS` of the cached build is parsed again until it has settled. A corrupt cache counts as
    missing: it is rebuilt, and that is reported once. Symlinks leading out of the registry directory are not
    followed; a session id found in two files is shown once (the newest file) and the others are reported.
    """
    registry_dir = Path(registry_dir)
    out = Scan(registry_dir=registry_dir)
    try:
        dir_mtime = os.stat(registry_dir).st_mtime_ns
    except FileNotFoundError:
        return out
    cache, cache_problem = _load_index(index_path) if index_path else (None, None)
    if cache is not None and (refresh or cache["dir"] != str(registry_dir.resolve())):
        cache = None
    trusted_before = cache["built_ns"] - _RACY_NS if cache else 0
    old = {e["_file"]: e for e in cache["entries"]} if cache else {}
    old_problems = cache.get("problem_files", {}) if cache else {}
    problem_files: dict[str, list[Any]] = {}
    built_ns = time.time_ns()
    changed = cache is None
    base = registry_dir.resolve()
    for entry in os.scandir(registry_dir):
        name = entry.name
        if name.startswith(".") or not name.endswith(".json"):
            continue
        if entry.is_symlink() and not _inside(Path(entry.path), base):
            problem_files[name] = [-1, -1, f"{entry.path}: symlink leading out of {registry_dir}; not followed"]
            changed = True
            continue
        if not entry.is_file():
            problem_files[name] = [-1, -1, f"{entry.path}: not a regular file; skipped, remove it"]
            changed = True
            continue
        st = entry.stat()
        settled = st.st_mtime_ns < trusted_before  # else it may change again within one mtime tick: re-parse
        prev = old.get(name)
        if settled and prev is not None and prev["_size"] == st.st_size and prev["_mtime"] == st.st_mtime_ns:
            out.entries.append(prev)
            continue
        known = old_problems.get(name)
        if settled and known is not None and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            problem_files[name] = known
            continue
        changed = True
        try:
            record, problems = read_record(Path(entry.path))
        except ArtifactError as exc:
            problem_files[name] = [st.st_size, st.st_mtime_ns, str(exc)]
            continue
        out.entries.append(_index_entry(name, st.st_size, st.st_mtime_ns, record, problems))
    if len(out.entries) + len(problem_files) != len(old) + len(old_problems):
        changed = True
    if changed or cache is None:
        out.entries.sort(key=lambda e: (e["_started"], e["session_id"], e["_file"]), reverse=True)
    else:  # every file as indexed: the index holds the same entries, sorted when it was saved
        out.entries = cache["entries"]
    out.problems = [p[2] for _, p in sorted(problem_files.items())]
    if index_path is not None and changed:
        _save_index(index_path, registry_dir, dir_mtime, built_ns, out.entries, problem_files)
    if cache_problem:
        out.problems.insert(0, cache_problem)
    _finish(out)
    return out


def _inside(path: Path, base: Path) -> bool:
    try:
        return path.resolve().is_relative_to(base)
    except (OSError, RuntimeError):  # a symlink loop
        return False


def _finish(out: Scan) -> None:
    """Field problems of indexed records, and duplicate session ids reported and shown once (newest file)."""
    seen: dict[str, str] = {}
    unique = []
    for e in out.entries:
        out.problems += e.get("_problems") or []
        first = seen.get(e["session_id"])
        if first is not None:
            out.problems.append(
                f"{out.registry_dir / e['_file']}: duplicate session id {e['session_id']!r} "
                f"(also in {out.registry_dir / first}); not shown, remove one of the two files"
            )
            continue
        seen[e["session_id"]] = e["_file"]
        unique.append(e)
    out.entries = unique


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
    """The record of `session_id` (the newest file if the id is duplicated), or None."""
    return find_session_checked(registry_dir, session_id, index_path)[0]


def find_session_checked(
    registry_dir: Path, session_id: str, index_path: Path | None = None
) -> tuple[dict[str, Any] | None, list[str]]:
    """`find_session` plus the problems of that record (fields treated as missing, duplicate files)."""
    validate_id(session_id, "session id")
    result = scan(registry_dir, index_path)
    for entry in result.entries:
        if entry["session_id"] == session_id:
            record, problems = read_record(Path(registry_dir) / entry["_file"])
            duplicate = f"duplicate session id {session_id!r}"
            return record, problems + [p for p in result.problems if duplicate in p]
    return None, []


# -- index ------------------------------------------------------------------------------------------------


def _index_entry(
    name: str, size: int, mtime: int, record: Mapping[str, Any], problems: list[str] | None = None
) -> dict[str, Any]:
    started = parse_ts(record["started_at"])
    entry: dict[str, Any] = {
        "_file": name,
        "_size": size,
        "_mtime": mtime,
        "_started": started.timestamp(),
        "_problems": problems or None,
    }
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


def _load_index(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The cached index, or None; plus a problem line when the file exists but is corrupt (then rebuilt)."""
    try:
        # Plain json.loads, not safeio.loads: its per-float callback would cost the fast path at 10,000 records;
        # a NaN in a cached metric is harmless (readers drop non-finite numbers) and FIFOs are still refused.
        data = json.loads(safeio.read_bytes(path))
    except FileNotFoundError:
        return None, None
    except safeio.UnreadableFile as exc:
        return None, f"{exc} (the registry index cache); rebuilt from the records"
    except (ValueError, RecursionError) as exc:
        return None, f"{path}: corrupt registry index cache ({exc.__class__.__name__}); rebuilt from the records"
    why = _index_defect(data)
    if why is not None:
        return None, f"{path}: corrupt registry index cache ({why}); rebuilt from the records"
    columns = data.pop("columns")
    data["entries"] = [dict(zip(columns, row)) for row in data.pop("rows")]
    return data, None


def _index_defect(data: Any) -> str | None:
    """Why a parsed index cannot be used, or None if it is sound."""
    if not isinstance(data, dict) or not isinstance(data.get("version"), int):
        return "no version"
    if data["version"] != _INDEX_VERSION:
        return f"version {data['version']}, expected {_INDEX_VERSION}"
    if data.get("columns") != list(_COLUMNS) or not isinstance(data.get("rows"), list):
        return "columns/rows missing"
    if not (isinstance(data.get("dir"), str) and coerce.is_int(data.get("dir_mtime_ns"))):
        return "dir missing"
    if not coerce.is_int(data.get("built_ns")):
        return "built_ns missing"
    problems, problem_files = data.get("problems"), data.get("problem_files")
    if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
        return "problems malformed"
    if not isinstance(problem_files, dict) or not all(
        isinstance(v, list) and len(v) == 3 and isinstance(v[2], str) for v in problem_files.values()
    ):
        return "problem_files malformed"
    rows = data["rows"]
    if not rows:
        return None
    # Column-wise type sets: C-speed checks, so a settled `session list` at 10,000 records stays fast.
    if set(map(type, rows)) != {list} or set(map(len, rows)) != {len(_COLUMNS)}:
        return "a row is malformed"
    columns = [set(map(type, column)) for column in zip(*rows)]
    scalar = {str, int, float, bool, type(None)}
    if not (
        columns[0] == {str}
        and columns[1] <= {int}
        and columns[2] <= {int}
        and columns[3] <= {int, float}
        and columns[4] <= {list, type(None)}
        and columns[5] == {str}
        and all(c <= scalar for c in columns[6:])
    ):
        return "a row is malformed"
    if not all(isinstance(p, str) for row in rows if row[4] for p in row[4]):
        return "a row is malformed"
    return None


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
