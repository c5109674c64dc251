"""Gather the alert snapshot from the artifacts and the health record (the I/O side of the triggers).

Cheap when nothing changed: one meta.json per run (as `site build` reads), one stat of each orders.jsonl, the
registry index, and the health files. Orders are read from where the last run stopped (a byte offset per run).
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from peaktrade import healthlog, registry
from peaktrade.alerts.model import RunFacts, SessionFacts, Snapshot
from peaktrade.artifacts import RunReader, scan_runs
from peaktrade.artifacts import schema as S
from peaktrade.clock import parse_ts
from peaktrade.config import Settings
from peaktrade.errors import ArtifactError
from peaktrade.liveness import heartbeat_age, writer_state
from peaktrade.monitoring import stale_after_seconds

MAX_ORDER_BYTES = 16 * 1024 * 1024  # per run and cron run; the rest is read next time


@dataclass
class Cursor:
    """What the gatherer remembers between cron runs (stored in gate.json)."""

    offsets: dict[str, int]  # run_id -> bytes of orders.jsonl already counted
    day_equity: dict[str, list[Any]]  # run_id -> [UTC day, equity at its start]


def gather(settings: Settings, cursor: Cursor, now: datetime) -> tuple[Snapshot, Cursor]:
    """The snapshot for the triggers at `now`, and the advanced cursor (the caller saves it)."""
    cfg = settings.alerts
    paths = settings.paths
    mon = settings.live_monitoring
    lookback = now - timedelta(hours=cfg.lookback_hours)
    snap = Snapshot(now=now)
    offsets: dict[str, int] = {}
    day_equity: dict[str, list[Any]] = {}
    scan = scan_runs(paths.runs_dir)
    snap.problems += scan.problems
    for entry in scan.runs:
        meta = entry.meta
        status = str(meta.get("status") or "running")
        timeframe = str(meta.get("timeframe") or "1m")
        try:
            stale_seconds = stale_after_seconds(timeframe, mon.stale_after_bars, mon.stale_min_seconds)
        except (KeyError, ValueError):
            stale_seconds = mon.stale_min_seconds
        writer = writer_state(meta, now, stale_seconds)
        ended = parse_ts(meta.get("ended_at")) or parse_ts(meta.get("heartbeat_at")) or entry.started_at
        recent = status == "running" or (ended is not None and ended >= lookback)
        blocked, offsets[entry.run_id] = _new_blocked(entry.path / S.ORDERS, cursor.offsets.get(entry.run_id), recent)
        equity = drawdown = day = day_start = None
        if status == "running":
            try:
                last = RunReader(entry.path).last_event() or {}
            except (ArtifactError, OSError) as exc:
                snap.problems.append(f"{entry.path}: {exc}")
                snap.unknown.add(f"run:{entry.run_id}:")
                last = {}
            equity, drawdown = _float(last.get("equity")), _float(last.get("drawdown"))
            bar = parse_ts(last.get("ts_bar"))
            if bar is not None and equity is not None:
                day = bar.date().isoformat()
                cached = cursor.day_equity.get(entry.run_id)
                if isinstance(cached, list) and len(cached) == 2 and cached[0] == day:
                    day_start = _float(cached[1])
                else:
                    day_start = _day_start_equity(entry.path, meta, bar, snap.problems)
                if day_start is not None:
                    day_equity[entry.run_id] = [day, day_start]
        snap.runs.append(
            RunFacts(
                run_id=entry.run_id,
                session_id=meta.get("session_id") if isinstance(meta.get("session_id"), str) else None,
                mode=str(meta.get("mode") or "?"),
                strategy=str(meta.get("strategy_name") or "?"),
                symbol=str(meta.get("symbol") or "?"),
                status=status,
                writer=writer,
                heartbeat_age=heartbeat_age(meta, now),
                pid=meta.get("pid"),
                host=meta.get("host"),
                error=meta.get("error") if isinstance(meta.get("error"), str) else None,
                equity=equity,
                drawdown=drawdown,
                day=day,
                day_start_equity=day_start,
                blocked=blocked,
            )
        )
    snap.sessions = _sessions(settings, lookback, snap)
    doc, problem = healthlog.latest(paths.state_dir)
    if problem:
        snap.problems.append(problem)
        snap.unknown.add("health:")
    snap.health = doc
    hist = healthlog.history(paths.state_dir)
    snap.problems += hist.problems
    if hist.problems and not hist.results:
        snap.unknown.add("exchange:")
    snap.health_history = hist.results
    return snap, Cursor(offsets, day_equity)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _new_blocked(path: Path, offset: int | None, recent: bool) -> tuple[dict[str, int], int]:
    """Blocked orders per reason code appended to orders.jsonl since `offset`; and the new offset.

    A run seen for the first time that is neither running nor recently ended starts at the end of its file:
    installing alerts must not replay months of old blocked orders.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return {}, 0
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return {}, 0
        size = info.st_size
        if offset is None:
            offset = 0 if recent else size
        if offset > size:  # the file was replaced: start again
            offset = 0
        if offset == size:
            return {}, offset
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, min(size - offset, MAX_ORDER_BYTES))
    except OSError:
        return {}, offset or 0
    finally:
        os.close(fd)
    end = data.rfind(b"\n")
    if end < 0:
        return {}, offset  # only a torn line so far: read it when it is complete
    counts: Counter[str] = Counter()
    from peaktrade.safeio import loads

    for line in data[: end + 1].splitlines():
        try:
            order = loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(order, dict) or order.get("status") != "blocked":
            continue
        reasons = order.get("reasons") if isinstance(order.get("reasons"), list) else []
        codes = {str(r).split(":", 1)[0].strip() for r in reasons if isinstance(r, str)}
        codes = {c for c in codes if c and not c.endswith("_warning")} or {"unspecified"}
        for code in codes:
            counts[code] += 1
    return dict(counts), offset + end + 1


