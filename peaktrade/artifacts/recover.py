"""Finalize runs whose writer died: status `aborted`, reason "writer died", events compacted.

Recovery keeps every whole batch on disk (also one the writer appended but was killed before counting in
meta.json), handles a run killed before its first flush (0 rows), and reports the rows meta.json counted that no
readable segment holds any more (a truncated or corrupt sealed segment) instead of dropping them silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from peaktrade.artifacts import legacy
from peaktrade.artifacts import schema as S
from peaktrade.artifacts.catalog import scan_runs
from peaktrade.artifacts.journal import list_segments, read_segment
from peaktrade.artifacts.reader import RunReader, read_orders
from peaktrade.artifacts.runmeta import committed_step
from peaktrade.artifacts.writer import compact, jsonable, remove_segments
from peaktrade.atomic import write_json, write_text
from peaktrade.clock import iso
from peaktrade.errors import ArtifactError
from peaktrade.liveness import DEAD_REASON, RUNNING, writer_state

WRITER_DIED = DEAD_REASON


@dataclass(frozen=True)
class Recovered:
    run_id: str
    rows: int
    orders: int
    lost: int = 0  # rows meta.json had counted that no readable segment holds any more
    damaged: tuple[str, ...] = ()  # segment files that ended in the middle of a batch
    meta: dict[str, Any] | None = None  # the final meta.json


def writer_alive(meta: dict, now: datetime, stale_seconds: float) -> bool:
    """Is the process that writes this run still there? (`liveness.writer_state` is `running`.)"""
    return meta.get("status") == "running" and writer_state(meta, now, stale_seconds) == RUNNING


def recover_run(run_dir: Path, now: datetime) -> Recovered:
    """Compact what the dead writer flushed and mark the run aborted. Idempotent; loses nothing flushed."""
    run_dir = Path(run_dir)
    reader = RunReader(run_dir)
    meta = dict(reader.meta)
    orders_path = run_dir / S.ORDERS
    orders = read_orders(orders_path)
    if orders_path.exists():  # drop a torn last line, keep every complete one
        text = "".join(json.dumps(o, sort_keys=True) + "\n" for o in orders)
        write_text(orders_path, text)
    damaged = _damaged_segments(run_dir)
    rows = compact(run_dir)
    with open(run_dir / S.EVENTS, "rb") as fh:  # every row on disk, not only those meta.json counted
        # no Arrow thread pool (see reader._read_parquet): its teardown at exit can abort the process
        table = legacy.normalize(pq.read_table(fh, use_threads=False, pre_buffer=False))
    totals = legacy.totals_from_table(table)
    last = {k: jsonable(v) for k, v in table.slice(table.num_rows - 1).to_pylist()[0].items()} if rows else {}
    counted = meta.get("rows") if isinstance(meta.get("rows"), int) else 0
    upto = committed_step(meta)
    readable = rows
    if upto is not None and rows:  # of the rows meta.json counted, how many are still there
        readable = int(pc.sum(pc.less_equal(table.column("step"), upto)).as_py() or 0)
    lost = max(0, counted - readable)
    meta.update(
        status="aborted",
        error=WRITER_DIED if not lost else f"{WRITER_DIED}; {lost} counted rows lost in a damaged segment",
        ended_at=meta.get("heartbeat_at") or iso(now),
        rows=rows,
        last_bar_time=last.get("ts_bar"),
        summary={"totals": totals, "last": last},
        recovered_at=iso(now),
    )
    if lost:
        meta["rows_lost"] = lost
    write_json(run_dir / S.META, meta)
    remove_segments(run_dir)
    return Recovered(reader.run_id, rows, len(orders), lost, tuple(damaged), meta)


def _damaged_segments(run_dir: Path) -> list[str]:
    """Sealed segments (all but the newest, whose torn end is a normal crash) that end inside a batch."""
    segments = list_segments(run_dir / S.SEGMENTS, S.SEGMENT_PREFIX, S.SEGMENT_SUFFIX)
    damaged = []
    for path in segments[:-1]:
        try:
            _, good = read_segment(path)
            with open(path, "rb") as fh:
                fh.seek(good)
                rest = fh.read(len(_END_OF_STREAM) + 1)
        except OSError:
            damaged.append(path.name)
            continue
        if rest not in (b"", _END_OF_STREAM):  # a sealed segment ends with its last batch + end-of-stream
            damaged.append(path.name)
    return damaged


_END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # Arrow IPC: continuation marker, zero length


def describe(item: Recovered, run_dir: Path) -> str | None:
    """The problem line for a recovery that lost counted rows (None when nothing was lost)."""
    if not item.lost:
        return None
    where = f" (damaged: {', '.join(item.damaged)})" if item.damaged else ""
    return (
        f"{run_dir}: {item.lost} rows lost{where}: meta.json counted them but no readable segment holds them; "
        f"the {item.rows} readable rows were recovered"
    )


def recover_all(
    runs_dir: Path, now: datetime, stale_seconds: float, *, failed: list[str] | None = None
) -> tuple[list[Recovered], list[str]]:
    """Recover every `running` run whose writer is gone; returns what was done and the problems met.

    `failed`, when given, also receives the lines of runs that could not be recovered (a subset of problems).
    """
    done: list[Recovered] = []
    scan = scan_runs(runs_dir)
    problems = list(scan.problems)
    for entry in scan.runs:
        if entry.meta.get("status") != "running" or "schema_version" not in entry.meta:
            continue
        if writer_alive(entry.meta, now, stale_seconds):
            continue
        try:
            item = recover_run(entry.path, now)
        except (ArtifactError, OSError, pa.ArrowException) as exc:  # one broken run must not stop the others
            problems.append(f"{entry.path}: recover failed: {exc}")
            if failed is not None:
                failed.append(problems[-1])
            continue
        done.append(item)
        lost = describe(item, entry.path)
        if lost:
            problems.append(lost)
    return done, problems
