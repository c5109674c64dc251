"""`peaktrade runs recover`: finalize the runs whose writer died, and their sessions' registry records.

A run is compacted and marked `aborted` ("writer died"); its session's record, still `started`, becomes
`aborted` too, with `finished_at` and the metrics computed from the run's own ledger (its last event and
totals) by the same function a session uses when it ends. Records still `started` whose run already ended (the
session process died after its run was finalized) are brought in line the same way. Each run of the cron form
(all runs, no `--run-id`) is recorded in `state/jobs/runs-recover.json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade import jobs, metrics, registry
from peaktrade.artifacts import find_run, recover_all, recover_run, run_meta, writer_alive
from peaktrade.artifacts.reader import RunReader
from peaktrade.artifacts.recover import Recovered, describe
from peaktrade.clock import utcnow
from peaktrade.config import Settings
from peaktrade.errors import ArtifactError, UsageError
from peaktrade.lock import job_lock
from peaktrade.status import FINAL

JOB = "runs-recover"


@dataclass
class RecoverResult:
    recovered: list[Recovered] = field(default_factory=list)
    sessions: list[tuple[str, Path]] = field(default_factory=list)  # (session id, record) finalized
    problems: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # runs that could not be recovered (exit 1)
    note: str | None = None


def recover(
    settings: Settings,
    *,
    run_id: str | None = None,
    stale_seconds: float | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> RecoverResult:
    """Recover one run (`run_id`) or every run whose writer is gone; raises `LockHeld` if another recover runs."""
    paths = settings.paths
    stale = stale_seconds if stale_seconds is not None else settings.live_monitoring.stale_min_seconds
    started = now or utcnow()
    out = RecoverResult()
    cron = run_id is None  # the cron job's form; a manual `--run-id` recovery is not recorded as the job
    with job_lock(paths.state_dir, JOB):
        try:
            _recover_runs(settings, out, run_id, stale, force, started)
            _finalize_sessions(settings, out, started)
        except BaseException as exc:
            if cron:
                jobs.record_quietly(paths.state_dir, JOB, False, started, f"{type(exc).__name__}: {exc}")
            raise
        detail = f"{len(out.recovered)} runs, {len(out.sessions)} sessions finalized, {len(out.failed)} failed"
        if cron:
            jobs.record_quietly(paths.state_dir, JOB, not out.failed, started, detail)
    return out


def _recover_runs(
    settings: Settings, out: RecoverResult, run_id: str | None, stale: float, force: bool, now: datetime
) -> None:
    runs_dir = settings.paths.runs_dir
    if not run_id:
        out.recovered, out.problems = recover_all(runs_dir, now, stale, failed=out.failed)
        return
    run_dir = find_run(runs_dir, run_id)
    meta = RunReader(run_dir).meta
    if meta.get("status") != "running":
        out.note = f"{run_id}: already {meta.get('status')}; nothing to do"
        return
    if writer_alive(meta, now, stale) and not force:
        raise UsageError(f"{run_id}: its writer (pid {meta.get('pid')}) looks alive; stop it first or use --force")
    item = recover_run(run_dir, now)
    out.recovered.append(item)
    lost = describe(item, run_dir)
    if lost:
        out.problems.append(lost)


def _finalize_sessions(settings: Settings, out: RecoverResult, now: datetime) -> None:
    """Registry records still `started` whose run has ended (just now or earlier) take the run's outcome."""
    paths = settings.paths
    index = Path(paths.state_dir) / "registry-index.json"
    finals = {item.meta.get("run_id"): item.meta for item in out.recovered if item.meta}
    for entry in registry.scan(paths.registry_dir, index).entries:
        run_id = entry.get("run_id")
        if entry.get("status") != "started" or not isinstance(run_id, str):
            continue
        meta = finals.get(run_id) or run_meta(paths.runs_dir, run_id)
        if meta is None or meta.get("status") not in FINAL:
            continue
        try:
            path = registry.finalize(
                paths.registry_dir,
                entry["session_id"],
                status=meta["status"],
                finished_at=meta.get("ended_at") if isinstance(meta.get("ended_at"), str) else None,
                error=meta.get("error") if isinstance(meta.get("error"), str) else None,
                metrics=_run_metrics(meta, settings.session.start_balance),
                index_path=index,
            )
        except (ArtifactError, OSError) as exc:
            out.problems.append(f"{paths.registry_dir / entry['_file']}: could not finalize: {exc}")
            continue
        if path is not None:
            out.sessions.append((entry["session_id"], path))


def _run_metrics(meta: dict[str, Any], default_balance: float) -> dict[str, Any]:
    summary = meta.get("summary") if isinstance(meta.get("summary"), dict) else {}
    totals = summary.get("totals") if isinstance(summary.get("totals"), dict) else {}
    last = summary.get("last") if isinstance(summary.get("last"), dict) else {}
    return metrics.from_run(totals, last, _start_balance(meta, totals, default_balance))


def _start_balance(meta: dict[str, Any], totals: dict[str, Any], default: float) -> float:
    """The balance the session started with: from its config snapshot, else the first equity, else config."""
    snapshot = meta.get("config_snapshot")
    session = snapshot.get("session") if isinstance(snapshot, dict) else None
    value = session.get("start_balance") if isinstance(session, dict) else None
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        value = totals.get("first_equity")
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        value = default
    return float(value)
