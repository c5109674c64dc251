"""The registry index cache, `state/registry-index.json`: the one module that reads and writes its format.

`session list` at 10,000 records must stat every record file (an edit in place changes no directory mtime) and
then show ten of them. The per-record budget is a few microseconds, nearly all of it the stat, so the index is
laid out for that: JSON lines (ASCII), each decoded only when it is needed.

    line 0    meta: version, dir, dir_mtime_ns, built_ns, count (n files), problem_files {name: message},
              problems (the records' field problems, in listing order), duplicates (a session id twice),
              rows_bytes (the size of the row lines, so a truncated file is seen without reading them)
    line 1-5  check columns, n long, in directory order: files, sizes, mtimes (ns), inodes, ctimes (ns)
    line 6    order: the position of each record, newest first (problem files are not listed)
    line 7-9  sort columns, n long: started (int microseconds), session ids, each record's field problems
    line 10   offsets: where each row starts within the row lines
    line 11-  one row per record in listing order:
              [file, started (float seconds), problems, session_id, run_id, ..., heartbeat_at, metrics...]

A settled `session list` decodes lines 0-6 (checked at C speed: `set(map(type, column))`), compares them with
the directory's stats list by list (ctime too: an edit in place that puts size and mtime back, as `cp -p` onto
an existing file does, still changes it), and decodes rows one by one as the listing reaches them. After a change only
the changed files are parsed; unchanged lines and runs of unchanged rows are written back as the same bytes.
JSON, never pickle: the state directory may hold a hostile file. Anything malformed raises `Corrupt`, found on
load or later in a lazily decoded line; the caller then rebuilds the index and reports that once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import accumulate, chain, compress, repeat
from operator import is_not, lt, ne
from pathlib import Path
from typing import Any

from peaktrade import coerce, safeio
from peaktrade.atomic import write_bytes

VERSION = 6
RACY_NS = 2_000_000_000  # a file changed this close to an index build is parsed again until it has settled
MAX_BYTES = 256 * 1024 * 1024  # ~400 bytes a record: 600,000 records; the usual 16 MB cap is hit at 40,000
FIELDS = (
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
METRICS = ("realized_pnl", "max_drawdown", "num_orders", "num_blocked", "final_equity", "return_pct")
ENTRY_KEYS = ("_file", "_size", "_mtime", "_ctime", "_started", "_problems", "session_id", *FIELDS, *METRICS)
_ROW_LEN = 4 + len(FIELDS) + len(METRICS)
_META, _FILES, _SIZES, _MTIMES, _INODES, _CTIMES, _ORDER, _STARTED, _SESSIONS, _PROBLEMS, _OFFSETS = range(11)
HEAD = 11  # header lines; the rows follow
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_INT_LIMIT = coerce.METRIC_INT_LIMIT  # as the record reader keeps them: `session show` and the index agree
# names, sizes, mtimes (ns), inodes, ctimes (ns): directory order
Stats = tuple[list[str], list[int], list[int], list[int], list[int]]


def metric(value: Any) -> int | float | None:
    """A metric as the index keeps it: a finite float, or an int within +-2**63; else None."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    return value if type(value) is int and -_INT_LIMIT < value < _INT_LIMIT else None


class Corrupt(Exception):
    """The index cannot be used; `str()` says why."""


class Outdated(Corrupt):
    """The index of another release (another format version)."""


def micros(started: datetime) -> int:
    """A start time as whole microseconds since the epoch (exact; the sort key of the index)."""
    return (started - _EPOCH) // _US


