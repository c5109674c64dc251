"""RunReader: read a run directory at any moment, running or finished, ours or Peak_Trade's.

Snapshot and tail cost O(1) in the run's length: the snapshot comes from meta.json (totals and last row are
kept there by the writer), the tail from the last segment(s) or the last row group(s) of events.parquet.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from peaktrade import coerce, safeio
from peaktrade.artifacts import legacy
from peaktrade.artifacts import schema as S
from peaktrade.artifacts.journal import list_segments, read_segment
from peaktrade.errors import ArtifactError, RunNotFound

_RETRIES = 5


class RunReader:
    """Read-only view of one run directory. Raises `RunNotFound` if there is no meta.json.

    `problems` collects what had to be skipped or treated as missing while reading (file and field named):
    fields of meta.json, order lines, event cells, segments.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        meta_path = self.run_dir / S.META
        if not meta_path.exists() and not meta_path.is_symlink():
            raise RunNotFound(f"no run at {self.run_dir} (meta.json missing)")
        check_links(self.run_dir)
        self.meta, self.problems = read_meta(meta_path)
        self.is_legacy = "schema_version" not in self.meta

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.run_dir.name)

    def tail(self, n: int = 15) -> pa.Table:
        """The last `n` events, oldest first, normalized to `EVENT_SCHEMA`."""
        if n <= 0:
            return S.EVENT_SCHEMA.empty_table()
        for _ in range(_RETRIES):
            try:
                table = self._tail(n)
                return table.slice(max(0, table.num_rows - n))
            except FileNotFoundError:  # compaction removed a segment between listing and opening
                time.sleep(0.02)
        raise ArtifactError(f"{self.run_dir}: events kept changing while reading; try again")

    def events(self, columns: list[str] | None = None) -> pa.Table:
        """Every event of the run (normalized); `columns` projects for speed."""
        for _ in range(_RETRIES):
            try:
                table = self._all()
                return table.select(columns) if columns else table
            except FileNotFoundError:
                time.sleep(0.02)
        raise ArtifactError(f"{self.run_dir}: events kept changing while reading; try again")

    def totals(self) -> dict[str, Any]:
        """Whole-run totals (steps, orders, filled, rejected, blocked, max_drawdown...), exact for the run."""
        summary = self.meta.get("summary")
        if isinstance(summary, dict) and isinstance(summary.get("totals"), dict):
            return dict(summary["totals"])
        return legacy.totals_from_table(self.events())

    def last_event(self) -> dict[str, Any] | None:
        """The newest event as a dict (from meta for our runs: no event file is opened)."""
        summary = self.meta.get("summary")
        if isinstance(summary, dict) and summary.get("last"):
            return dict(summary["last"])
        rows = self.tail(1).to_pylist()
        return rows[-1] if rows else None

    def orders(self) -> list[dict[str, Any]]:
        """Every complete order record; a torn last line (crashed writer) is skipped, bad lines reported."""
        orders, problems = read_orders_checked(self.run_dir / S.ORDERS)
        self._note(problems)
        return orders

    def _note(self, problems: list[str]) -> None:
        self.problems += [p for p in problems if p not in self.problems]

    # -- internals ------------------------------------------------------------------------------------------

    def _tail(self, n: int) -> pa.Table:
        final = self.run_dir / S.EVENTS
        if final.exists():
            return self._parquet_tail(final, n)
        segments = list_segments(self.run_dir / S.SEGMENTS, S.SEGMENT_PREFIX, S.SEGMENT_SUFFIX)
        if segments:
            parts: list[pa.Table] = []
            have = 0
            for path in reversed(segments):
                table = self._segment(path, n - have)
                if table is not None and table.num_rows:
                    parts.insert(0, table)
                    have += table.num_rows
                if have >= n:
                    break
            return pa.concat_tables(parts) if parts else S.EVENT_SCHEMA.empty_table()
        if final.exists():  # compaction finished between the two checks
            return self._parquet_tail(final, n)
        return self._legacy_or_empty()

    def _all(self) -> pa.Table:
        final = self.run_dir / S.EVENTS
        if final.exists():
            return self._normalize(_read_parquet(final), final)
        segments = list_segments(self.run_dir / S.SEGMENTS, S.SEGMENT_PREFIX, S.SEGMENT_SUFFIX)
        tables = [t for t in (self._segment(p) for p in segments) if t is not None]
        if tables:
            return pa.concat_tables(tables)
        if final.exists():
            return self._normalize(_read_parquet(final), final)
        return self._legacy_or_empty()

    def _legacy_or_empty(self) -> pa.Table:
        csv_path = self.run_dir / S.LEGACY_CSV
        if csv_path.exists():
            return self._normalize(_read_csv(csv_path), csv_path)
        return S.EVENT_SCHEMA.empty_table()

    def _parquet_tail(self, path: Path, n: int) -> pa.Table:
        problems: list[str] = []
        table = _parquet_tail(path, n, problems)
        self._note(problems)
        return table

    def _normalize(self, table: pa.Table, source: Path) -> pa.Table:
        problems: list[str] = []
        table = legacy.normalize(table, problems, source)
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


