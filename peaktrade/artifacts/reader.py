"""RunReader: read a run directory at any moment, running or finished, ours or Peak_Trade's.

Snapshot and tail cost O(1) in the run's length: the snapshot comes from meta.json (totals and last row are
kept there by the writer), the tail from the last segment(s) or the last row group(s) of events.parquet.

meta.json is the commit point: the writer appends events first and rewrites meta after, so the event files may
hold rows that meta does not count yet. A reader reads meta first and clips every event it returns at meta's
last committed step, so a snapshot and a tail from one reader are always one consistent view.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from peaktrade import coerce, safeio
from peaktrade.artifacts import legacy, summaries, summarycache
from peaktrade.artifacts import schema as S
from peaktrade.artifacts.journal import list_segments, read_segment
from peaktrade.artifacts.runmeta import check_links, committed_step, read_meta
from peaktrade.errors import ArtifactError, RunNotFound

_RETRIES = 5


class RunReader:
    """Read-only view of one run directory. Raises `RunNotFound` if there is no meta.json.

    `problems` collects what had to be skipped or treated as missing while reading (file and field named):
    fields of meta.json, order lines, event cells, segments, rows lost in a damaged segment.

    `meta` passes a meta.json already read by a scan, so a build reads each file once;
    `upto` clips events at an older commit point than meta's (the step of a snapshot taken earlier, see
    `monitoring.load_run_tail`).
    Runs without our summary in meta.json (Peak_Trade's) get their totals, last event and tail from
    `artifacts.summaries` (derived once per event-file fingerprint); pass the job's `SummaryCache` as
    `summary_cache` to keep them in state/.
    """

    def __init__(
        self,
        run_dir: Path,
        meta: dict[str, Any] | None = None,
        *,
        upto: int | None = None,
        summary_cache: summarycache.SummaryCache | None = None,
    ):
        self.run_dir = Path(run_dir)
        self._unchecked = False  # see `_files`
        self._summaries = summary_cache
        self._derived: summarycache.Summary | None = None
        if meta is None:
            meta_path = self.run_dir / S.META
            if not meta_path.exists() and not meta_path.is_symlink():
                raise RunNotFound(f"no run at {self.run_dir} (meta.json missing)")
            check_links(self.run_dir)
            self.meta, self.problems = read_meta(meta_path)
        else:
            # Checked again although the scan did, before the first file is opened (`_files`): one may have become
            # a symlink out of the run since (a build renders long after its scan, and a scan with a cache uses
            # stats taken before it and reads nothing). Not here: a build's gather opens no file of most runs.
            self._unchecked = True
            self.meta, self.problems = meta, []
        self.is_legacy = "schema_version" not in self.meta
        self.committed_step = committed_step(self.meta)
        if upto is not None and (self.committed_step is None or upto < self.committed_step):
            self.committed_step = upto

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.run_dir.name)

    def tail(self, n: int = 15) -> pa.Table:
        """The last `n` events, oldest first, normalized to `EVENT_SCHEMA`."""
        if n <= 0:
            return S.EVENT_SCHEMA.empty_table()
        self._files()
        derived = self._derived_tail(n)
        if derived is not None:
            return derived
        for _ in range(_RETRIES):
            try:
                table = self._tail(n)
                return table.slice(max(0, table.num_rows - n))
            except FileNotFoundError:  # compaction removed a segment between listing and opening
                time.sleep(0.02)
        raise ArtifactError(f"{self.run_dir}: events kept changing while reading; try again")

    def events(self, columns: list[str] | None = None) -> pa.Table:
        """Every event of the run (normalized); `columns` projects for speed."""
        self._files()
        for _ in range(_RETRIES):
            try:
                # the commit point needs the step column: project with it, select the caller's columns after
                wanted = None if columns is None else list(dict.fromkeys([*columns, "step"]))
                table = self._clip(self._all(wanted))
                self._check_count(table.num_rows)
                return table.select(columns) if columns else table
            except FileNotFoundError:
                time.sleep(0.02)
        raise ArtifactError(f"{self.run_dir}: events kept changing while reading; try again")

    def totals(self) -> dict[str, Any]:
        """Whole-run totals (steps, orders, filled, rejected, blocked, max_drawdown...), exact for the run."""
        summary = self.meta.get("summary")
        if isinstance(summary, dict) and isinstance(summary.get("totals"), dict):
            return dict(summary["totals"])
        derived = self._summary()
        if derived is not None:
            return dict(derived.totals)
        return legacy.totals_from_table(self.events(list(legacy.TOTALS_COLUMNS)))

    def last_event(self) -> dict[str, Any] | None:
        """The newest event as a dict (from meta for our runs: no event file is opened)."""
        summary = self.meta.get("summary")
        if isinstance(summary, dict) and summary.get("last"):
            return dict(summary["last"])
        derived = self._summary()
        if derived is not None:
            return dict(derived.last) if derived.last else None
        rows = legacy.to_rows(self.tail(1))  # not to_pylist: it imports pandas for zone-aware timestamps
        return rows[-1] if rows else None

    def orders(self) -> list[dict[str, Any]]:
        """Every complete order record; a torn last line (crashed writer) is skipped, bad lines reported."""
        self._files()
        orders, problems = read_orders_checked(self.run_dir / S.ORDERS)
        self._note(problems)
        return orders

    def _files(self) -> None:
        """Before the first file of the run is opened: `ArtifactError` if one is a symlink out of the run."""
        if self._unchecked:
            check_links(self.run_dir)
            self._unchecked = False

    def _note(self, problems: list[str]) -> None:
        self.problems += [p for p in problems if p not in self.problems]

    def _check_count(self, rows: int) -> None:
        """Fewer rows than meta.json counted: a sealed segment (or the compacted file) lost some. Say how many."""
        counted = self.meta.get("rows")
        if self.is_legacy or not isinstance(counted, int) or rows >= counted:
            return
        if self.committed_step is not None and self.committed_step < counted - 1:
            return  # clipped at an older snapshot on purpose
        self._note(
            [
                f"{self.run_dir}: {counted - rows} of {counted} rows that meta.json counts are missing from the "
                "event files (a truncated or corrupt segment); the readable rows are shown. `peaktrade runs "
                "recover` keeps them and records the loss"
            ]
        )

    def _clip(self, table: pa.Table) -> pa.Table:
        """Drop rows newer than the commit point (appended by the writer, not yet counted in meta.json)."""
        upto = self.committed_step
        if upto is None or not table.num_rows or "step" not in table.column_names:
            return table
        steps = table.column("step")
        if steps.null_count == 0 and pc.max(steps).as_py() <= upto:
            return table  # the common case: nothing uncommitted, no copy
        return table.filter(pc.less_equal(steps, upto))

    # -- internals ------------------------------------------------------------------------------------------

    def _event_file(self) -> Path | None:
        """The one event file of a run without our summary (Peak_Trade's), else None."""
        summary = self.meta.get("summary")
        if isinstance(summary, dict) and isinstance(summary.get("totals"), dict):
            return None
        return summarycache.event_file(self.run_dir)

    def _summary(self, need_tail: bool = False) -> summarycache.Summary | None:
        if self._derived is not None and (self._derived.tail is not None or not need_tail):
            return self._derived  # one reader is one view: the file is checked once
        path = self._event_file()
        if path is None:
            return None
        self._files()
        cache = self._summaries if self._summaries is not None else summarycache.SummaryCache(None)
        try:
            self._derived = cache.get(self.run_dir, path, need_tail=need_tail)
        except FileNotFoundError:  # replaced between the check and the read: the slow path copes
            return None
        return self._derived

    def _derived_tail(self, n: int) -> pa.Table | None:
        """The tail of a run in the original format: from its summary, streamed once per fingerprint."""
        path = self._event_file()
        if path is None:
            return None
        try:
            if n > summarycache.TAIL_KEEP:
                tail = summaries.derive(path, keep=n).tail
            else:
                derived = self._summary(need_tail=True)
                tail = derived.tail if derived is not None else None
        except FileNotFoundError:
            return None
        return tail.slice(max(0, tail.num_rows - n)) if tail is not None else None

    def _tail(self, n: int) -> pa.Table:
        final = self.run_dir / S.EVENTS
        if final.exists():
            return self._clip(self._parquet_tail(final, n))
        segments = list_segments(self.run_dir / S.SEGMENTS, S.SEGMENT_PREFIX, S.SEGMENT_SUFFIX)
        if segments:
            parts: list[pa.Table] = []
            have = 0
            for path in reversed(segments):
                # a segment may hold rows past the commit point: clip before counting what the tail has
                last = n - have if self.committed_step is None else None
                table = self._segment(path, last)
                table = self._clip(table) if table is not None else None
                if table is not None and table.num_rows:
                    parts.insert(0, table)
                    have += table.num_rows
                if have >= n:
                    break
            return pa.concat_tables(parts) if parts else S.EVENT_SCHEMA.empty_table()
        if final.exists():  # compaction finished between the two checks
            return self._clip(self._parquet_tail(final, n))
        return self._clip(self._legacy_or_empty())

    def _all(self, columns: list[str] | None = None) -> pa.Table:
        final = self.run_dir / S.EVENTS
        if final.exists():
            return self._normalize(_read_parquet(final, columns), final, columns)
        segments = list_segments(self.run_dir / S.SEGMENTS, S.SEGMENT_PREFIX, S.SEGMENT_SUFFIX)
        tables = [t for t in (self._segment(p) for p in segments) if t is not None]
        if tables:
            table = pa.concat_tables(tables)
            return table.select(columns) if columns else table
        if final.exists():
            return self._normalize(_read_parquet(final, columns), final, columns)
        return self._legacy_or_empty(columns)

    def _legacy_or_empty(self, columns: list[str] | None = None) -> pa.Table:
        csv_path = self.run_dir / S.LEGACY_CSV
        if csv_path.exists():
            return self._normalize(_read_csv(csv_path, columns), csv_path, columns)
        table = S.EVENT_SCHEMA.empty_table()
        return table.select(columns) if columns else table

    def _parquet_tail(self, path: Path, n: int) -> pa.Table:
        problems: list[str] = []
        table = _parquet_tail(path, n, problems, self._clip)
        self._note(problems)
        return table

    def _normalize(self, table: pa.Table, source: Path, columns: list[str] | None = None) -> pa.Table:
        problems: list[str] = []
        table = legacy.normalize(table, problems, source, columns=columns)
        self._note(problems)
        return table

    def _segment(self, path: Path, last: int | None = None) -> pa.Table | None:
        """One segment's whole batches (only the `last` rows if given), normalized; one that cannot be read is
        skipped and reported."""
        try:
            table, _ = read_segment(path)
            if table is not None and last is not None:
                table = table.slice(max(0, table.num_rows - last))
        except ArtifactError as exc:
            self._note([f"{exc}; segment skipped"])
            return None
        if table is None:  # segments appear by rename with their schema written: this one is damaged
            self._note([f"{path}: not an Arrow IPC stream; segment skipped (remove it)"])
            return None
        return self._normalize(table, path)


def _read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Open once and parse from the handle: path-based readers race with os.replace.

    Every read of ours runs without Arrow's thread pool (`use_threads=False`): once its threads have read through
    a Python file, tearing the pool down at exit aborts the process now and then ("terminate called without an
    active exception", SIGABRT; apache/arrow#34314): a monitor stopped with Ctrl+C, or a cron job that did its
    work, would exit 134. The site build spreads work over processes instead.

    With `columns` (names of `EVENT_SCHEMA`), only the file's columns that can feed them are decoded.
    """
    try:
        with safeio.open_regular(path) as fh:
            pf = pq.ParquetFile(fh)
            if columns is None:
                return pf.read(use_threads=False)
            return pf.read(columns=legacy.source_columns(columns, pf.schema_arrow.names), use_threads=False)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ArtifactError(f"{path}: unreadable Parquet ({exc}); the file is corrupt") from None


def _parquet_tail(path: Path, n: int, problems: list[str], clip=lambda t: t) -> pa.Table:
    try:
        with safeio.open_regular(path) as fh:
            pf = pq.ParquetFile(fh)
            parts: list[pa.Table] = []
            have = 0
            for rg in range(pf.num_row_groups - 1, -1, -1):
                table = pf.read_row_group(rg, use_threads=False)  # see _read_parquet
                parts.insert(0, table)
                have += clip(table).num_rows if "step" in table.column_names else table.num_rows
                if have >= n:
                    break
            if not parts:
                return S.EVENT_SCHEMA.empty_table()
            return legacy.normalize(pa.concat_tables(parts), problems, path)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ArtifactError(f"{path}: unreadable Parquet ({exc}); the file is corrupt") from None


def _csv_columns(fh: BinaryIO, columns: list[str]) -> list[str]:
    """The names in a CSV file's header that can feed `columns`, in the file's order; [] (read every column) for
    any header that is not plain: a quote, a CR inside, a name twice, longer than 64 KiB, not UTF-8. Only a plain
    one is split here as Arrow splits it, so a projected read never loses a column the whole read has (and a name
    found twice is reported by `legacy.normalize`, which only sees it in a whole read)."""
    line = fh.readline(1 << 16)
    if not line.endswith(b"\n") or b'"' in line or b"\r" in line[:-2]:
        return []
    try:
        header = line.decode("utf-8-sig").rstrip("\r\n").split(",")
    except UnicodeDecodeError:
        return []
    if len(set(header)) < len(header):
        return []
    wanted = set(legacy.source_names(columns))
    return [name for name in header if name in wanted]


def _read_csv(path: Path, columns: list[str] | None = None) -> pa.Table:
    """With `columns` (names of `EVENT_SCHEMA`), only the file's columns that can feed them are converted (a
    third of the cost of reading the whole file)."""
    try:
        with safeio.open_regular(path) as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return S.EVENT_SCHEMA.empty_table()
            include = [] if columns is None else _csv_columns(fh, columns)  # [] reads them all
            try:
                return _parse_csv(fh, include)
            except pa.ArrowKeyError:  # a header Arrow reads otherwise after all: read it all
                if not include:
                    raise
                return _parse_csv(fh, [])
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ArtifactError(f"{path}: unreadable CSV ({exc}); fix or remove it") from None


def _parse_csv(fh: BinaryIO, names: list[str]) -> pa.Table:
    """The open CSV file from its start, only the columns `names` converted ([]: all of them)."""
    import pyarrow.csv as pcsv

    fh.seek(0)
    opts = pcsv.ConvertOptions(
        strings_can_be_null=False, column_types={"risk_reasons": pa.string()}, include_columns=names
    )
    no_pool = pcsv.ReadOptions(use_threads=False)  # see _read_parquet
    return pcsv.read_csv(fh, convert_options=opts, read_options=no_pool)


_MAX_LINE_PROBLEMS = 5


def read_orders(path: Path) -> list[dict[str, Any]]:
    """Every complete order record of an orders.jsonl (see `read_orders_checked`)."""
    return read_orders_checked(path)[0]


def read_orders_checked(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every complete order record, fields of the wrong type treated as missing, plus the problems met.

    The piece after the last newline is a line being written (or torn by a crash): not read, not a problem.
    """
    try:
        data = safeio.read_bytes(Path(path), max_bytes=1 << 30)
    except FileNotFoundError:
        return [], []
    except ArtifactError as exc:
        return [], [f"{exc}; orders not shown"]
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    bad = 0
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            record, found = coerce.order(safeio.loads(line), path, number)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            record, found = None, [f"{path}:{number}: not a JSON object on one line; line skipped"]
        if found:
            bad += 1
            if bad <= _MAX_LINE_PROBLEMS:
                problems += found
        if record is not None:
            out.append(record)
    if bad > _MAX_LINE_PROBLEMS:
        problems.append(f"{path}: {bad - _MAX_LINE_PROBLEMS} more lines with problems")
    return out, problems
