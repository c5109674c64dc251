"""Finalize runs whose writer died: status `aborted`, reason "writer died", events compacted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from peaktrade.artifacts import legacy
from peaktrade.artifacts import schema as S
from peaktrade.artifacts.catalog import scan_runs
from peaktrade.artifacts.reader import RunReader, read_orders
from peaktrade.artifacts.writer import compact, jsonable, remove_segments
from peaktrade.atomic import write_json, write_text
from peaktrade.clock import iso
from peaktrade.liveness import RUNNING, writer_state

WRITER_DIED = "writer died"


@dataclass(frozen=True)
class Recovered:
    run_id: str
    rows: int
    orders: int


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
    rows = compact(run_dir)
    table = RunReader(run_dir).events()
    totals = legacy.totals_from_table(table)
    last = {k: jsonable(v) for k, v in (table.slice(max(table.num_rows - 1, 0)).to_pylist() or [{}])[0].items()}
    meta.update(
        status="aborted",
        error=WRITER_DIED,
        ended_at=meta.get("heartbeat_at") or iso(now),
        rows=rows,
        last_bar_time=last.get("ts_bar"),
        summary={"totals": totals, "last": last if table.num_rows else {}},
        recovered_at=iso(now),
    )
    write_json(run_dir / S.META, meta)
    remove_segments(run_dir)
    return Recovered(reader.run_id, rows, len(orders))


def recover_all(runs_dir: Path, now: datetime, stale_seconds: float) -> tuple[list[Recovered], list[str]]:
    """Recover every `running` run whose writer is gone; returns what was done and the problems met."""
    done: list[Recovered] = []
    scan = scan_runs(runs_dir)
    problems = list(scan.problems)
    for entry in scan.runs:
        if entry.meta.get("status") != "running" or "schema_version" not in entry.meta:
            continue
        if writer_alive(entry.meta, now, stale_seconds):
            continue
        try:
            done.append(recover_run(entry.path, now))
        except Exception as exc:  # one broken run must not stop the others
            problems.append(f"{entry.path}: recover failed: {exc}")
    return done, problems