class Index:
    """One index, decoded lazily: `line(k)` decodes header line k once, `entry(rank)` the rank-th newest record."""

    def __init__(
        self,
        head: list[bytes | None],
        values: dict[int, Any],
        rows: bytes | None,
        start: int,
        decoded: dict[int, Any],
    ):
        self._head = head  # raw header lines; None where a value is new and must be encoded on save
        self._values = values  # decoded header lines
        self._rows = rows  # the row lines from offset `start` on (the whole file as read); None: not encoded yet
        self._rows_start = start
        self._decoded = decoded  # rank -> row, checked
        self._cursor = [start]  # offsets of the first rows, found without decoding the offsets line
        meta = values[_META]
        self.dir: str = meta["dir"]
        self.built_ns: int = meta["built_ns"]
        self.problem_files: dict[str, str] = meta["problem_files"]
        self.problems: list[str] = meta["problems"]
        self.duplicates: bool = meta["duplicates"]
        self.files: list[str] = values[_FILES]
        self.sizes: list[int] = values[_SIZES]
        self.mtimes: list[int] = values[_MTIMES]
        self.inodes: list[int] = values[_INODES]
        self.ctimes: list[int] = values[_CTIMES]
        self.order: list[int] = values[_ORDER]

    def _blob(self) -> bytes:
        """The row lines; an index built from scratch has every row decoded and encodes them when first needed."""
        if self._rows is None:
            lines = [_encode(self._decoded[rank]) + b"\n" for rank in range(len(self.order))]
            self._rows = b"".join(lines)
            self._values[_OFFSETS] = [0, *accumulate(map(len, lines[:-1]))] if lines else []
            self._values[_META] = {**self._values[_META], "rows_bytes": len(self._rows)}
        return self._rows

    def matches(self, stats: Stats, odd: dict[str, str]) -> bool:
        """Whether every file is as indexed and has settled, so nothing needs parsing. List comparisons: the
        directory order is the order the index was written in, unless files were added or removed since."""
        names, sizes, mtimes, inodes, ctimes = stats
        return (
            names == self.files
            and sizes == self.sizes
            and mtimes == self.mtimes
            and inodes == self.inodes
            and ctimes == self.ctimes
            and (not mtimes or max(mtimes) < self.built_ns - RACY_NS)
            and all(self.problem_files.get(name) == why for name, why in odd.items())
        )

    def sessions(self) -> list[str | None]:
        """Session id by position (None for a problem file)."""
        return self.line(_SESSIONS)

    def record_problems(self) -> list[list[str] | None]:
        """Field problems of each record by position."""
        return self.line(_PROBLEMS)

    def line(self, k: int) -> Any:
        """Header line k, decoded and checked once (`Corrupt` if malformed)."""
        if k == _OFFSETS:
            self._blob()
        if k not in self._values:
            n = len(self.order) if k == _OFFSETS else len(self.files)
            value = _check_line(k, _decode(self._head[k], k), n)
            if k == _OFFSETS and value and value[-1] >= len(self._blob()) - self._rows_start:
                raise Corrupt("offsets out of range")
            self._values[k] = value
        return self._values[k]

    def entry(self, rank: int) -> dict[str, Any]:
        """The index entry of the rank-th newest record (`Corrupt` if its row is malformed or missing)."""
        row = self._decoded.get(rank)
        if row is None:
            row = _decode(self._row_bytes(rank), HEAD + rank)
            _check_rows([row], [self.files[self.order[rank]]])
            self._decoded[rank] = row
        pos = self.order[rank]
        return dict(zip(ENTRY_KEYS, (row[0], self.sizes[pos], self.mtimes[pos], self.ctimes[pos], *row[1:])))

    def _row_bytes(self, rank: int) -> bytes:
        blob, cursor = self._blob(), self._cursor  # cursor: absolute offsets of the first rows
        if rank >= len(cursor) and rank < 64 and _OFFSETS not in self._values:  # found line by line
            while len(cursor) <= rank:
                end = blob.find(b"\n", cursor[-1])
                if end < 0:
                    raise Corrupt(f"row {rank} missing")
                cursor.append(end + 1)
        start = cursor[rank] if rank < len(cursor) else self._rows_start + self.line(_OFFSETS)[rank]
        end = blob.find(b"\n", start)
        if end < 0:
            raise Corrupt(f"row {rank} missing")
        return blob[start:end]

    def entries(self, ranks: Iterable[int]) -> list[dict[str, Any]]:
        """Entries of many records at once: all rows decoded together and checked column-wise (C speed). The
        sort columns are checked too, so a whole-registry reader sees any damage to the index."""
        sizes, mtimes, ctimes = (
            list(map(column.__getitem__, self.order)) for column in (self.sizes, self.mtimes, self.ctimes)
        )
        if len(self._decoded) == len(self.order):  # parsed just now (or all decoded before): checked already
            decoded = map(self._decoded.__getitem__, range(len(self.order)))
            rows = [[row[0], *stat, *row[1:]] for row, *stat in zip(decoded, sizes, mtimes, ctimes)]
        else:
            blob = self._blob()[self._rows_start :]
            lines = blob.count(b"\n")
            if lines != len(self.order) or (blob and not blob.endswith(b"\n")):
                raise Corrupt(f"{lines} row lines, expected {len(self.order)}")
            try:  # one array: a row line holds no newline of its own, JSON never does
                rows = json.loads(b"[" + blob[:-1].replace(b"\n", b",") + b"]")
            except (ValueError, RecursionError) as exc:
                raise Corrupt(f"rows not JSON ({exc.__class__.__name__})") from None
            if len(rows) != len(self.order):
                raise Corrupt(f"{len(rows)} rows, expected {len(self.order)}")
            _check_rows(rows, list(map(self.files.__getitem__, self.order)))
            for k in (_STARTED, _SESSIONS, _PROBLEMS, _OFFSETS):
                self.line(k)
            for row, *stat in zip(rows, sizes, mtimes, ctimes):  # fresh lists: completed in place
                row[1:1] = stat
        every = list(map(dict, map(zip, repeat(ENTRY_KEYS), rows)))
        return list(map(every.__getitem__, ranks))

    def save(self, path: Path) -> None:
        """Write the index, reusing the bytes of every unchanged line. A failed write is ignored: the cache is
        an optimisation, and a read-only state directory must not break listing."""
        rows = memoryview(self._blob())[self._rows_start :]
        head = [_encode(self._values[_META])] + [
            raw if raw is not None else _encode(self._values[k]) for k, raw in enumerate(self._head) if k
        ]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(path, b"".join((b"\n".join(head), b"\n", rows)), fsync=False)
        except OSError:
            pass


