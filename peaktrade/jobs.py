"""Last run of each cron job (`site-build`, `runs-recover`, `alerts-run`, `ops-health`) in `state/jobs/`.

Each job records how its last run ended, so `ops health` notices a cron that stopped. One JSON file per job,
written atomically; a missing or corrupt file reads as "never ran" and is named in `problems`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade.atomic import write_json
from peaktrade.clock import iso, parse_ts
from peaktrade.errors import ArtifactError
from peaktrade.safeio import load_json

SCHEMA_VERSION = 1
JOBS = ("site-build", "runs-recover", "alerts-run", "ops-health")
_NAME = re.compile(r"^[a-z0-9-]{1,40}$")


def jobs_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "jobs"


def record(
    state_dir: Path, name: str, *, ok: bool, started_at: datetime, finished_at: datetime, detail: str = ""
) -> None:
    """Record one run of job `name`; the last success is kept across failed runs."""
    if not _NAME.match(name):
        raise ValueError(f"bad job name {name!r}")
    directory = jobs_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    previous = _load(directory / f"{name}.json")
    last_ok = iso(finished_at) if ok else (previous or {}).get("last_ok_at")
    write_json(
        directory / f"{name}.json",
        {
            "schema_version": SCHEMA_VERSION,
            "job": name,
            "ok": bool(ok),
            "started_at": iso(started_at),
            "finished_at": iso(finished_at),
            "last_ok_at": last_ok if isinstance(last_ok, str) else None,
            "detail": str(detail)[:500],
        },
        fsync=False,
    )


@dataclass
class JobRun:
    job: str
    ok: bool
    finished_at: datetime | None
    last_ok_at: datetime | None
    detail: str


@dataclass
class JobsView:
    runs: dict[str, JobRun] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def load_all(state_dir: Path) -> JobsView:
    """Every recorded job; unreadable files are named in `problems` (they count as never ran)."""
    out = JobsView()
    directory = jobs_dir(state_dir)
    try:
        paths = sorted(directory.glob("*.json"))
    except OSError:
        return out
    for path in paths:
        data = _load(path)
        if data is None:
            out.problems.append(f"{path}: unreadable job record; it is rewritten by the job's next run")
            continue
        name = path.stem
        out.runs[name] = JobRun(
            job=name,
            ok=data.get("ok") is True,
            finished_at=parse_ts(data.get("finished_at")) if isinstance(data.get("finished_at"), str) else None,
            last_ok_at=parse_ts(data.get("last_ok_at")) if isinstance(data.get("last_ok_at"), str) else None,
            detail=str(data.get("detail") or "")[:500],
        )
    return out


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = load_json(path, 65536)
    except (OSError, ArtifactError):
        return None
    return data if isinstance(data, dict) else None


def record_quietly(state_dir: Path, name: str, ok: bool, started: datetime, detail: str) -> None:
    """`record` for a job's own bookkeeping: a failure to write it (read-only state dir) never fails the job;
    `ops health` then reports the job as late."""
    from peaktrade.clock import utcnow

    try:
        record(state_dir, name, ok=ok, started_at=started, finished_at=utcnow(), detail=detail)
    except OSError:
        pass
