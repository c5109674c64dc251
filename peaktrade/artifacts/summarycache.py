"""`state/run-summaries.json` and the in-process cache of whole-run summaries of runs in the original format
(see `artifacts.summaries`, which derives them). Free of pyarrow: a site build's gather looks summaries up here
and imports the deriving module only for a run whose event file changed.

Each summary is keyed by its run directory and checked against the event file's fingerprint (name, size,
mtime_ns, inode). A file changed less than `_RACY_NS` before it was summarized could change again within the same
mtime tick without its fingerprint changing, so such a summary is not trusted next time: it is derived again.
This module is the only one that reads or writes the state file; a corrupt one counts as missing: it is rebuilt
and said so once (`SummaryCache.problems`).
"""

from __future__ import annotations

import os
import stat
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peaktrade import coerce
from peaktrade.artifacts import schema as S
from peaktrade.artifacts.scancache import stamped_file
from peaktrade.atomic import write_json
from peaktrade.safeio import UnreadableFile, load_json_object

if TYPE_CHECKING:
    import pyarrow as pa

FILE_NAME = "run-summaries.json"
TAIL_KEEP = 100  # rows kept in memory per run: covers the site's tail (50) and the monitor's default (15)
_VERSION = 1
_RACY_NS = 2_000_000_000
_MEMORY_RUNS = 4096  # in-process entries kept (LRU); a tail of 100 rows is a few tens of kB

Fingerprint = tuple[str, int, int, int]


@dataclass(frozen=True)
class Summary:
    """What a reader needs from a run's whole event file without reading it again."""

    fingerprint: Fingerprint
    totals: dict[str, Any]
    last: dict[str, Any] | None
    tail: pa.Table | None  # the last TAIL_KEEP rows, normalized; None when loaded from state/
    derived_ns: int


_MEMORY: OrderedDict[str, Summary] = OrderedDict()


def event_file(run_dir: Path) -> Path | None:
    """The single event file of a run in the original format, or None (then it has segments or nothing)."""
    for name in (S.EVENTS, S.LEGACY_CSV):
        path = run_dir / name
        if path.is_file():
            return path
    return None


def stamped_event_file(run_dir: Path, key: str) -> tuple[Path, Fingerprint] | None:
    """`event_file` and its `fingerprint` as the stats of a `scancache.stamp` of the run saw them (no stat now),
    or None when it found neither event file of the original format."""
    for name in (S.EVENTS, S.LEGACY_CSV):
        found = stamped_file(key, name)
        if found is not None and stat.S_ISREG(found[0]):
            return Path(run_dir) / name, (name, found[2], found[3], found[1])
    return None


def fingerprint(path: Path) -> Fingerprint:
    st = os.stat(path)
    return (path.name, st.st_size, st.st_mtime_ns, st.st_ino)