def load(path: Path) -> Index | None:
    """The index at `path` with lines 0-6 checked, or None if there is none; `Corrupt` or
    `safeio.UnreadableFile` if it cannot be used."""
    try:
        data = safeio.read_bytes(path, MAX_BYTES)
    except FileNotFoundError:
        return None
    end = data.find(b"\n")
    meta = _decode(data[: end if end >= 0 else len(data)], _META)
    if not isinstance(meta, dict) or not isinstance(meta.get("version"), int):
        raise Corrupt("no version")
    if meta["version"] != VERSION:  # checked first: an older release's index is one line
        raise Outdated(f"version {meta['version']}, expected {VERSION}")
    head: list[bytes | None] = []
    start = 0
    for k in range(HEAD):
        end = data.find(b"\n", start)
        if end < 0:
            raise Corrupt(f"truncated in line {k}")
        head.append(data[start:end])
        start = end + 1
    _check_meta(meta)
    if len(data) - start != meta["rows_bytes"]:
        raise Corrupt(f"{len(data) - start} bytes of rows, expected {meta['rows_bytes']}")
    values = {_META: meta}
    for k in (_FILES, _SIZES, _MTIMES, _INODES, _CTIMES, _ORDER):
        values[k] = _check_line(k, _decode(head[k], k), meta["count"])
    # A file named twice needs no check here: a listing has each name once, so such an index never matches.
    return Index(head, values, data, start, {})


