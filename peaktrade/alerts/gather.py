"""Gather the alert snapshot from the artifacts and the health record (the I/O side of the triggers).

Cheap when nothing changed, which is most cron runs: a finished run whose meta.json has the same size and
mtime as last time cannot raise anything new, so it costs one stat; running runs are read from meta.json
(totals and the last row are kept there by the writer); orders.jsonl is read from where the last run stopped
(a byte offset per run); sessions come from the registry index. pyarrow is only imported for a running run's
day-start equity (once per run and day) and for legacy runs.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from peaktrade import healthlog, registry
from peaktrade.alerts.model import RunFacts, SessionFacts, Snapshot
from peaktrade.clock import parse_ts
from peaktrade.config import Settings
from peaktrade.errors import ArtifactError
from peaktrade.ids import ID_PATTERN
from peaktrade.liveness import heartbeat_age, writer_state
from peaktrade.models import TIMEFRAMES
from peaktrade.safeio import load_json_object, loads

MAX_ORDER_BYTES = 16 * 1024 * 1024  # per run and cron run; the rest is read next time
# File names of a run directory. peaktrade.artifacts.schema owns them (a test keeps these equal); importing it
# loads pyarrow (~0.5 s), too slow for a cron job that usually finds nothing new.
META = "meta.json"
ORDERS = "orders.jsonl"
FINAL = ("completed", "failed", "aborted")


@dataclass
class Cursor:
    """What the gatherer remembers between cron runs (stored in gate.json)."""

    offsets: dict[str, int]  # run_id -> bytes of orders.jsonl already counted
    day_equity: dict[str, list[Any]]  # run_id -> [UTC day, equity at its start]
    runs: dict[str, str] = field(default_factory=dict)  # finished run_id -> "size:mtime_ns" of its meta.json


def gather(settings: Settings, cursor: Cursor, now: datetime) -> tuple[Snapshot, Cursor]:
    """The snapshot for the triggers at `now`, and the advanced cursor (the caller saves it)."""
    cfg = settings.alerts
    paths = settings.paths
    lookback = now - timedelta(hours=cfg.lookback_hours)
    snap = Snapshot(now=now)
    new = Cursor({}, {}, {})
    try:
        entries = sorted(os.scandir(paths.runs_dir), key=lambda e: e.name)
    except FileNotFoundError:
        entries = []
    except OSError as exc:
        snap.problems.append(f"{paths.runs_dir}: cannot list runs ({exc.strerror}); check the directory")
        snap.unknown.add("run:")
        entries = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False) or not ID_PATTERN.match(entry.name):
            continue
        run_id = entry.name
        try:
            st = os.stat(f"{entry.path}/{META}")  # a plain string: this loop runs for every run, every time
        except OSError:
            continue
        sig = f"{st.st_size}:{st.st_mtime_ns}"
        if cursor.runs.get(run_id) == sig:  # finished and unchanged since the last run: nothing new
            new.runs[run_id] = sig
            if run_id in cursor.offsets:
                new.offsets[run_id] = cursor.offsets[run_id]
            continue
        run_dir = Path(entry.path)
        try:
            meta = load_json_object(run_dir / META, fix="run `peaktrade runs recover` or remove the run")
        except (ArtifactError, OSError) as exc:
            snap.problems.append(str(exc))
            snap.unknown.add(f"run:{run_id}:")
            if run_id in cursor.offsets:
                new.offsets[run_id] = cursor.offsets[run_id]
            continue
        facts = _run_facts(run_id, run_dir, meta, cursor, new, now, lookback, settings, snap)
        snap.runs.append(facts)
        if facts.status in FINAL:
            new.runs[run_id] = sig
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
    return snap, new


def _run_facts(
    run_id: str,
    run_dir: Path,
    meta: dict[str, Any],
    cursor: Cursor,
    new: Cursor,
    now: datetime,
    lookback: datetime,
    settings: Settings,
    snap: Snapshot,
) -> RunFacts:
    mon = settings.live_monitoring
    status = str(meta.get("status") or "running")
    # the rule of monitoring.stale_after_seconds: max(N bars, a floor)
    stale_seconds = max(mon.stale_after_bars * TIMEFRAMES.get(str(meta.get("timeframe")), 60), mon.stale_min_seconds)
    writer = writer_state(meta, now, stale_seconds)
    ended = parse_ts(meta.get("ended_at")) or parse_ts(meta.get("heartbeat_at")) or parse_ts(meta.get("started_at"))
    recent = status == "running" or (ended is not None and ended >= lookback)
    blocked, new.offsets[run_id] = _new_blocked(run_dir / ORDERS, cursor.offsets.get(run_id), recent)
    equity = drawdown = day = day_start = None
    if status == "running":
        last = _last_event(run_dir, meta, snap)
        equity, drawdown = _float(last.get("equity")), _float(last.get("drawdown"))
        bar = parse_ts(last.get("ts_bar"))
        if bar is not None and equity is not None:
            day = bar.date().isoformat()
            cached = cursor.day_equity.get(run_id)
            if isinstance(cached, list) and len(cached) == 2 and cached[0] == day:
                day_start = _float(cached[1])
            else:
                day_start = _day_start_equity(run_dir, bar, snap.problems)
            if day_start is not None:
                new.day_equity[run_id] = [day, day_start]
    return RunFacts(
        run_id=run_id,
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


def _last_event(run_dir: Path, meta: dict[str, Any], snap: Snapshot) -> dict[str, Any]:
    """The newest event: from meta.json for our runs; legacy runs need the event file (pyarrow)."""
    summary = meta.get("summary")
    if isinstance(summary, dict) and isinstance(summary.get("last"), dict) and summary["last"]:
        return summary["last"]
    try:
        from peaktrade.artifacts import RunReader

        return RunReader(run_dir).last_event() or {}
    except (ArtifactError, OSError) as exc:
        snap.problems.append(f"{run_dir}: {exc}")
        snap.unknown.add(f"run:{run_dir.name}:")
        return {}


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


def _day_start_equity(run_dir: Path, bar: datetime, problems: list[str]) -> float | None:
    """Equity at the start of the newest bar's UTC day: the last equity before midnight, else the first."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from peaktrade.artifacts import RunReader

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
        ended = _fast_ts(e.get("finished_at") or e.get("heartbeat_at")) or _fast_ts(e.get("started_at"))
        if ended is None or ended.timestamp() < cutoff or not ID_PATTERN.match(str(e.get("session_id"))):
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


def _fast_ts(value: Any) -> datetime | None:
    """parse_ts, with the common case (our own ISO strings) on the C fast path: 10,000 records per run."""
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            return parse_ts(value)
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return parse_ts(value)
