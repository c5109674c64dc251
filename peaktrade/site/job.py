"""`peaktrade site build` as a cron job: the lock, the job record, leftovers of a killed build, and the choice
between the quiet path (nothing changed: `site.quiet`) and a build (`site.render`).

Kept free of heavy imports: a build that finds nothing changed never imports pyarrow, numpy or jinja2.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from peaktrade import jobs, safeio
from peaktrade.clock import utcnow
from peaktrade.config import Settings
from peaktrade.errors import LockHeld
from peaktrade.lock import job_lock
from peaktrade.site import manifest, quiet
from peaktrade.site.workers import EARLY_MODULES, remove_temps, start

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

JOB = "site-build"
# The temp files of the state files a build writes (`site.render`: the manifest, the scan and summary caches)
STATE_TEMPS = (".site-manifest.json.", ".run-scan.json.", ".run-summaries.json.")
CLEAN = "site-build.finished"  # in state/: the site directory of the last build, which finished (left no temps)


@dataclass
class BuildResult:
    out_dir: Path
    written: int
    rendered_runs: int
    rendered_sessions: int
    problems: list[str]
    seconds: float
    workers: int = 1  # processes that rendered the run and session pages
    unchanged: bool = False  # the quiet path: no input changed, only the freshness stamps were rewritten
    # Set by a full build when the next may take the quiet path if no input changes (see site.quiet): nothing it
    # rendered depends on the clock before `settled_until` (epoch; None: not at all).
    settled: bool = False
    settled_until: float | None = None


def build_now() -> datetime:
    """The build clock: $SOURCE_DATE_EPOCH when set (reproducible builds, golden tests), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else utcnow()


def build(
    settings: Settings, *, out_dir: Path | None = None, full: bool = False, now: datetime | None = None
) -> BuildResult:
    """Build the site once; raises `LockHeld` (exit 75) if another build holds the lock."""
    state_dir = Path(settings.paths.state_dir)
    started = utcnow()
    now = now or build_now()
    try:
        with job_lock(state_dir, JOB):
            out = Path(out_dir or settings.paths.site_dir)
            t = time.perf_counter()
            early = _Early(settings, out)
            try:
                last, problem, inputs = (None, None, None) if full else quiet.holds(settings, out, now, early.start)
                result = _quiet(settings, out, now, last, t) if last is not None else None
                if result is None:
                    result = _render(settings, out, full, now, [problem] if problem else [], inputs, early)
            finally:
                early.close()
    except LockHeld:
        raise  # another build is running: it records its own outcome
    except BaseException as exc:
        jobs.record_quietly(state_dir, JOB, False, started, f"{type(exc).__name__}: {exc}")
        raise
    detail = "nothing changed" if result.unchanged else f"{result.written} files written"
    jobs.record_quietly(state_dir, JOB, True, started, f"{detail}, {len(result.problems)} problems")
    return result


def _quiet(settings: Settings, out: Path, now: datetime, last: quiet.Quiet, t: float) -> BuildResult | None:
    _remove_stamp_temps(out)  # the stamps' own, if a quiet build was killed while writing them
    remove_temps(settings.paths.state_dir, prefix=f".{quiet.FILE}.")  # and the record's
    if not quiet.touch(settings, out, now):
        return None
    quiet.save(settings.paths.state_dir, replace(last, site=quiet.site_signature(out)))  # the stamps it rewrote
    return BuildResult(out, 4, 0, 0, list(last.problems), time.perf_counter() - t, unchanged=True)


class _Early:
    """The worker for the pages of changed runs (`site.render`), started as soon as the runs' stats show one
    changed since the last build: it imports pyarrow while the stats of 10,000 records are taken and this
    process imports the build."""

    def __init__(self, settings: Settings, out: Path):
        self.settings, self.out = settings, out
        self.pool: ProcessPoolExecutor | None = None
        self.last: tuple[dict | None, str | None] | None = None  # the last build's manifest, as read here
        self.failed = False  # no worker can start on this host: the build renders in its own process

    def start(self, stamps: dict[str, str | None]) -> None:
        self.last = manifest.load(self.settings, self.out)
        old = self.last[0]
        if self.pool is None and not self.failed and old is not None and manifest.runs_changed(old, stamps):
            self.pool = start(1, EARLY_MODULES)
            self.failed = self.pool is None

    def close(self) -> None:
        if self.pool is not None:  # the build shut it down when done; a quiet build never used it
            self.pool.shutdown(wait=False, cancel_futures=True)


def _render(
    settings: Settings,
    out: Path,
    full: bool,
    now: datetime,
    problems: list[str],
    inputs: quiet.Inputs | None,
    early: _Early,
) -> BuildResult:
    from peaktrade.site.render import Build

    state_dir = Path(settings.paths.state_dir)
    quiet.forget(state_dir)  # until this build has finished, its inputs are not on the site
    if inputs is None:  # before reading anything: a change during the build is seen by the next one
        inputs = quiet.signature(settings, out, None if full else early.start)
    # Temp files are left only by a build that did not finish (killed): then look for them in every directory.
    clean = state_dir / CLEAN
    finished = _consume(clean) == str(out.resolve())
    if finished:  # a quiet build does not clear the marker: a killed one left temp files only beside the stamps
        removed = _remove_stamp_temps(out)
    else:
        removed = remove_temps(out) + remove_temps(state_dir, prefix=STATE_TEMPS)
    removed += remove_temps(state_dir, prefix=f".{quiet.FILE}.")  # a quiet build saves it too: one listdir
    build = Build(
        settings, out, full, now, problems, inputs.stamps, inputs.records, early.pool, early.last, early.failed
    )
    early.pool = None  # the build's now: it shuts it down
    result = build.run()
    if result.settled:
        site = quiet.site_signature(out)  # as this build left the pages
        record = quiet.Quiet(inputs.signature, result.settled_until, list(result.problems), site, inputs.runs)
        quiet.save(state_dir, record)
    try:
        clean.write_text(str(out.resolve()))
    except OSError:
        pass  # the next build looks for temp files in every directory, as after a killed one
    if removed:
        result.problems.insert(0, f"{out}: removed {removed} temp file(s) an interrupted build left")
    return result


def _remove_stamp_temps(out: Path) -> int:
    return sum(remove_temps(out / rel, prefix=".") for rel in quiet.STAMPED_DIRS)


def _consume(path: Path) -> str | None:
    """Remove the marker `path`; its text if it was a readable file (anything odd there counts as absent)."""
    try:
        text = safeio.read_bytes(path, 4096).decode(errors="replace")
    except (FileNotFoundError, safeio.UnreadableFile):
        text = None
    try:
        path.unlink()
    except OSError:  # absent, or not a file: a build that cannot clear it looks for temp files every time
        pass
    return text