def build(
    base: str,
    dir_mtime: int,
    built_ns: int,
    stats: Stats,
    odd: dict[str, str],
    old: Index | None,
    parse: Callable[[str, int, int, int], tuple[dict[str, Any] | None, str | None]],
) -> tuple[Index, bool]:
    """The index of a directory whose files have `stats` (`odd` names the entries that are no record files, with
    why), reusing `old` (as loaded) for every file whose stats are as indexed and that has settled.

    `parse(name, size, mtime, ctime)` is called for every other file and returns its entry (with `_started_us`) or a
    problem line. Also returns whether the result differs from `old` (else there is nothing to save).
    `Corrupt` if a line of `old` that is needed turns out malformed.
    """
    names, sizes, mtimes, inodes, ctimes = stats
    n = len(names)
    same_names = old is not None and names == old.files
    if old is None:
        origin: list[int | None] = [None] * n
        fresh = list(range(n))
    else:
        trusted = old.built_ns - RACY_NS
        if same_names:  # the usual case: columns compared as lists, element-wise only where they differ
            origin = list(range(n))
            stale: set[int] = set()
            for new, was in ((sizes, old.sizes), (mtimes, old.mtimes), (inodes, old.inodes), (ctimes, old.ctimes)):
                if new != was:
                    stale.update(compress(range(n), map(ne, new, was)))
        else:
            where = dict(zip(old.files, range(len(old.files))))
            origin = list(map(where.get, names))
            stale = {
                j
                for j, (i, key) in enumerate(zip(origin, zip(sizes, mtimes, inodes, ctimes)))
                if i is None or _key(old, i) != key
            }
        if mtimes and max(mtimes) >= trusted:  # changed within one mtime tick of the build: parse again
            stale.update(compress(range(n), map(trusted.__le__, mtimes)))
        if odd:  # checked every time: what a symlink leads to can change without its own stats changing
            stale.update(j for j, name in enumerate(names) if name in odd)
        fresh = sorted(stale)
    parsed = {
        j: (None, odd[names[j]]) if names[j] in odd else parse(names[j], sizes[j], mtimes[j], ctimes[j])
        for j in fresh
    }
    if same_names and old is not None:
        patched = _patch(old, built_ns, stats, parsed)
        if patched is not None:
            return patched
    return _rebuild(base, dir_mtime, built_ns, stats, old, origin, parsed)


def _patch(
    old: Index, built_ns: int, stats: Stats, parsed: dict[int, tuple[dict[str, Any] | None, str | None]]
) -> tuple[Index, bool] | None:
    """`old` with the rows of edited records replaced, if no file was added or removed and nothing that sorts
    changed (start time, session id, field problems, record or not): the usual edit in place. Else None.
    Only the lines that changed are encoded again; the sort columns are not even decoded."""
    names, sizes, mtimes, inodes, ctimes = stats
    if len(parsed) > 64:
        return None
    replaced: dict[int, list[Any]] = {}
    problem_files = dict(old.problem_files)
    changed = False
    for j, (entry, why) in parsed.items():
        rank = old.order.index(j) if j in old.order else None
        as_indexed = _key(old, j) == (sizes[j], mtimes[j], inodes[j], ctimes[j])
        if entry is None:
            if rank is not None:
                return None
            as_indexed = as_indexed and problem_files.get(names[j]) == why
            problem_files[names[j]] = why or ""
        else:
            if rank is None:
                return None
            kept = old.entry(rank)
            if (kept["_started"], kept["session_id"], kept["_problems"]) != (
                entry["_started"],
                entry["session_id"],
                entry["_problems"],
            ):
                return None
            as_indexed = as_indexed and all(kept[k] == entry[k] for k in ENTRY_KEYS)
            if not as_indexed:
                replaced[rank] = _row(entry)
        if not as_indexed:
            changed = True
        elif old.built_ns - RACY_NS <= mtimes[j] < built_ns - RACY_NS:
            changed = True  # racy, as indexed, settled by now: written with the new build time, then fast
    if not changed:
        return old, False
    rows, offsets, decoded = _splice(old, replaced)
    meta = {**old._values[_META], "built_ns": built_ns, "problem_files": problem_files, "rows_bytes": len(rows)}
    values = {**old._values, _META: meta, _SIZES: sizes, _MTIMES: mtimes, _INODES: inodes, _CTIMES: ctimes}
    values[_OFFSETS] = offsets
    head = list(old._head)
    head[_META] = None
    for k, new in ((_SIZES, sizes), (_MTIMES, mtimes), (_INODES, inodes), (_CTIMES, ctimes), (_OFFSETS, offsets)):
        if k not in old._values or new != old._values[k]:
            head[k] = None
    return Index(head, values, rows, 0, decoded), True


