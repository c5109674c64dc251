"""Append-only Arrow IPC stream segments that a crash cannot tear and a reader can read at any moment.

A segment is created under a temp name with its schema message, fsynced and renamed, so every visible
segment starts with a whole schema. Batches are appended and flushed; a batch cut short by a crash is simply
not returned by `read_segment`, which stops at the last whole message.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from peaktrade.atomic import fsync_dir
from peaktrade.errors import ArtifactError
from peaktrade.safeio import read_bytes

_READ_ERRORS = (StopIteration, pa.ArrowException, OSError, EOFError, IndexError, ValueError)
_MAX_SEGMENT_BYTES = 1 << 31


class SegmentWriter:
    """One open segment file; `append` writes one record batch and makes it visible to readers."""

    def __init__(self, path: Path, schema: pa.Schema, *, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self.rows = 0
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        self._fh = open(tmp, "wb")
        self._writer = pa.ipc.new_stream(self._fh, schema)
        self._fh.flush()
        if fsync:
            os.fsync(self._fh.fileno())
        os.replace(tmp, self.path)
        if fsync:
            fsync_dir(self.path.parent)

    def append(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.rows += batch.num_rows

    def close(self) -> None:
        """Seal the segment (end-of-stream marker); it never changes again."""
        if self._fh.closed:
            return
        self._writer.close()
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self._fh.close()


def read_segment(path: Path, schema: pa.Schema | None = None) -> tuple[pa.Table | None, int]:
    """All whole batches of a segment (None if not even the schema is there) and the byte offset they end at.

    Opens the file once and parses from that handle, so a concurrent writer can never make it inconsistent.
    """
    batches: list[pa.RecordBatch] = []
    data = read_bytes(Path(path), max_bytes=_MAX_SEGMENT_BYTES)  # never blocks on a FIFO planted as a segment
    buf = pa.py_buffer(data)
    src = pa.BufferReader(buf)
    reader = pa.ipc.MessageReader.open_stream(src)
    try:
        file_schema = pa.ipc.read_schema(reader.read_next_message())
    except _READ_ERRORS:
        return None, 0
    good = src.tell()
    while True:
        try:
            msg = reader.read_next_message()
            batch = pa.ipc.read_record_batch(msg, file_schema)
        except _READ_ERRORS:
            break
        batches.append(batch)
        good = src.tell()
    table = pa.Table.from_batches(batches, schema=file_schema)
    if schema is not None and table.schema != schema:
        try:
            table = table.cast(schema)
        except (pa.ArrowException, ValueError) as exc:
            raise ArtifactError(f"{path}: segment columns do not match the event schema ({exc})") from None
    return table, good


def list_segments(directory: Path, prefix: str, suffix: str) -> list[Path]:
    """Visible segment files, oldest first (names sort by sequence number)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return [directory / n for n in sorted(names) if n.startswith(prefix) and n.endswith(suffix)]
