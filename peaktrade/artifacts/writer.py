"""RunWriter: the one producer of a run directory (meta.json, event segments, orders log, compaction)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from peaktrade import __version__
from peaktrade.artifacts import schema as S
from peaktrade.artifacts.journal import SegmentWriter, list_segments, read_segment
from peaktrade.atomic import fsync_dir, remove_stale_temps, write_json
from peaktrade.clock import iso, to_utc, utcnow
from peaktrade.errors import ArtifactError, WriteFailed
from peaktrade.ids import new_run_id, safe_join, validate_id
from peaktrade.liveness import process_start_ticks
from peaktrade.redact import redact


class RunWriter:
    """Write one run: `append_event` per bar, `append_order` per order, `close` at the end.

    Durability: a flush appends the buffered events to the open segment, the orders to orders.jsonl, then
    rewrites meta.json atomically, so meta never describes rows that are not on disk. Nothing flushed is
    lost if the process is killed; `recover` finalizes such a run later.
    """

    def __init__(
        self,
        run_dir: Path,
        meta: dict[str, Any],
        *,
        flush_rows: int = 50,
        flush_seconds: float = 2.0,
        segment_rows: int = 10_000,
        fsync: bool = True,
    ):
        self.run_dir = Path(run_dir)
        self.meta = meta
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.segment_rows = segment_rows
        self.fsync = fsync
        self._events: list[dict[str, Any]] = []
        self._orders: list[dict[str, Any]] = []
        self._segment: SegmentWriter | None = None
        self._seq = 0
        self._last_flush = time.monotonic()
        self._orders_fh = None
        self._totals = _empty_totals()
        self._last: dict[str, Any] = {}
        self._path_in_progress: Path = self.run_dir
        self.closed = False
        self.failed: WriteFailed | None = None  # set when a write failed: the run can only end `failed` now
        self.flush_seconds_log: list[float] = []  # durations, for benchmarks and diagnostics

    # -- construction ---------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        runs_dir: Path,
        *,
        mode: str,
        strategy_name: str,
        symbol: str,
        timeframe: str,
        strategy_params: Mapping[str, Any] | None = None,
        data_source: str = "",
        session_id: str | None = None,
        config_snapshot: Mapping[str, Any] | None = None,
        notes: str = "",
        tags: Iterable[str] = (),
        run_id: str | None = None,
        started_at: datetime | None = None,
        flush_rows: int = 50,
        flush_seconds: float = 2.0,
        segment_rows: int = 10_000,
        fsync: bool = True,
    ) -> RunWriter:
        """Create `runs_dir/<run_id>/` with a `running` meta.json and return its writer."""
        started = to_utc(started_at) if started_at else utcnow()
        run_id = validate_id(run_id) if run_id else new_run_id(mode, strategy_name, symbol, timeframe, started)
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        run_dir = safe_join(runs_dir, run_id)
        try:
            run_dir.mkdir()
        except FileExistsError:
            raise ArtifactError(f"run directory {run_dir} already exists; pick another --run-id") from None
        meta = {
            "schema_version": S.SCHEMA_VERSION,
            "peaktrade_version": __version__,
            "run_id": run_id,
            "session_id": session_id,
            "mode": mode,
            "strategy_name": strategy_name,
            "strategy_params": dict(strategy_params or {}),
            "symbol": symbol,
            "timeframe": timeframe,
            "data_source": data_source,
            "started_at": iso(started),
            "ended_at": None,
            "status": "running",
            "error": None,
            "heartbeat_at": iso(started),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "pid_start_ticks": process_start_ticks(os.getpid()),
            "rows": 0,
            "last_bar_time": None,
            "config_snapshot": redact(dict(config_snapshot or {})),
            "notes": redact(notes or ""),  # free text may carry a URL with a token
            "tags": redact(list(tags)),
            "summary": {"totals": _empty_totals(), "last": {}},
        }
        writer = cls(
            run_dir,
            meta,
            flush_rows=flush_rows,
            flush_seconds=flush_seconds,
            segment_rows=segment_rows,
            fsync=fsync,
        )
        (run_dir / S.SEGMENTS).mkdir()
        writer._write_meta()
        return writer

    @property
    def run_id(self) -> str:
        return self.meta["run_id"]

    @property
    def rows(self) -> int:
        return self.meta["rows"]

    # -- writing --------------------------------------------------------------------------------------------

    def append_event(self, row: Mapping[str, Any]) -> None:
        """Buffer one event row (keys from `schema.EVENT_COLUMNS`); flushes by row count or elapsed time."""
        self._events.append(dict(row))
        if len(self._events) >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def append_order(self, order: Mapping[str, Any]) -> None:
        """Buffer one order record (ts, side, qty, notional, status, reasons, fill_price, fee...)."""
        self._orders.append(dict(order))

    def flush(self) -> None:
        """Make everything buffered durable and visible: events, then orders, then meta.json.

        A write that fails (disk full, read-only) raises `WriteFailed` naming the file; the writer is then
        broken and `close` only records the failure in meta.json."""
        if self.failed is not None:
            raise self.failed
        try:
            self._flush()
        except OSError as exc:
            self.failed = WriteFailed.of(exc, self._path_in_progress)
            raise self.failed from None

    def _flush(self) -> None:
        started = time.perf_counter()
        if self._events:
            batch = _to_batch(self._events)
            self._path_in_progress = self.run_dir / S.SEGMENTS / S.segment_name(self._seq)
            self._open_segment().append(batch)
            self._account(batch, self._events[-1])
            self._events = []
            if self._segment is not None and self._segment.rows >= self.segment_rows:
                self._segment.close()
                self._segment = None
                self._seq += 1
        if self._orders:
            self._path_in_progress = self.run_dir / S.ORDERS
            self._write_orders(self._orders)
            self._orders = []
        self.meta["heartbeat_at"] = iso(utcnow())
        self._path_in_progress = self.run_dir / S.META
        self._write_meta()
        self._last_flush = time.monotonic()
        self.flush_seconds_log.append(time.perf_counter() - started)

    def heartbeat(self) -> None:
        """Refresh `heartbeat_at` while waiting for the next bar, so the run does not look stale."""
        if self.failed is not None:
            raise self.failed
        self.meta["heartbeat_at"] = iso(utcnow())
        try:
            self._write_meta()
        except OSError as exc:
            self.failed = WriteFailed.of(exc, self.run_dir / S.META)
            raise self.failed from None

    def close(self, status: str = "completed", error: str | None = None) -> None:
        """Flush, seal, compact into events.parquet, write the final meta.json, remove the segments.

        If the disk refuses a write, the run ends `failed` with the one-line reason (see `_close_failed`) and
        `WriteFailed` is raised for the caller to report."""
        if self.closed:
            return
        if status not in S.FINAL_STATUSES:
            raise ValueError(f"final status must be one of {S.FINAL_STATUSES}, got {status!r}")
        try:
            self.flush()
            if self._segment is not None:
                self._segment.close()
                self._segment = None
            if self._orders_fh is not None:
                self._orders_fh.close()
            self._path_in_progress = self.run_dir / S.EVENTS
            compact(self.run_dir, fsync=self.fsync)
            now = iso(utcnow())
            self.meta.update(status=status, error=error, ended_at=now, heartbeat_at=now)
            self._path_in_progress = self.run_dir / S.META
            self._write_meta()
            remove_segments(self.run_dir)
        except (WriteFailed, OSError) as exc:
            failed = exc if isinstance(exc, WriteFailed) else WriteFailed.of(exc, self._path_in_progress)
            self.failed = failed
            self._close_failed(error if status == "failed" and error else str(failed))
            raise failed from None
        self.closed = True

    def _close_failed(self, error: str) -> None:
        """After a failed write: no compaction (the disk said no); record `failed` and the reason in meta.json if
        the disk still takes that small file. The segments written so far stay readable and recoverable."""
        self.closed = True
        for fh in (self._segment, self._orders_fh):
            try:
                if fh is not None:
                    fh.close()
            except (OSError, ValueError, pa.ArrowException):
                pass  # the file is what failed; its whole batches are on disk already
        now = iso(utcnow())
        self.meta.update(status="failed", error=error, ended_at=now, heartbeat_at=now)
        try:
            self._write_meta()
        except OSError:
            pass  # nowhere left to write: the caller reports the error line (registry, exit code)

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.closed:
            return
        if exc_type is None:
            self.close("completed")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close("aborted", "KeyboardInterrupt")
        else:
            self.close("failed", f"{exc_type.__name__}: {exc}")

    # -- internals ------------------------------------------------------------------------------------------

    def _open_segment(self) -> SegmentWriter:
        if self._segment is None:
            seg_dir = self.run_dir / S.SEGMENTS
            self._segment = SegmentWriter(seg_dir / S.segment_name(self._seq), S.EVENT_SCHEMA, fsync=self.fsync)
        return self._segment

    def _account(self, batch: pa.RecordBatch, last: dict[str, Any]) -> None:
        t = self._totals
        t["steps"] += batch.num_rows
        for key, column in (
            ("orders", "orders_generated"),
            ("filled", "orders_filled"),
            ("rejected", "orders_rejected"),
            ("blocked", "orders_blocked"),
            ("signal_changes", "signal_changed"),
        ):
            t[key] += int(pc.sum(batch.column(column)).as_py() or 0)
        dd = pc.max(batch.column("drawdown")).as_py()
        if dd is not None and dd > t["max_drawdown"]:
            t["max_drawdown"] = dd
        if t["first_equity"] is None:
            equity = batch.column("equity").drop_null()
            if len(equity):
                t["first_equity"] = equity[0].as_py()
        self._last = {k: jsonable(last.get(k)) for k in S.EVENT_COLUMNS}
        self.meta["rows"] = t["steps"]
        self.meta["last_bar_time"] = self._last.get("ts_bar")
        self.meta["summary"] = {"totals": dict(t), "last": self._last}

    def _write_orders(self, orders: list[dict[str, Any]]) -> None:
        if self._orders_fh is None:
            path = self.run_dir / S.ORDERS
            self._orders_fh = open(path, "a", encoding="utf-8")
            if self.fsync:
                fsync_dir(self.run_dir)
        lines = "".join(json.dumps({k: jsonable(v) for k, v in o.items()}, sort_keys=True) + "\n" for o in orders)
        self._orders_fh.write(lines)
        self._orders_fh.flush()
        if self.fsync:
            os.fsync(self._orders_fh.fileno())

    def _write_meta(self) -> None:
        write_json(self.run_dir / S.META, self.meta, fsync=self.fsync)


def _to_batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """Rows -> one record batch. Rows with exactly the schema's keys in its order (as the engine makes them)
    are transposed column-wise, several times faster than row-wise conversion; anything else goes row-wise."""
    names = S.EVENT_COLUMNS
    n = len(names)
    if all(len(r) == n for r in rows) and tuple(rows[0]) == names and tuple(rows[-1]) == names:
        columns = list(zip(*(r.values() for r in rows)))
        try:
            # Timestamps: inferring then casting is ~10x faster than converting to a tz-aware type directly.
            arrays = [
                pa.array(col).cast(f.type, safe=False)
                if pa.types.is_timestamp(f.type)
                else pa.array(col, type=f.type)
                for col, f in zip(columns, S.EVENT_SCHEMA)
            ]
            return pa.RecordBatch.from_arrays(arrays, schema=S.EVENT_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # e.g. a key order that differs in a middle row: fall back
    return pa.RecordBatch.from_pylist(rows, schema=S.EVENT_SCHEMA)


def _empty_totals() -> dict[str, Any]:
    return {
        "steps": 0,
        "orders": 0,
        "filled": 0,
        "rejected": 0,
        "blocked": 0,
        "signal_changes": 0,
        "max_drawdown": 0.0,
        "first_equity": None,
    }


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return value


def compact(run_dir: Path, *, fsync: bool = True) -> int:
    """Merge every readable segment into events.parquet (zstd, 64k-row groups); returns the row count.

    Idempotent and crash-safe: events.parquet appears atomically; segments are removed only afterwards.
    """
    run_dir = Path(run_dir)
    seg_dir = run_dir / S.SEGMENTS
    final = run_dir / S.EVENTS
    segments = list_segments(seg_dir, S.SEGMENT_PREFIX, S.SEGMENT_SUFFIX)
    if not segments and final.exists():
        return pq.ParquetFile(final).metadata.num_rows
    # Stream segment by segment into row groups of <= 64k rows: memory stays bounded at any run length.
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        with pq.ParquetWriter(tmp, S.EVENT_SCHEMA, compression="zstd") as out:
            pending: list[pa.Table] = []
            pending_rows = 0
            for path in segments:
                table, _ = read_segment(path, S.EVENT_SCHEMA)
                if table is None or not table.num_rows:
                    continue
                pending.append(table)
                pending_rows += table.num_rows
                while pending_rows >= S.ROW_GROUP_ROWS:
                    merged = pa.concat_tables(pending)
                    out.write_table(merged.slice(0, S.ROW_GROUP_ROWS), row_group_size=S.ROW_GROUP_ROWS)
                    rest = merged.slice(S.ROW_GROUP_ROWS)
                    pending, pending_rows = [rest], rest.num_rows
            if pending_rows:
                out.write_table(pa.concat_tables(pending), row_group_size=S.ROW_GROUP_ROWS)
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, final)
        if fsync:
            fsync_dir(run_dir)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return pq.ParquetFile(final).metadata.num_rows


def remove_segments(run_dir: Path) -> None:
    seg_dir = Path(run_dir) / S.SEGMENTS
    if seg_dir.is_dir():
        shutil.rmtree(seg_dir)
    remove_stale_temps(Path(run_dir))
