"""Whole-run summaries of runs without our meta.json sidecar (Peak_Trade's events.parquet / events.csv).

Such a run keeps no totals anywhere, so the totals, the last event and a short tail are derived from its event
file in one streaming pass (row batches, never the whole table: a 1M-event file stays far below 150 MB) and
cached by the file's fingerprint (name, size, mtime_ns, inode):

- in-process (totals, last event and the tail table), so a monitor's later refreshes cost one `stat`;
- in `state/run-summaries.json` (totals and last event), so a site build re-derives only runs whose event file
  changed. This module is the only one that reads or writes that file; a corrupt one counts as missing: it is
  rebuilt and said so once (`SummaryCache.problems`).

A file changed less than `_RACY_NS` before it was summarized could change again within the same mtime tick
without its fingerprint changing, so such a summary is not trusted next time: it is derived again.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from peaktrade.artifacts import legacy
from peaktrade.artifacts import schema as S
from peaktrade.atomic import write_json
from peaktrade.errors import ArtifactError
from peaktrade.safeio import UnreadableFile, load_json_object, open_regular

FILE_NAME = "run-summaries.json"
TAIL_KEEP = 100  # rows kept in memory per run: covers the site's tail (50) and the monitor's default (15)
_VERSION = 1
_RACY_NS = 2_000_000_000
_BATCH_ROWS = 16_384  # decoded per step: bigger batches only raise peak memory (measured)
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
        if self.path is not None:
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = load_json_object(self.path, 256 * 1024 * 1024, fix="it is rebuilt")
            if data.get("version") != _VERSION or not isinstance(data.get("runs"), dict):
                raise UnreadableFile(f"{self.path}: unknown layout (version {data.get('version')!r})")
            entries = {k: v for k, v in data["runs"].items() if _valid_entry(v)}
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
        key = str(Path(run_dir).absolute())
        fp = fingerprint(path)
        hit = _MEMORY.get(key)
        if hit is not None and hit.fingerprint == fp and (_settled(fp, hit.derived_ns) or key in self._put):
            _MEMORY.move_to_end(key)
            return hit
        stored = self.entries.get(key)
        if not need_tail and stored is not None and tuple(stored["fp"]) == fp and _settled(fp, stored["derived_ns"]):
            return Summary(fp, stored["totals"], stored["last"], None, stored["derived_ns"])
        summary = derive(path, fp)
        self._keep(str(Path(run_dir).absolute()), summary)
        return summary

    def fresh(self, run_dir: Path, path: Path) -> bool:
        """Is a settled summary of `path` (as it is now) already kept? (False if the file is gone.)"""
        key = str(Path(run_dir).absolute())
        try:
            fp = fingerprint(path)
        except OSError:
            return False
        hit = _MEMORY.get(key)
        if hit is not None and hit.fingerprint == fp and (_settled(fp, hit.derived_ns) or key in self._put):
            return True
        stored = self.entries.get(key)
        return stored is not None and tuple(stored["fp"]) == fp and _settled(fp, stored["derived_ns"])

    def put(self, run_dir: Path, summary: Summary) -> None:
        """Keep a summary a worker process derived for this job: `get` and `fresh` trust it for as long as this
        cache lives, even if its file had not settled yet (deriving it again now would read the same bytes)."""
        key = str(Path(run_dir).absolute())
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


def _valid_entry(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and isinstance(v.get("fp"), list)
        and len(v["fp"]) == 4
        and isinstance(v.get("totals"), dict)
        and isinstance(v.get("last"), dict | type(None))
        and isinstance(v.get("derived_ns"), int)
    )


def _settled(fp: Fingerprint, derived_ns: int) -> bool:
    return derived_ns - fp[2] > _RACY_NS


def _remember(key: str, summary: Summary) -> None:
    _MEMORY[key] = summary
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > _MEMORY_RUNS:
        _MEMORY.popitem(last=False)


# -- deriving -------------------------------------------------------------------------------------------------


def derive_quietly(path: Path) -> Summary | None:
    """`derive` for a worker process: None when the file cannot be summarized (the caller's own reader then
    derives it again and reports the problem with the run)."""
    try:
        return derive(path, fingerprint(path))
    except (ArtifactError, OSError, pa.ArrowException):
        return None


def derive(path: Path, fp: Fingerprint | None = None, keep: int = TAIL_KEEP) -> Summary:
    """One streaming pass over an event file: totals, last event and the last `keep` rows."""
    derived_ns = time.time_ns()
    acc = legacy.TotalsAccumulator()
    tail_parts: list[pa.Table] = []
    tail_rows = 0
    try:
        for raw in _batches(path):
            if raw.num_rows == 0:
                continue
            acc.add(legacy.normalize(raw, columns=legacy.TOTALS_COLUMNS))
            tail_parts.append(raw)
            tail_rows += raw.num_rows
            while tail_parts and tail_rows - tail_parts[0].num_rows >= keep:
                tail_rows -= tail_parts.pop(0).num_rows
        raw_tail = pa.concat_tables(tail_parts, promote_options="permissive") if tail_parts else None
        tail = legacy.normalize(raw_tail.slice(max(0, raw_tail.num_rows - keep))) if raw_tail is not None else None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise ArtifactError(
            f"{path}: a column cannot be read as the event schema says ({exc}); fix or remove it"
        ) from None
    if raw_tail is not None and tail is not None:
        # Step numbers of files without a step column count from the file's first row, not the tail's.
        if "step" not in raw_tail.column_names:
            first = acc.steps - tail.num_rows
            tail = tail.set_column(0, "step", pc.add(legacy._int_range(tail.num_rows), first))
    else:
        tail = S.EVENT_SCHEMA.empty_table()
    rows = legacy.to_rows(tail.slice(tail.num_rows - 1)) if tail.num_rows else []
    return Summary(fp or fingerprint(path), acc.result(), rows[0] if rows else None, tail, derived_ns)


def _batches(path: Path):
    """Row batches of the file as tables, opened once (path-based readers race with os.replace) and only if it is
    a regular file (a FIFO swapped in after `event_file` looked would block the open) inside its run directory (a
    symlink leading out, swapped in after the run's check, is not followed: the site derives in worker processes
    from paths found by an earlier scan)."""
    try:
        with open_regular(path, within=Path(path).parent.resolve()) as fh:
            if path.name == S.LEGACY_CSV:
                yield from _csv_batches(fh)
                return
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(fh, pre_buffer=False, buffer_size=1 << 20)
            for batch in pf.iter_batches(batch_size=_BATCH_ROWS, use_threads=False):
                yield pa.Table.from_batches([batch])
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        kind = "CSV" if path.name == S.LEGACY_CSV else "Parquet"
        raise ArtifactError(f"{path}: unreadable {kind} ({exc}); the file is corrupt") from None


def _csv_batches(fh):
    import pyarrow.csv as pcsv

    if os.fstat(fh.fileno()).st_size == 0:
        return
    # Every column is read as text (empty cells as null) and converted by `legacy.normalize`: type inference
    # on the first block would fail on a later block whose cells look different (an int column that later
    # holds 0.5).
    with _native(fh) as src:
        header = pcsv.open_csv(src, read_options=pcsv.ReadOptions(block_size=1 << 16, use_threads=False)).schema
    opts = pcsv.ConvertOptions(strings_can_be_null=True, column_types={n: pa.string() for n in header.names})
    with _native(fh) as src:
        reader = pcsv.open_csv(
            src, convert_options=opts, read_options=pcsv.ReadOptions(block_size=1 << 20, use_threads=False)
        )
        for batch in reader:
            yield pa.Table.from_batches([batch])


def _native(fh):
    """The open file as an Arrow-native stream (on Linux through /proc/self/fd: the same file, not the path).
    Arrow's CSV streaming reader starts its CPU thread pool even without `use_threads`; reading a Python file
    from those threads can abort the process when the pool is torn down at exit (see reader._read_parquet)."""
    proc = f"/proc/self/fd/{fh.fileno()}"
    if os.path.exists(proc):
        return pa.OSFile(proc)
    fh.seek(0)
    return contextlib.nullcontext(fh)


def _jsonable(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
