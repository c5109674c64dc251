"""`state/run-scan.json`: each run's meta.json as the last scan parsed it, keyed by the stats of the run's files.

Every minute, `site build` scanned 1,000 run directories: read, parsed and checked 1,000 meta.json files (and
looked for symlinks among each run's files) although almost none had changed. A run whose directory and files
(meta.json, events.parquet, events.d, events.csv, orders.jsonl) have the same lstat as last time (mode, inode,
size, mtime and ctime: an in-place edit changes ctime even when mtime is put back) has the same meta.json, so the
parsed copy and its problems are used. A run with a symlink among those names is always read (a change of the
target is not in the link's own stat). Runs that could not be read are not kept: they are read, and reported,
every scan. A corrupt file counts as missing: it is rebuilt and named once; a kept copy that is valid JSON but
was tampered with is checked field by field again (`coerce.meta`), as the meta.json it stands for would be.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from peaktrade import coerce
from peaktrade.artifacts import schema as S
from peaktrade.atomic import write_bytes
from peaktrade.errors import ArtifactError
from peaktrade.safeio import MAX_JSON_BYTES, UnreadableFile, loads, parse_json, read_bytes

FILE = "run-scan.json"
VERSION = 1
NAMES = (S.META, S.EVENTS, S.SEGMENTS, S.LEGACY_CSV, S.ORDERS)


def stamp(run_dir: str) -> str | None:
    """The stats of a run directory and its files as one string; None when one of them is a symlink."""
    parts = []
    for path in (run_dir, *(os.path.join(run_dir, name) for name in NAMES)):
        try:
            st = os.lstat(path)
        except OSError as exc:
            parts.append(str(exc.errno))
            continue
        if stat.S_ISLNK(st.st_mode):
            return None
        parts.append(f"{st.st_mode:o}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}")
    return "|".join(parts)


def stamped_file(key: str, name: str) -> tuple[int, int, int, int] | None:
    """What a `stamp` says of the run's file `name` (one of `NAMES`): (mode, inode, size, mtime_ns), or None if it
    found none. Read back by the build that took it, so no file is stat'ed twice (a stamp holds no symlink)."""
    parts = key.split("|")
    fields = parts[NAMES.index(name) + 1].split(":") if len(parts) == len(NAMES) + 1 else ()
    if len(fields) != 5:
        return None
    return int(fields[0], 8), int(fields[1]), int(fields[2]), int(fields[3])


class ScanCache:
    """The parsed meta.json files of the last scan (see module doc); `save` writes it back when it changed."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / FILE
        self.problems: list[str] = []
        self._runs: dict[str, list] = {}
        self._used: set[str] = set()
        self._lines: dict[str, bytes] = {}  # run -> its line as read, written back as is while the run is unchanged
        self._dirty = False
        try:
            data = read_bytes(self.path)
            lines = _lines(data)  # as `save` writes it; else parsed as a whole (and named if it is no JSON)
            doc = {"version": VERSION, "runs": lines[0]} if lines is not None else parse_json(self.path, data)
        except FileNotFoundError:
            return
        except UnreadableFile as exc:
            self._corrupt(str(exc))
            return
        if isinstance(doc, dict) and doc.get("version") != VERSION and isinstance(doc.get("version"), int):
            self._dirty = True  # another release's: rebuilt without a word
            return
        runs = doc.get("runs") if isinstance(doc, dict) else None
        if not isinstance(runs, dict) or not all(_sound(v) for v in runs.values()):
            self._corrupt(f"{self.path}: corrupt run scan cache")
            return
        self._runs = runs
        self._lines = lines[1] if lines is not None else {}

    def get(self, name: str, key: str | None, meta_path: Path | str) -> tuple[dict[str, Any], list[str]] | None:
        """The parsed meta.json of run `name` and its problems, if its files still have stats `key`."""
        hit = self._runs.get(name)
        if key is None or hit is None or hit[0] != key:
            return None
        try:
            meta, damage = coerce.meta(hit[1], meta_path)  # what coerce left is unchanged by it, unless tampered
        except ArtifactError:
            damage = ["not an object"]
        if damage:
            self._corrupt(f"{self.path}: damaged entry of run {name!r}")
            return None
        self._used.add(name)
        return meta, list(hit[2])

    def put(self, name: str, key: str | None, meta: dict[str, Any], problems: list[str]) -> None:
        if key is None:
            return
        self._runs[name] = [key, meta, problems]
        self._lines.pop(name, None)
        self._used.add(name)
        self._dirty = True

    def save(self) -> None:
        """Write the runs this scan met (others are gone), if anything changed; failures only cost speed."""
        if set(self._runs) != self._used:
            self._runs = {k: v for k, v in self._runs.items() if k in self._used}
            self._dirty = True
        if not self._dirty:
            return
        names = sorted(self._runs)
        lines = [self._lines.get(name) or _line(name, self._runs[name]) for name in names]
        data = b"".join((_HEAD, b",\n".join(lines), _TAIL))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if len(data) > MAX_JSON_BYTES:  # more than a scan reads: no cache rather than a "corrupt" one every scan
                self.path.unlink(missing_ok=True)
            else:
                write_bytes(self.path, data, fsync=False)
        except OSError:
            pass  # read-only or full state/: the next scan reads every meta.json again, as without a cache
        self._dirty = False

    def _corrupt(self, problem: str) -> None:
        if not self.problems:  # said once per scan
            self.problems.append(f"{problem}; rebuilt (it only saves reading meta.json files again)")
        self._dirty = True


# One run a line: a save encodes only the runs scanned afresh (1,000 metas took 40 ms to encode on every build).
_HEAD = b'{"version":%d,"runs":{\n' % VERSION
_TAIL = b"\n}}\n"


def _line(name: str, entry: list) -> bytes:
    # ASCII, escaped: a meta.json may hold a lone surrogate (a valid JSON escape), which UTF-8 cannot encode
    return (coerce.strict_json(name) + ":" + coerce.strict_json(entry, sort_keys=True)).encode()


def _lines(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """The runs in `data` and each one's line, if the file is laid out exactly as `save` writes it: each line one
    run (parsed alone, so a line is written back only if it holds that run and nothing else), separated by
    commas. None otherwise: then the file is parsed as a whole and every run encoded again."""
    lines = data.split(b"\n")
    if len(lines) < 4 or lines[0] + b"\n" != _HEAD or lines[-2:] != [b"}}", b""]:
        return None
    runs: dict[str, Any] = {}
    found: dict[str, bytes] = {}
    last = len(lines) - 3
    for i, line in enumerate(lines[1:-2]):
        if i < last - 1:
            if not line.endswith(b","):
                return None
            line = line[:-1]
        try:
            entry = loads(b"{" + line + b"}")
        except (ValueError, RecursionError):  # UnicodeDecodeError is one
            return None
        if len(entry) != 1:
            return None
        ((name, value),) = entry.items()
        if name in runs:
            return None
        runs[name], found[name] = value, line
    return runs, found


def _sound(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and isinstance(value[1], dict)
        and isinstance(value[2], list)
        and all(isinstance(p, str) for p in value[2])
    )
