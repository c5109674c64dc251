"""What to show for a run or a session: the recorded status, or the truth when its writer died.

A run's meta.json says `running` and a session's registry record says `started` until the writer finishes. When
the writer was killed, that stays so until `runs recover` finalizes both. Every reader (site, reports, `session
list`, `runs list`, `monitor`) shows the state from here instead, so a dead session is never shown as running:

- runs: `running`, `stale` or `dead` (`liveness.writer_state`; also `stale` when the heartbeat is older than the
  threshold) or the final status;
- sessions: the record's final status; else the run's final status when the run already ended (the record was
  not updated because the session process died); else `stale`/`dead` from the run (or the record) or `started`.

`session_states` is the I/O edge (it reads the meta.json of the runs of active records only); the rest is pure
apart from the pid probe inside `writer_state`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade.liveness import ACTIVE_STATUSES, DEAD, RUNNING, STALE, heartbeat_age, writer_state
from peaktrade.models import TIMEFRAMES

FINAL = ("completed", "failed", "aborted")
NOT_RUNNING = (STALE, DEAD)


def stale_after_seconds(timeframe: Any, bars: int = 3, min_seconds: float = 300.0) -> float:
    """A running run is stale when its heartbeat is older than max(`bars` bars, `min_seconds`) (DESIGN §3)."""
    return max(bars * TIMEFRAMES.get(timeframe if isinstance(timeframe, str) else "", 60), min_seconds)


def run_state(meta: Mapping[str, Any], now: datetime, stale_seconds: float) -> str:
    """`running`, `stale`, `dead` or the run's final status."""
    status = meta.get("status")
    if not isinstance(status, str) or not status:
        status = "completed" if meta.get("ended_at") else RUNNING
    if status not in ACTIVE_STATUSES:
        return status
    state = writer_state({**meta, "status": RUNNING}, now, stale_seconds)
    if state == RUNNING:
        # writer_state trusts a live pid of this very process; a heartbeat this old is stale all the same
        age = heartbeat_age(meta, now)
        if age is None or age > stale_seconds:
            return STALE
    return state


def session_state(
    record: Mapping[str, Any], run_meta: Mapping[str, Any] | None, now: datetime, stale_seconds: float
) -> str:
    """`started`, `stale`, `dead` or a final status for a registry record (`run_meta`: its run's meta.json)."""
    status = record.get("status")
    if isinstance(status, str) and status in FINAL:
        return status
    if run_meta is not None:
        state = run_state(run_meta, now, stale_after_seconds(run_meta.get("timeframe"), 3, stale_seconds))
        return "started" if state == RUNNING else state
    state = writer_state({**record, "status": "started"}, now, stale_seconds)
    return "started" if state == RUNNING else state


def session_states(
    records: Iterable[Mapping[str, Any]], runs_dir: Path, now: datetime, stale_seconds: float
) -> dict[str, str]:
    """session_id -> state for every record; reads the meta.json of the runs of unfinished records only."""
    from peaktrade.artifacts import run_meta

    out: dict[str, str] = {}
    for record in records:
        sid = record.get("session_id")
        if not isinstance(sid, str):
            continue
        meta = None
        if record.get("status") not in FINAL and isinstance(record.get("run_id"), str):
            meta = run_meta(runs_dir, record["run_id"])
        out[sid] = session_state(record, meta, now, stale_seconds)
    return out


def run_states(entries: Iterable[Any], now: datetime, monitoring: Any) -> dict[str, str]:
    """run_id -> state for scanned runs (`RunEntry`s), with the `[live_monitoring]` stale threshold."""
    return {
        e.run_id: run_state(
            e.meta,
            now,
            stale_after_seconds(e.meta.get("timeframe"), monitoring.stale_after_bars, monitoring.stale_min_seconds),
        )
        for e in entries
    }
