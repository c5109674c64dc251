"""Whole-run summaries of runs without our meta.json sidecar (Peak_Trade's events.parquet / events.csv).

Such a run keeps no totals anywhere, so the totals, the last event and a short tail are derived from its event
file in one streaming pass (row batches, never the whole table: a 1M-event file stays far below 150 MB) and
cached by the file's fingerprint (`artifacts.summarycache`):

- in-process (totals, last event and the tail table), so a monitor's later refreshes cost one `stat`;
- in `state/run-summaries.json` (totals and last event), so a site build re-derives only runs whose event file
  changed.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from peaktrade.artifacts import legacy
from peaktrade.artifacts import schema as S
from peaktrade.artifacts.summarycache import TAIL_KEEP, Fingerprint, Summary, fingerprint
from peaktrade.errors import ArtifactError
from peaktrade.safeio import open_regular

_BATCH_ROWS = 16_384  # decoded per step: bigger batches only raise peak memory (measured)


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