def _row(entry: dict[str, Any]) -> list[Any]:
    return [entry["_file"], entry["_started"], entry["_problems"], *(entry[k] for k in ENTRY_KEYS[6:])]


def _rebuild(
    base: str,
    dir_mtime: int,
    built_ns: int,
    stats: Stats,
    old: Index | None,
    origin: list[int | None],
    parsed: dict[int, tuple[dict[str, Any] | None, str | None]],
) -> tuple[Index, bool]:
    """The index with columns and order computed again; old rows are carried over as bytes."""
    names, sizes, mtimes, inodes, ctimes = stats
    n = len(names)
    same_names = old is not None and names == old.files
    # Columns by new position, copied from the old index and patched where a file was parsed.
    if old is None:
        started: list[Any] = [None] * n
        sessions: list[Any] = [None] * n
        problems: list[Any] = [None] * n
        old_rank: list[int | None] = [None] * n
    else:
        pick = list if same_names else _picker(origin)
        started, sessions, problems = (pick(old.line(k)) for k in (_STARTED, _SESSIONS, _PROBLEMS))
        rank_of = dict(zip(old.order, range(len(old.order))))
        old_rank = list(map(rank_of.get, origin))
    new_rows: dict[int, list[Any]] = {}
    problem_files: dict[str, str] = {}
    changed = old is None or not same_names
    for j, (entry, why) in parsed.items():
        name, i = names[j], origin[j]
        key = (sizes[j], mtimes[j], inodes[j], ctimes[j])
        if old is not None and i is not None and _as_indexed(old, i, old_rank[j], key, entry, why):
            # Racy or odd, but nothing differs: keep the old row. A racy file that has settled by now is written
            # once more with the new build time, so later calls take the fast path.
            changed = changed or old.built_ns - RACY_NS <= mtimes[j] < built_ns - RACY_NS
            if entry is None:
                problem_files[name] = why or ""
            continue
        changed = True
        old_rank[j] = None
        if entry is None:
            started[j] = sessions[j] = problems[j] = None
            problem_files[name] = why or ""
        else:
            new_rows[j] = _row(entry)
            started[j], sessions[j], problems[j] = entry["_started_us"], entry["session_id"], entry["_problems"]
    if old is not None:
        if old.problem_files:  # unchanged problem files keep their message
            present, seen = set(names), {names[j] for j in parsed}
            problem_files.update(
                (name, why) for name, why in old.problem_files.items() if name in present and name not in seen
            )
        if not changed:
            return old, False
    listed = [j for j in range(n) if started[j] is not None]
    if any(sessions[j] is None or (old_rank[j] is None and j not in new_rows) for j in listed):
        raise Corrupt("a listed record has no session id or no row")
    order = sorted(listed, key=lambda j: (started[j], sessions[j], names[j]), reverse=True)
    if old is None:  # every row is new: encoded only if the index is saved
        rows, offsets, decoded = None, None, {rank: new_rows[pos] for rank, pos in enumerate(order)}
    else:
        rows, offsets, decoded = _rows(old, order, old_rank, new_rows)
    ids = list(map(sessions.__getitem__, order))
    meta = {
        "version": VERSION,
        "dir": base,
        "dir_mtime_ns": dir_mtime,
        "built_ns": built_ns,
        "count": n,
        "problem_files": problem_files,
        "problems": list(chain.from_iterable(filter(None, map(problems.__getitem__, order)))),
        "duplicates": len(set(ids)) != len(ids),
        "rows_bytes": len(rows) if rows is not None else None,
    }
    values: dict[int, Any] = {_META: meta, _FILES: names, _SIZES: sizes, _MTIMES: mtimes, _INODES: inodes}
    values[_CTIMES] = ctimes
    values.update({_ORDER: order, _STARTED: started, _SESSIONS: sessions, _PROBLEMS: problems})
    if offsets is not None:
        values[_OFFSETS] = offsets
    head: list[bytes | None] = [None] * HEAD
    if old is not None:  # a line equal to the old one is written back as the same bytes
        for k in range(1, HEAD):
            if values[k] == old.line(k):
                head[k] = old._head[k]
    return Index(head, values, rows, 0, decoded), True


