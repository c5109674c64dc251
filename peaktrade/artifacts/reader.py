"""RunReader: read a run directory at any moment, running or finished, ours or Peak_Trade's.

Snapshot and tail cost O(1) in the run's length: the snapshot comes from meta.json (totals and last row are
kept there by the writer), the tail from the last segment(s) or the last row group(s) of events.parquet.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from peaktrade.artifacts import legacy, summaries
from peaktrade.artifacts import schema as S
from peaktrade.artifacts.journal import list_segments, read_segment
from peaktrade.errors import ArtifactError, RunNotFound

_RETRIES = 5


class RunReader:
    """Read-only view of one run directory. Raises `RunNotFound` if there is no meta.json.

    Runs without our summary in meta.json (Peak_Trade's) get their totals, last event and tail from
    `artifacts.summaries` (derived once per event-file fingerprint); pass the job's `SummaryCache` as
    `summary_cache` to keep them in state/.
    """

    def __init__(
        self,
        run_dir: Path,
        summary_cache: summaries.SummaryCache | None = None,
        meta: dict[str, Any] | None = None,
    ):
        """`meta`: the run's meta.json as a scan just parsed it (saves parsing it twice per build)."""
        self.run_dir = Path(run_dir)
        self._summaries = summary_cache
        self._derived: summaries.Summary | None = None
        if meta is not None:
            self.meta = meta
            self.is_legacy = "schema_version" not in self.meta
            return
        meta_path = self.run_dir / S.META
        if not meta_path.is_file():
            raise RunNotFound(f"no run at {self.run_dir} (meta.json missing)")
        self.meta = load_meta(meta_path)
        self.is_legacy = "schema_version" not in self.meta

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.run_dir.name)

    def tail(self, n: int = 15) -> pa.Table:
        """The last `n` events, oldest first, normalized to `EVENT_SCHEMA`."""
        if n <= 0:
            return S.EVENT_SCHEMA.empty_table()
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
        for _ in range(_RETRIES):
            try:
                return self._all(columns)
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
        rows = self.tail(1).to_pylist()
        return rows[-1] if rows else None

    def orders(self) -> list[dict[str, Any]]:
        """Every complete order record; a torn last line (crashed writer) is skipped."""
        return read_orders(self.run_dir / S.ORDERS)

    # -- internals ------------------------------------------------------------------------------------------

    def _event_file(self) -> Path | None:
        """The one event file of a run without our summary (Peak_Trade's), else None."""
        summary = self.meta.get("summary")
        if isinstance(summary, dict) and isinstance(summary.get("totals"), dict):
            return None
        return summaries.event_file(self.run_dir)

    def _summary(self, need_tail: bool = False) -> summaries.Summary | None:
        if self._derived is not None and (self._derived.tail is not None or not need_tail):
            return self._derived  # one reader is one view: the file is checked once
        path = self._event_file()
        if path is None:
            return None
        cache = self._summaries if self._summaries is not None else summaries.SummaryCache(None)
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
            if n > summaries.TAIL_KEEP:
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
            return _parquet_tail(final, n)
        segments = list_segments(self.run_dir / S.SEGMENTS, S.SEGMENT_PREFIX, S.SEGMENT_SUFFIX)
        if segments:
            parts: list[pa.Table] = []
            have = 0
            for path in reversed(segments):
                table, _ = read_segment(path, S.EVENT_SCHEMA)
                if table is not None and table.num_rows:
                    parts.insert(0, table)
                    have += table.num_rows
                if have >= n:
                    break
            return pa.concat_tables(parts) if parts else S.EVENT_SCHEMA.empty_table()
        if final.exists():  # compaction finished between the two checks
            return _parquet_tail(final, n)
        return self._legacy_or_empty()

    def _all(self, columns: list[str] | None = None) -> pa.Table:
        final = self.run_dir / S.EVENTS
        if final.exists():
            return legacy.normalize(_read_parquet(final, columns), columns)
        segments = list_segments(self.run_dir / S.SEGMENTS, S.SEGMENT_PREFIX, S.SEGMENT_SUFFIX)
        tables = [t for t in (read_segment(p, S.EVENT_SCHEMA)[0] for p in segments) if t is not None]
        if tables:
            table = pa.concat_tables(tables)
            return table.select(columns) if columns else table
        if final.exists():
            return legacy.normalize(_read_parquet(final, columns), columns)
        return self._legacy_or_empty(columns)

    def _legacy_or_empty(self, columns: list[str] | None = None) -> pa.Table:
        csv_path = self.run_dir / S.LEGACY_CSV
        if csv_path.exists():
            return legacy.normalize(_read_csv(csv_path), columns)
        table = S.EVENT_SCHEMA.empty_table()
        return table.select(columns) if columns else table


def load_meta(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc}); run `peaktrade runs recover` or remove it") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Open once and parse from the handle: path-based readers race with os.replace.

    With `columns` (names of `EVENT_SCHEMA`), only the file's columns that can feed them are decoded.
    """
    try:
        with open(path, "rb") as fh:
            pf = pq.ParquetFile(fh)
            if columns is None:
                return pf.read()
            return pf.read(columns=legacy.source_columns(columns, pf.schema_arrow.names))
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ArtifactError(f"{path}: unreadable Parquet ({exc}); the file is corrupt") from None


def _parquet_tail(path: Path, n: int) -> pa.Table:
    try:
        with open(path, "rb") as fh:
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
            return legacy.normalize(pa.concat_tables(parts))
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ArtifactError(f"{path}: unreadable Parquet ({exc}); the file is corrupt") from None


def _read_csv(path: Path) -> pa.Table:
    import pyarrow.csv as pcsv

    if os.path.getsize(path) == 0:
        return S.EVENT_SCHEMA.empty_table()
    try:
        opts = pcsv.ConvertOptions(strings_can_be_null=False, column_types={"risk_reasons": pa.string()})
        with open(path, "rb") as fh:
            return pcsv.read_csv(fh, convert_options=opts)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ArtifactError(f"{path}: unreadable CSV ({exc})") from None


def read_orders(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.split(b"\n")[:-1]:  # the piece after the last newline is incomplete
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(record, dict):
            out.append(record)
    return out