def _day_start_equity(run_dir: Path, meta: dict[str, Any], bar: datetime, problems: list[str]) -> float | None:
    """Equity at the start of the newest bar's UTC day: the last equity before midnight, else the first."""
    import pyarrow as pa
    import pyarrow.compute as pc

    midnight = datetime(bar.year, bar.month, bar.day, tzinfo=UTC)
    try:
        table = RunReader(run_dir).events(["ts_bar", "equity"])
    except (ArtifactError, OSError) as exc:
        problems.append(f"{run_dir}: {exc}")
        return None
    if not table.num_rows:
        return None
    before = table.filter(pc.less(table.column("ts_bar"), pa.scalar(midnight, type=table.schema.field(0).type)))
    source = before if before.num_rows else table
    equity = source.column("equity").drop_null()
    if not len(equity):
        return None
    return _float(equity[len(equity) - 1 if before.num_rows else 0].as_py())


def _sessions(settings: Settings, lookback: datetime, snap: Snapshot) -> list[SessionFacts]:
    """Failed or aborted sessions that ended within the look-back window (older ones were dealt with)."""
    paths = settings.paths
    reg = registry.scan(paths.registry_dir, Path(paths.state_dir) / "registry-index.json")
    snap.problems += reg.problems
    out = []
    cutoff = lookback.timestamp()
    for e in reg.entries:
        if e.get("status") not in ("failed", "aborted"):
            continue
        ended = parse_ts(e.get("finished_at") or e.get("heartbeat_at")) or parse_ts(e.get("started_at"))
        if ended is None or ended.timestamp() < cutoff:
            continue
        error = None
        try:
            record = registry.load_record(Path(paths.registry_dir) / e["_file"])
            error = record.get("error") if isinstance(record.get("error"), str) else None
        except ArtifactError as exc:
            snap.problems.append(str(exc))
        out.append(
            SessionFacts(
                session_id=str(e["session_id"]),
                run_id=e.get("run_id"),
                status=str(e["status"]),
                mode=str(e.get("mode") or "?"),
                strategy=str(e.get("strategy") or "?"),
                symbol=str(e.get("symbol") or "?"),
                ended_at=ended,
                error=error,
            )
        )
    return out