def _rows(
    old: Index | None, order: list[int], old_rank: list[int | None], new_rows: dict[int, list[Any]]
) -> tuple[bytes, list[int], dict[int, Any]]:
    """The row lines in `order`: runs of old rows copied as one slice, new rows encoded; their offsets; and the
    new rows by rank (already checked)."""
    starts: list[int] = old.line(_OFFSETS) if old is not None else []
    base = old._rows_start if old is not None else 0
    blob = old._rows if old is not None else b""
    ends = [*starts[1:], len(blob) - base]
    pieces: list[bytes] = []
    lengths: list[int] = []
    decoded: dict[int, Any] = {}
    run: list[int] = []  # [first, last] old rank of the run being copied
    for rank, pos in enumerate(order):
        r = old_rank[pos]
        if r is not None:
            lengths.append(ends[r] - starts[r])
            if run and r == run[1] + 1:
                run[1] = r
                continue
            if run:
                pieces.append(blob[base + starts[run[0]] : base + ends[run[1]]])
            run = [r, r]
            continue
        if run:
            pieces.append(blob[base + starts[run[0]] : base + ends[run[1]]])
            run = []
        line = _encode(new_rows[pos]) + b"\n"
        pieces.append(line)
        lengths.append(len(line))
        decoded[rank] = new_rows[pos]
    if run:
        pieces.append(blob[base + starts[run[0]] : base + ends[run[1]]])
    return b"".join(pieces), [0, *accumulate(lengths[:-1])] if lengths else [], decoded


def _splice(old: Index, replaced: dict[int, list[Any]]) -> tuple[bytes, list[int], dict[int, Any]]:
    """The old row lines with the rows of some ranks replaced; their offsets; the new rows by rank."""
    starts: list[int] = old.line(_OFFSETS)
    base, blob = old._rows_start, old._rows
    pieces: list[bytes | memoryview] = []
    offsets = starts
    done = 0  # bytes of the old rows copied so far
    for rank in sorted(replaced):
        end = starts[rank + 1] if rank + 1 < len(starts) else len(blob) - base
        line = _encode(replaced[rank]) + b"\n"
        pieces += (memoryview(blob)[base + done : base + starts[rank]], line)
        if len(line) != end - starts[rank]:
            shift = len(line) - (end - starts[rank])
            offsets = offsets[: rank + 1] + [o + shift for o in offsets[rank + 1 :]]
        done = end
    pieces.append(memoryview(blob)[base + done :])
    return b"".join(pieces), offsets, dict(replaced)


def _as_indexed(
    old: Index, i: int, rank: int | None, key: tuple[int, ...], entry: dict[str, Any] | None, why: str | None
) -> bool:
    """Whether a file parsed again (racy or odd) gave what `old` holds for it (position `i`, row `rank`)."""
    if _key(old, i) != key:
        return False
    if entry is None:
        return rank is None and why == old.problem_files.get(old.files[i])
    if rank is None:
        return False
    kept = old.entry(rank)
    return all(kept[k] == entry[k] for k in ENTRY_KEYS)


def _key(index: Index, i: int) -> tuple[int, int, int, int]:
    """The stats the index holds for the file at position `i`: size, mtime, inode, ctime."""
    return index.sizes[i], index.mtimes[i], index.inodes[i], index.ctimes[i]


def _picker(origin: list[int | None]) -> Callable[[list[Any]], list[Any]]:
    def pick(column: list[Any]) -> list[Any]:
        return [column[i] if i is not None else None for i in origin]

    return pick


# -- checks -------------------------------------------------------------------------------------------------


