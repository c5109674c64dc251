"""A run's `meta.json`: read it tolerantly, check the run's files for symlinks leading out, and what it says
without opening an event file. Free of pyarrow: a site build's gather and the quiet build need only this.

meta.json is the commit point (see `artifacts.reader`): its `summary` holds the run's totals and its newest
event, written by our writer after the events they count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peaktrade import coerce, safeio
from peaktrade.artifacts import schema as S
from peaktrade.artifacts.summarycache import SummaryCache, event_file, stamped_event_file
from peaktrade.errors import ArtifactError, RunNotFound


def load_meta(path: Path) -> dict[str, Any]:
    """A run's meta.json with every known field of its type (see `read_meta`)."""
    return read_meta(path)[0]


def read_meta(path: Path) -> tuple[dict[str, Any], list[str]]:
    """meta.json parsed tolerantly plus one line per field treated as missing; `ArtifactError` if unusable."""
    try:
        data = safeio.load_json(Path(path), fix="run `peaktrade runs recover` or remove the run directory")
    except FileNotFoundError:
        raise RunNotFound(f"no run at {Path(path).parent} (meta.json missing)") from None
    return coerce.meta(data, Path(path))


def committed_step(meta: dict[str, Any]) -> int | None:
    """The step of the newest event meta.json counts (-1: none yet); None when meta keeps no commit point
    (runs written by the original system: everything on disk counts)."""
    if "schema_version" not in meta:
        return None
    summary = meta.get("summary")
    last = summary.get("last") if isinstance(summary, dict) else None
    step = last.get("step") if isinstance(last, dict) else None
    if isinstance(step, int) and not isinstance(step, bool):
        return step
    rows = meta.get("rows")
    if rows == 0:
        return -1
    return None


def check_links(run_dir: Path) -> None:
    """`ArtifactError` if a file of the run is a symlink leading out of the run directory (not followed)."""
    for name in (S.META, S.EVENTS, S.SEGMENTS, S.ORDERS, S.LEGACY_CSV):
        path = run_dir / name
        if path.is_symlink():  # rare: resolving costs a syscall per path component, so only then
            try:
                inside = path.resolve().is_relative_to(run_dir.resolve())
            except (OSError, RuntimeError):  # a symlink loop
                inside = False
            if not inside:
                raise ArtifactError(f"{path}: symlink leading out of {run_dir}; not followed, copy the file in")


def glance(
    run_dir: Path, meta: dict[str, Any], cache: SummaryCache, stamp: str | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None, list[str]]:
    """The run's totals, its newest event and the problems met, as `RunReader(run_dir, meta)` gives them, opening
    no event file when meta.json holds both (ours; or says no event is committed yet) or `cache` holds a summary
    of the event file as it is now (Peak_Trade's). Otherwise (a changed event file, a run without either) a
    reader reads the events.

    Raises `ArtifactError` (a symlink leading out, an unreadable event file), as the reader would. One
    difference: for a run with no event committed, the reader would read (and clip) every uncommitted event, and
    report damage it met there; here that damage is reported once, by the build that renders the run's page.

    `stamp`: the run's `scancache.stamp`, taken by this job; the event file and its fingerprint are then those its
    stats show (it held no symlink), and no file is stat'ed again. A file swapped since (for a symlink, or a new
    file) is seen by the next build, whose stamp differs: on a cache hit no file of the run is opened here, as for
    runs in our format; a reader checks every link before it opens one."""
    summary = meta.get("summary")
    ours = isinstance(summary, dict) and isinstance(summary.get("totals"), dict)
    if ours and summary.get("last"):
        return dict(summary["totals"]), dict(summary["last"]), []
    if ours and committed_step(meta) == -1:
        return dict(summary["totals"]), None, []  # no event committed yet: a reader would clip every one it read
    if ours:
        path, fp = None, None
    elif stamp is not None:
        path, fp = stamped_event_file(run_dir, stamp) or (None, None)
    else:
        path, fp = event_file(run_dir), None
    if path is not None:
        if stamp is None:
            check_links(run_dir)
        kept = cache.kept(run_dir, path, fp)
        if kept is not None:
            return dict(kept.totals), dict(kept.last) if kept.last else None, []
    from peaktrade.artifacts.reader import RunReader  # pyarrow: only for runs whose events must be read

    reader = RunReader(run_dir, meta, summary_cache=cache)
    return reader.totals(), reader.last_event(), reader.problems