def load_meta(path: Path) -> dict[str, Any]:
    """A run's meta.json with every known field of its type (see `read_meta`)."""
    return read_meta(path)[0]


def read_meta(path: Path) -> tuple[dict[str, Any], list[str]]:
    """meta.json parsed tolerantly plus one line per field treated as missing; `ArtifactError` if unusable."""
    try:
        data = safeio.load_json(Path(path), fix="run `peaktrade runs recover` or remove the run directory")
    except FileNotFoundError:
        raise RunNotFound(f"no run at {Path(path).parent} (meta.json missing)") from None
    return coerce.meta(data, Path(path))


def check_links(run_dir: Path) -> None:
    """`ArtifactError` if a file of the run is a symlink leading out of the run directory (not followed)."""
    base = run_dir.resolve()
    for name in (S.META, S.EVENTS, S.SEGMENTS, S.ORDERS, S.LEGACY_CSV):
        path = run_dir / name
        if path.is_symlink():
            try:
                inside = path.resolve().is_relative_to(base)
            except (OSError, RuntimeError):  # a symlink loop
                inside = False
            if not inside:
                raise ArtifactError(f"{path}: symlink leading out of {run_dir}; not followed, copy the file in")


def _read_parquet(path: Path) -> pa.Table:
    """Open once and parse from the handle: path-based readers race with os.replace."""
    try:
        with safeio.open_regular(path) as fh:
            return pq.read_table(fh)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ArtifactError(f"{path}: unreadable Parquet ({exc}); the file is corrupt") from None


def _parquet_tail(path: Path, n: int, problems: list[str]) -> pa.Table:
    try:
        with safeio.open_regular(path) as fh:
            pf = pq.ParquetFile(fh)
            parts: list[pa.Table] = []
            have = 0
            for rg in range(pf.num_row_groups - 1, -1, -1):
                table = pf.read_row_group(rg)
                parts.insert(0, table)
                have += table.num_rows
                if have >= n:
                    break
            if not parts:
                return S.EVENT_SCHEMA.empty_table()
            return legacy.normalize(pa.concat_tables(parts), problems, path)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ArtifactError(f"{path}: unreadable Parquet ({exc}); the file is corrupt") from None


def _read_csv(path: Path) -> pa.Table:
    import pyarrow.csv as pcsv

    try:
        with safeio.open_regular(path) as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return S.EVENT_SCHEMA.empty_table()
            opts = pcsv.ConvertOptions(strings_can_be_null=False, column_types={"risk_reasons": pa.string()})
            return pcsv.read_csv(fh, convert_options=opts)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ArtifactError(f"{path}: unreadable CSV ({exc}); fix or remove it") from None


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