class SummaryCache:
    """The persistent cache of one state directory (None: in-process only). Call `save()` after a job."""

    def __init__(self, state_dir: Path | None):
        self.path = Path(state_dir) / FILE_NAME if state_dir is not None else None
        self.entries: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        self.dirty = False
        self._put: set[str] = set()
        self._cwd: str | None = None  # `_key`: a job does not change its working directory
        if self.path is not None:
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = load_json_object(self.path, 256 * 1024 * 1024, fix="it is rebuilt")
            if data.get("version") != _VERSION or not isinstance(data.get("runs"), dict):
                raise UnreadableFile(f"{self.path}: unknown layout (version {data.get('version')!r})")
            # an entry that is no summary (damaged, or tampered with) is dropped: its run is derived again
            entries = {k: v for k, v in data["runs"].items() if _valid_entry(v) and _sound(v, self.path)}
        except FileNotFoundError:
            return
        except UnreadableFile as exc:
            self.problems.append(f"{exc}; treated as missing and rebuilt")
            self.dirty = True
            return
        self.entries = entries

    def get(self, run_dir: Path, path: Path, *, need_tail: bool = False) -> Summary:
        """The summary of `path` (the run's event file), derived only if its fingerprint changed.

        `need_tail`: the caller needs `Summary.tail`, which only an in-process summary holds.
        """
        key = self._key(run_dir)
        fp = fingerprint(path)
        summary = self._lookup(key, fp, need_tail)
        if summary is None:
            from peaktrade.artifacts.summaries import derive  # pyarrow: only for a file that changed

            summary = derive(path, fp)
            self._keep(key, summary)
        return summary

    def _key(self, run_dir: Path) -> str:
        """`str(Path(run_dir).absolute())`, without a getcwd for each of 1,000 runs."""
        if self._cwd is None:
            self._cwd = os.getcwd()
        rel = str(Path(run_dir))  # normalized as `absolute` does (no "." parts, no doubled "/")
        return self._cwd if rel == "." else os.path.join(self._cwd, rel)

    def fresh(self, run_dir: Path, path: Path, fp: Fingerprint | None = None) -> bool:
        """Is a settled summary of `path` (as it is now, or as fingerprint `fp` taken by this job says) already
        kept? (False if the file is gone, or was gone when `fp` was taken.)"""
        return self.kept(run_dir, path, fp) is not None

    def kept(self, run_dir: Path, path: Path, fp: Fingerprint | None = None) -> Summary | None:
        """The settled summary of `path` (as it is now, or as fingerprint `fp` taken by this job says) if one is
        kept, else None (also if the file is gone, or was gone when `fp` was taken): never derives, so never opens
        the file. Its `tail` is None unless it was derived in this process."""
        if fp is None:
            try:
                fp = fingerprint(path)
            except OSError:
                return None
        return self._lookup(self._key(run_dir), fp, need_tail=False)

    def _lookup(self, key: str, fp: Fingerprint, need_tail: bool) -> Summary | None:
        """The summary kept for the event file whose fingerprint is now `fp`: settled, or put by this job; only an
        in-process one (not derived in a worker) has the tail `need_tail` asks for."""
        hit = _MEMORY.get(key)
        usable = hit is not None and (hit.tail is not None or not need_tail)
        if usable and hit.fingerprint == fp and (_settled(fp, hit.derived_ns) or key in self._put):
            _MEMORY.move_to_end(key)
            return hit
        stored = self.entries.get(key)
        if not need_tail and stored is not None and tuple(stored["fp"]) == fp and _settled(fp, stored["derived_ns"]):
            return Summary(fp, stored["totals"], stored["last"], None, stored["derived_ns"])
        return None

    def put(self, run_dir: Path, summary: Summary) -> None:
        """Keep a summary a worker process derived for this job: `get` and `fresh` trust it for as long as this
        cache lives, even if its file had not settled yet (deriving it again now would read the same bytes)."""
        key = self._key(run_dir)
        self._put.add(key)
        self._keep(key, summary)

    def _keep(self, key: str, summary: Summary) -> None:
        _remember(key, summary)
        if self.path is not None:
            self.entries[key] = {
                "fp": list(summary.fingerprint),
                "totals": summary.totals,
                "last": _jsonable(summary.last),
                "derived_ns": summary.derived_ns,
            }
            self.dirty = True

    def forget_missing(self, run_dirs: set[str]) -> None:
        """Drop entries of runs that no longer exist (keeps the file from growing forever)."""
        gone = [k for k in self.entries if k not in run_dirs]
        for k in gone:
            del self.entries[k]
        self.dirty = self.dirty or bool(gone)

    def save(self) -> None:
        """Write the cache if anything changed; a read-only state dir only costs the speed-up."""
        if self.path is None or not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, {"version": _VERSION, "runs": self.entries}, fsync=False, indent=None)
        except OSError:
            return
        self.dirty = False


def derive_kept(path: Path) -> Summary | None:
    """In a worker process: `summaries.derive_quietly`, without the tail table, which `SummaryCache` does not keep
    (sending it back would make the caller import pyarrow to receive it). Defined here, in a module without
    pyarrow, so that a caller can name it to a worker without importing the deriving module."""
    from peaktrade.artifacts.summaries import derive_quietly

    summary = derive_quietly(path)
    return replace(summary, tail=None) if summary is not None else None


def _valid_entry(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and isinstance(v.get("fp"), list)
        and len(v["fp"]) == 4
        and isinstance(v.get("totals"), dict)
        and isinstance(v.get("last"), dict | type(None))
        and isinstance(v.get("derived_ns"), int)
    )


def _sound(v: dict[str, Any], path: Path) -> bool:
    """Do an entry's totals and last event hold what the pages expect, field by field (as meta.json's would)?"""
    if coerce.run_totals(v["totals"], path)[1]:
        return False
    return v["last"] is None or not coerce.event_row(v["last"], path)[1]


def _settled(fp: Fingerprint, derived_ns: int) -> bool:
    return derived_ns - fp[2] > _RACY_NS


def _remember(key: str, summary: Summary) -> None:
    _MEMORY[key] = summary
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > _MEMORY_RUNS:
        _MEMORY.popitem(last=False)


def _jsonable(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
