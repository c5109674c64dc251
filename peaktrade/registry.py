"""The session registry: one JSON record per session under `reports/experiments/live_sessions/`.

File names and fields follow the original system (`<started:%Y%m%dT%H%M%S>_<run_type>_<session_id>.json`).
Records are rewritten atomically. Corrupt or foreign files are skipped and reported, never fatal. Listing is
fast at 10,000 records through an index cache (`peaktrade.registry_index`) keyed by each file's size, mtime,
inode and ctime: a settled `session list` stats every file and decodes only the entries it shows.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import os
import re
import stat
import time
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade import coerce, registry_index, safeio
from peaktrade.atomic import write_json
from peaktrade.clock import iso, parse_ts, to_utc
from peaktrade.errors import ArtifactError
from peaktrade.ids import slug, validate_id
from peaktrade.redact import redact, redact_args

SCHEMA_VERSION = 1
_T = typing.TypeVar("_T")


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


def read_record(path: Path, *, within: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """One record with every known field of its type, plus one line per field that had to be dropped.

    `ArtifactError` (naming the file and the fix) if the file is unreadable or not a session record, or if as
    opened it is not inside `within` (a resolved directory; default: the one the path names), so a record swapped
    for a symlink leading out after a scan looked is still not followed.
    """
    path = path if isinstance(path, Path) else Path(path)
    within = within if within is not None else path.parent.resolve()
    try:
        data = safeio.load_json(path, fix="skipped; fix or remove it", within=within)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: vanished while reading; skipped") from None
    return coerce.record(data, path)


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
    # The whole records this scan parsed (new or changed files), by file name: a reader that shows them needs
    # not read them again (a cold `site build` parses every record once, not twice)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _View:
    """What a scan found, entries still undecoded: the ranks (in the index's listing) to show, newest first."""

    registry_dir: Path
    index: registry_index.Index | None
    shown: typing.Sequence[int]
    problems: list[str]
    parsed: dict[str, dict[str, Any]] = field(default_factory=dict)  # see Scan.records


@dataclass(frozen=True)
class Listing:
    """The stats of a registry directory and its record files, taken once (`listing`): `site build` hashes them
    into the signature of its inputs and hands them to its scan, so no record is stat'ed twice per build."""

    dir_mtime: int
    built_ns: int  # taken before the stats: a file changed after this is racy (`registry_index.RACY_NS`)
    stats: registry_index.Stats
    odd: dict[str, str]
    modes: list[int]

    @functools.cached_property
    def digest(self) -> str:
        """A digest of every stat taken: equal digests, the same record files as they were."""
        text = repr((self.dir_mtime, self.stats, self.modes, sorted(self.odd.items())))
        return hashlib.blake2b(text.encode(errors="surrogateescape"), digest_size=16).hexdigest()

    def settled(self) -> bool:
        """Did every record file last change more than `registry_index.RACY_NS` before these stats were taken? A
        file changed within the same clock tick again would keep its stats: what was read of a racy file may be
        out of date without the next listing showing it."""
        _names, _sizes, mtimes, _inodes, ctimes = self.stats
        newest = max(max(mtimes, default=0), max(ctimes, default=0))
        return not self.odd and newest < self.built_ns - registry_index.RACY_NS


def listing(registry_dir: Path) -> Listing | None:
    """The stats of the record files (targets' for symlinks inside the directory), or None without a directory;
    `OSError` if it cannot be listed."""
    registry_dir = Path(registry_dir)
    try:
        dir_mtime = os.stat(registry_dir).st_mtime_ns
    except FileNotFoundError:
        return None
    built_ns = time.time_ns()
    names, stats, odd = _stat_records(registry_dir, registry_dir.resolve())
    columns = (
        names,
        list(map(operator.itemgetter(stat.ST_SIZE), stats)),
        list(map(operator.attrgetter("st_mtime_ns"), stats)),
        list(map(operator.itemgetter(stat.ST_INO), stats)),
        list(map(operator.attrgetter("st_ctime_ns"), stats)),  # an edit in place that puts mtime back changes it
    )
    return Listing(dir_mtime, built_ns, columns, odd, list(map(operator.itemgetter(stat.ST_MODE), stats)))


def scan(
    registry_dir: Path, index_path: Path | None = None, *, refresh: bool = False, taken: Listing | None = None
) -> Scan:
    """Index entries for every record, newest first by start time (ties: session id, descending).

    With `index_path`, parsed entries are cached (`peaktrade.registry_index`) keyed by each file's size, mtime_ns,
    inode and ctime_ns. Every file is stat'ed (a record edited in place changes no directory mtime) and only new or
    changed ones are parsed; a file changed within `registry_index.RACY_NS` of the cached build is parsed again until
    it has settled. A corrupt cache counts as missing: it is rebuilt, and that is reported once. Symlinks leading out
    of the registry directory are not followed; a session id found in two files is shown once (the newest file) and
    the others are reported. This decodes every entry; `list_records` and `find_session` decode only what they show.
    """
    return _use(
        registry_dir, index_path, lambda v: Scan(_entries(v), v.problems, v.registry_dir, v.parsed), refresh, taken
    )


def _entries(view: _View) -> list[dict[str, Any]]:
    return view.index.entries(view.shown) if view.index is not None else []


def _use(
    registry_dir: Path,
    index_path: Path | None,
    use: typing.Callable[[_View], _T],
    refresh: bool = False,
    taken: Listing | None = None,
) -> _T:
    """`use` applied to a scan (of the stats `taken`, if given); if it meets a malformed line of the cache, the
    cache is rebuilt (and that is reported once) and `use` applied again."""
    try:
        taken = taken if taken is not None else listing(Path(registry_dir))
    except OSError as exc:  # a file where the directory should be, or no permission: no records, said once
        why = exc.strerror or type(exc).__name__
        fix = "make it a directory of session records, or set [paths] registry_dir in the config"
        return use(
            _View(Path(registry_dir), None, [], [f"{registry_dir}: cannot list the session registry ({why}); {fix}"])
        )
    view = _scan(Path(registry_dir), index_path, refresh, taken)
    try:
        return use(view)
    except registry_index.Corrupt as exc:
        view = _scan(Path(registry_dir), index_path, True, taken)
        view.problems.insert(0, _corrupt(index_path, exc))
        return use(view)


def _corrupt(index_path: Path | None, exc: Exception) -> str:
    if isinstance(exc, registry_index.Outdated):  # an upgrade: nothing is wrong with it, but it is said once
        return f"{index_path}: registry index cache of another release ({exc}); rebuilt from the records"
    return f"{index_path}: corrupt registry index cache ({exc}); rebuilt from the records"


def _scan(registry_dir: Path, index_path: Path | None, refresh: bool, taken: Listing | None) -> _View:
    if taken is None:
        return _View(registry_dir, None, [], [])
    base = registry_dir.resolve()
    cache, problem = None, None
    if index_path is not None and not refresh:
        try:
            cache = registry_index.load(index_path)
        except safeio.UnreadableFile as exc:
            problem = f"{exc} (the registry index cache); rebuilt from the records"
        except registry_index.Corrupt as exc:
            problem = _corrupt(index_path, exc)
    if cache is not None and cache.dir != str(base):
        cache = None
    args = (registry_dir, str(base), taken.dir_mtime, taken.built_ns, taken.stats, taken.odd, index_path)
    try:
        view = _view(*args, cache)
    except registry_index.Corrupt as exc:
        problem = _corrupt(index_path, exc)
        view = _view(*args, None)
    if problem:
        view.problems.insert(0, problem)
    return view


def _view(
    registry_dir: Path,
    base: str,
    dir_mtime: int,
    built_ns: int,
    stats: registry_index.Stats,
    odd: dict[str, str],
    index_path: Path | None,
    cache: registry_index.Index | None,
) -> _View:
    parsed: dict[str, dict[str, Any]] = {}
    if cache is not None and cache.matches(stats, odd):
        index = cache
    else:
        within = Path(base)

        def parse(name: str, size: int, mtime: int, ctime: int) -> tuple[dict[str, Any] | None, str | None]:
            try:
                # checked as opened: the stats may be older than this read (see `Listing`)
                record, problems = read_record(registry_dir / name, within=within)
            except ArtifactError as exc:
                return None, str(exc)
            if len(parsed) < _KEEP_PARSED:
                parsed[name] = record
            return _index_entry(name, (size, mtime, ctime), record, problems), None

        index, changed = registry_index.build(base, dir_mtime, built_ns, stats, odd, cache, parse)
        if index_path is not None and changed:
            index.save(index_path)
    shown, problems = _shown(index, registry_dir)
    files = [index.problem_files[name] for name in sorted(index.problem_files)]
    return _View(registry_dir, index, shown, files + problems, parsed)


def _shown(index: registry_index.Index, registry_dir: Path) -> tuple[typing.Sequence[int], list[str]]:
    """Ranks to show and the records' field problems; a session id found twice is shown once (newest file)
    and the other files reported. Without duplicates this is all in the index's first lines."""
    if not index.duplicates:
        return range(len(index.order)), list(index.problems)
    sessions, field_problems = index.sessions(), index.record_problems()
    seen: dict[str | None, str] = {}
    shown: list[int] = []
    problems: list[str] = []
    for rank, pos in enumerate(index.order):
        problems += field_problems[pos] or []
        sid, name = sessions[pos], index.files[pos]
        first = seen.get(sid)
        if first is not None:
            problems.append(
                f"{registry_dir / name}: duplicate session id {sid!r} "
                f"(also in {registry_dir / first}); not shown, remove one of the two files"
            )
            continue
        seen[sid] = name
        shown.append(rank)
    return shown, problems


_KEEP_PARSED = 100_000  # records a scan keeps for its caller (~2 KB each)
_RECORD_NAME = re.compile(r"[^.].*\.json", re.DOTALL).fullmatch


def _stat_records(registry_dir: Path, base: Path) -> tuple[list[str], list[os.stat_result], dict[str, str]]:
    """Names and stats of the record files in directory order, plus the entries that are no regular file inside
    the directory, with why. At C speed (`map`): the stat is most of the time of a settled `session list`."""
    fd = os.open(registry_dir, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        names = list(filter(_RECORD_NAME, os.listdir(fd)))
        try:
            stats = list(map(functools.partial(os.lstat, dir_fd=fd), names))
        except FileNotFoundError:  # removed while listed: stat one by one, skipping what is gone
            found = [(name, st) for name in names if (st := _lstat(name, fd)) is not None]
            names, stats = [name for name, _ in found], [st for _, st in found]
    finally:
        os.close(fd)
    odd: dict[str, str] = {}
    if not all(map(stat.S_ISREG, map(operator.attrgetter("st_mode"), stats))):
        for j, name in enumerate(names):
            if stat.S_ISREG(stats[j].st_mode):
                continue
            path = registry_dir / name
            if stat.S_ISLNK(stats[j].st_mode) and not _inside(path, base):
                odd[name] = f"{path}: symlink leading out of {registry_dir}; not followed"
                continue
            try:
                target = os.stat(path)  # a symlink inside the directory: its target's stats count
            except OSError:
                target = None
            if target is not None and stat.S_ISREG(target.st_mode):
                stats[j] = target
            else:
                odd[name] = f"{path}: not a regular file; skipped, remove it"
    return names, stats, odd


def _lstat(name: str, fd: int) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=fd)
    except FileNotFoundError:
        return None


def _inside(path: Path, base: Path) -> bool:
    try:
        return path.resolve().is_relative_to(base)
    except (OSError, RuntimeError):  # a symlink loop
        return False


def list_records(
    registry_dir: Path,
    filters: Filters = Filters(),
    limit: int | None = None,
    index_path: Path | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Full records matching `filters`, newest first, at most `limit`; plus the problems met. Index entries are
    decoded one by one as the listing reaches them."""
    match = filters.matcher()

    def collect(view: _View) -> tuple[list[dict[str, Any]], list[str]]:
        records: list[dict[str, Any]] = []
        problems = list(view.problems)
        if view.index is None or limit == 0:
            return records, problems
        for rank in view.shown:
            entry = view.index.entry(rank)
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

    return _use(registry_dir, index_path, collect)


def find_session(registry_dir: Path, session_id: str, index_path: Path | None = None) -> dict[str, Any] | None:
    """The record of `session_id` (the newest file if the id is duplicated), or None."""
    return find_session_checked(registry_dir, session_id, index_path)[0]


def find_session_checked(
    registry_dir: Path, session_id: str, index_path: Path | None = None
) -> tuple[dict[str, Any] | None, list[str]]:
    """`find_session` plus the problems of that record (fields treated as missing, duplicate files)."""
    validate_id(session_id, "session id")
    path, problems = _use(registry_dir, index_path, lambda v: _locate(v, session_id))
    if path is None:
        return None, []
    record, field_problems = read_record(path)
    duplicate = f"duplicate session id {session_id!r}"
    return record, field_problems + [p for p in problems if duplicate in p]


def _locate(view: _View, session_id: str) -> tuple[Path | None, list[str]]:
    """The file shown for `session_id` (None if there is none), and the scan's problems."""
    if view.index is not None:
        sessions, order = view.index.sessions(), view.index.order
        for rank in view.shown:
            if sessions[order[rank]] == session_id:
                return view.registry_dir / view.index.files[order[rank]], view.problems
    return None, view.problems


# -- index entries ------------------------------------------------------------------------------------------


def _index_entry(
    name: str, stats: tuple[int, int, int], record: Mapping[str, Any], problems: list[str] | None = None
) -> dict[str, Any]:
    """What the index keeps of a record (`stats`: its file's size, mtime and ctime): the fields `session list`
    filters on and `site build` summarizes."""
    started = parse_ts(record["started_at"])
    entry: dict[str, Any] = {
        "_file": name,
        "_size": stats[0],
        "_mtime": stats[1],
        "_ctime": stats[2],
        "_started": started.timestamp(),
        "_started_us": registry_index.micros(started),
        "_problems": problems or None,
    }
    for key in ("session_id", *registry_index.FIELDS):
        value = record.get(key)
        entry[key] = value if isinstance(value, str | type(None)) else str(value)
    entry["started_at"] = iso(started)
    if not entry.get("run_type") and entry.get("mode"):
        entry["run_type"] = run_type_for(entry["mode"])
    if not entry.get("mode") and isinstance(entry.get("run_type"), str):
        entry["mode"] = entry["run_type"].removeprefix("live_session_").removeprefix("live_session") or None
    entry["strategy"] = entry.get("strategy") or _strategy_from_config(record)
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    for key in registry_index.METRICS:
        entry[key] = registry_index.metric(metrics.get(key))
    return entry


def _strategy_from_config(record: Mapping[str, Any]) -> str | None:
    config = record.get("config")
    if isinstance(config, dict):
        value = config.get("strategy_name") or config.get("strategy")
        return value if isinstance(value, str) else None
    return None


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
    path, _ = _use(registry_dir, index_path, lambda v: _locate(v, session_id))
    if path is None:
        return None
    record = load_record(path)
    if record.get("status") not in (None, "started", "running"):
        return None
    record.update(
        status=status, finished_at=finished_at, heartbeat_at=finished_at, error=error, metrics=dict(metrics)
    )
    write_json(path, record)
    return path
