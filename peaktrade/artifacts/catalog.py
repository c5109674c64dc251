"""Find runs under a runs directory: by id (validated, contained), newest first, all with problems listed."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade.artifacts import schema as S
from peaktrade.artifacts.runmeta import check_links, load_meta, read_meta
from peaktrade.artifacts.scancache import ScanCache, stamp
from peaktrade.clock import parse_ts
from peaktrade.errors import ArtifactError, InvalidId, RunNotFound
from peaktrade.ids import ID_PATTERN, safe_join


@dataclass(frozen=True)
class RunEntry:
    run_id: str
    path: Path
    meta: dict[str, Any]
    started_at: datetime | None
    stamp: str | None = None  # stats of the run's files when scanned with a cache (`scancache.stamp`)


@dataclass
class RunScan:
    runs: list[RunEntry] = field(default_factory=list)  # newest first
    problems: list[str] = field(default_factory=list)


def scan_runs(runs_dir: Path, cache: ScanCache | None = None, stamps: dict[str, str | None] | None = None) -> RunScan:
    """Every run directory with a readable meta.json, newest first by start time (ties: run id). With `cache`,
    a run whose files have the stats they had at the last scan is not read again (`artifacts.scancache`);
    `stamps` are those stats when the caller took them already, before this scan."""
    result = RunScan()
    try:
        entries = list(os.scandir(runs_dir))
    except FileNotFoundError:
        return result
    except OSError as exc:  # a file where the directory should be, or no permission: no runs, said once
        why = exc.strerror or type(exc).__name__
        fix = "make it a directory of run directories, or set [paths] runs_dir in the config"
        result.problems.append(f"{runs_dir}: cannot list the runs ({why}); {fix}")
        return result
    base = Path(runs_dir).resolve()
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():  # never followed: a run directory is a real directory inside runs_dir
            if not _inside(Path(entry.path), base):
                result.problems.append(f"{entry.path}: symlink leading out of {runs_dir}; not followed")
            continue
        if not entry.is_dir(follow_symlinks=False):
            continue
        if not ID_PATTERN.match(entry.name):
            result.problems.append(f"{entry.path}: directory name is not a valid run id; skipped")
            continue
        key = None if cache is None else stamps[entry.name] if stamps and entry.name in stamps else stamp(entry.path)
        hit = cache.get(entry.name, key, os.path.join(entry.path, S.META)) if cache is not None else None
        if hit is None:
            meta_path = Path(entry.path) / S.META
            if not meta_path.exists() and not meta_path.is_symlink():
                continue
            try:
                check_links(Path(entry.path))
                meta, problems = read_meta(meta_path)
            except ArtifactError as exc:
                result.problems.append(str(exc))
                continue
            if cache is not None:
                cache.put(entry.name, key, meta, problems)
        else:
            meta, problems = hit
        result.problems += problems
        started = parse_ts(meta.get("started_at"))
        result.runs.append(RunEntry(entry.name, Path(entry.path), meta, started, key))
    result.runs.sort(key=_start_then_id, reverse=True)
    if cache is not None:
        result.problems[:0] = cache.problems  # a damaged cache: said once, first
    return result


def _inside(path: Path, base: Path) -> bool:
    try:
        return path.resolve().is_relative_to(base)
    except (OSError, RuntimeError):  # a symlink loop
        return False


def _start_then_id(entry: RunEntry) -> tuple[float, str]:
    return (entry.started_at.timestamp() if entry.started_at else float("-inf"), entry.run_id)


def latest_run_dir(runs_dir: Path) -> Path | None:
    """The newest run by start time, ties broken by run id; None if there is none."""
    runs = scan_runs(runs_dir).runs
    return runs[0].path if runs else None


def find_run(runs_dir: Path, run_id: str) -> Path:
    """The directory of `run_id` inside `runs_dir`; `RunNotFound` lists close matches."""
    path = safe_join(runs_dir, run_id)
    if (path / S.META).exists():  # a meta.json that is not a file is reported by the reader, not "not found"
        return path
    names = [e.run_id for e in scan_runs(runs_dir).runs]
    close = difflib.get_close_matches(run_id, names, n=3, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else "; list runs with `peaktrade monitor --list`"
    raise RunNotFound(f"no run {run_id!r} in {runs_dir}{hint}")


def run_meta(runs_dir: Path, run_id: str) -> dict[str, Any] | None:
    """The meta.json of `run_id`, or None when the id is unsafe or the run is missing or unreadable."""
    try:
        return load_meta(safe_join(runs_dir, run_id) / S.META)
    except (ArtifactError, InvalidId, OSError):
        return None