def _decode(raw: bytes | None, k: int) -> Any:
    if raw is None:
        raise Corrupt(f"line {k} missing")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Corrupt(f"line {k} not JSON ({exc.__class__.__name__})") from None


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


def _check_meta(meta: dict[str, Any]) -> None:
    if not isinstance(meta.get("dir"), str):
        raise Corrupt("dir missing")
    for key in ("dir_mtime_ns", "built_ns", "count"):
        if type(meta.get(key)) is not int or meta[key] < 0:
            raise Corrupt(f"{key} missing")
    pf, problems = meta.get("problem_files"), meta.get("problems")
    if not isinstance(pf, dict) or not all(type(v) is str for v in pf.values()):
        raise Corrupt("problem_files malformed")
    if type(problems) is not list or not set(map(type, problems)) <= {str}:
        raise Corrupt("problems malformed")
    if type(meta.get("rows_bytes")) is not int:
        raise Corrupt("rows_bytes missing")
    if type(meta.get("duplicates")) is not bool:
        raise Corrupt("duplicates missing")


_NONE = type(None)
_COLUMN_TYPES = {
    _FILES: {str},
    _SIZES: {int},
    _MTIMES: {int},
    _INODES: {int},
    _CTIMES: {int},
    _STARTED: {int, _NONE},
    _SESSIONS: {str, _NONE},
    _PROBLEMS: {list, _NONE},
}


def _check_line(k: int, value: Any, n: int) -> Any:
    """A decoded header line if it is well-formed (n long), else `Corrupt`."""
    if type(value) is not list:
        raise Corrupt(f"line {k} is not a list")
    if k == _ORDER:
        if value and (
            set(map(type, value)) != {int} or len(set(value)) != len(value) or min(value) < 0 or max(value) >= n
        ):
            raise Corrupt("order malformed")
        return value
    if k == _OFFSETS:
        if len(value) != n or (value and (set(map(type, value)) != {int} or value[0] != 0)):
            raise Corrupt("offsets malformed")
        if not all(map(lt, value, value[1:])):
            raise Corrupt("offsets malformed")
        return value
    if len(value) != n or (value and not set(map(type, value)) <= _COLUMN_TYPES[k]):
        raise Corrupt(f"line {k} malformed")
    if k == _PROBLEMS and not set(map(type, chain.from_iterable(filter(None, value)))) <= {str}:
        raise Corrupt("problems column malformed")
    return value


def _check_rows(rows: list[Any], files: list[str]) -> None:
    """Rows decoded together, checked column-wise (C speed): `Corrupt` unless each is well-formed and names the
    file its place in the listing says."""
    if not rows:
        return
    if set(map(type, rows)) != {list} or set(map(len, rows)) != {_ROW_LEN}:
        raise Corrupt("a row is malformed")
    cols = list(zip(*rows))
    texts = set(chain.from_iterable(map(type, c) for c in cols[4 : 4 + len(FIELDS)]))
    numbers = list(filter(partial(is_not, None), chain.from_iterable(cols[4 + len(FIELDS) :])))
    if not (
        set(map(type, cols[1])) == {float}
        and all(map(math.isfinite, cols[1]))
        and set(map(type, cols[2])) <= {list, _NONE}
        and set(map(type, chain.from_iterable(filter(None, cols[2])))) <= {str}
        and set(map(type, cols[3])) == {str}
        and texts <= {str, _NONE}
        and set(map(type, numbers)) <= {int, float}
        and _in_range(numbers)
    ):
        raise Corrupt("a row is malformed")
    if list(cols[0]) != files:
        raise Corrupt("a row is out of place")


def _in_range(numbers: list[int | float]) -> bool:
    """What `metric` keeps: all finite, the ints within +-2**63."""
    try:
        if not all(map(math.isfinite, numbers)):
            return False
    except OverflowError:  # an int past the float range
        return False
    ints = [n for n in numbers if type(n) is int]
    return not ints or (min(ints) > -_INT_LIMIT and max(ints) < _INT_LIMIT)
