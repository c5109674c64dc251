"""The no-change path of `site build`: when no input changed and nothing on the site depends on the clock, the
build only says it ran.

cron runs `site build` every minute; most minutes of an idle deployment change nothing. A full build that finds
every run and session finished (no heartbeat ages, no stale or dead writers to detect), the same problems as the
build before it and an `ops health` result not yet due to go late, records `state/site-quiet.json`: a signature
of every input (stat of each run's files, each registry record, the alert and health logs, the settings, the
templates and this code) and the time until which the pages stay true. The next build computes the signature
again (stats only: no input is read, no heavy module imported); when it matches, it rewrites only the freshness
stamps (`build-time.js`, which every page's header reads, the generated timestamp in `metrics.prom`, the clock in
`api/health.json` and the status snapshot) and prints the problems the last full build found. Any change,
`--full`, a page deleted or edited, or a corrupt record here means a full build, which removes the record first so
a build killed half-way is never taken as quiet.

This module imports no pyarrow, numpy or jinja2: the quiet path costs interpreter start-up plus ~15k stats.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade import __version__, registry
from peaktrade.artifacts.scancache import NAMES as RUN_FILES
from peaktrade.artifacts.scancache import stamp
from peaktrade.atomic import write_bytes, write_json
from peaktrade.clock import iso
from peaktrade.coerce import strict_json
from peaktrade.config import Settings
from peaktrade.safeio import UnreadableFile, load_json, read_bytes
from peaktrade.site.healthview import badge, ops_summary
from peaktrade.templating import template_dir

FILE = "site-quiet.json"
VERSION = 2
STAMP = "build-time.js"
METRICS = "metrics.prom"
METRICS_MAX_BYTES = 256 * 1024 * 1024  # ~100,000 runs; a larger one is built in full
GENERATED = b"peaktrade_site_generated_timestamp_seconds "
HEALTH = "api/health.json"
SNAPSHOT = "api/live/status/snapshot.json"
# The directories of the files the quiet path rewrites: where a quiet build killed mid-write leaves its temp files.
STAMPED_DIRS = sorted({os.path.dirname(rel) for rel in (STAMP, METRICS, HEALTH, SNAPSHOT)})
STATE_FILES = ("alerts/history.jsonl", "health/latest.json", "health/history.jsonl")
# Caches a full build reads and rewrites (their contents change with every build): only whether each is a directory
# counts. A build replaces anything else there that it cannot read; a directory is a lasting problem, repeated by
# quiet builds, and its removal by hand must end the quiet path.
STATE_CACHES = ("run-scan.json", "run-summaries.json", "registry-index.json", "site-manifest.json")
# What every build writes besides `build-time.js` (`site.render`: the summaries, the session lists, `static/`): one
# deleted or edited by hand is written again by the next build, as it was before there was a quiet path.
SITE_FILES = (
    "index.html",
    "runs/index.html",
    "sessions/index.html",
    "health.html",
    "alerts.html",
    "api/alerts.json",
    "api/health.json",
    "api/health/history.json",
    "api/live/status/snapshot.html",
    "api/live/status/snapshot.json",
    "api/live_sessions.json",
    "api/live_sessions/stats.json",
    "api/runs.json",
    "api/sessions_search.json",
    "static",
)


@dataclass(frozen=True)
class Quiet:
    """What the last full build left: its input signature, until when its pages hold, the problems it found."""

    signature: str
    until: float | None  # epoch seconds; None: no clock-dependent content at all
    problems: list[str]
    site: str  # `site_signature` of the pages it left
    runs: str | None = None  # `runs_digest` of the runs' stats it read


def freshness_limit(refresh_seconds: int) -> int:
    """Seconds after which a page's data counts as stale in the browser: three refresh intervals (cron missed
    two builds), at least three minutes."""
    return max(3 * int(refresh_seconds), 180)


def build_stamp(now: datetime, refresh_seconds: int, health: Mapping[str, Any]) -> bytes:
    """`build-time.js`: when the site was last built, and its health badge; every page's header reads it."""
    stamp = {"built": int(now.timestamp()), "stale_after": freshness_limit(refresh_seconds), "health": badge(health)}
    # ASCII only, and no "<": the file is JavaScript, whatever the text of a problem count or an ops status holds
    text = json.dumps(stamp, ensure_ascii=True, sort_keys=True, separators=(",", ":")).replace("<", "\\u003c")
    return f"window.PEAKTRADE_BUILD={text};\n".encode()


@dataclass(frozen=True)
class Inputs:
    """The signature of a build's inputs, and the stats of each run (`scancache.stamp`: the build's scan uses
    them, so no run is stat'ed twice)."""

    signature: str
    stamps: dict[str, str | None]
    records: registry.Listing | None = None  # the registry's stats, handed to the build's scan likewise

    @property
    def runs(self) -> str:
        return runs_digest(self.stamps)


def runs_digest(stamps: dict[str, str | None]) -> str:
    """A digest of the runs' stats alone: equal to the last full build's, no run changed since."""
    return hashlib.blake2b(repr(sorted(stamps.items())).encode(errors="surrogateescape"), digest_size=16).hexdigest()


def signature(
    settings: Settings, out: Path, on_stamps: Callable[[dict[str, str | None]], Any] | None = None
) -> Inputs:
    """A digest of everything a build reads, from stats alone. Equal digests: the same inputs (an in-place edit
    changes a file's mtime and ctime; a replacement its inode). `on_stamps` is called with the runs' stats as
    soon as they are taken, before the registry's (`site.job` starts a worker there)."""
    h = hashlib.blake2b(digest_size=16)
    p = settings.paths
    _add(h, repr((VERSION, __version__, str(Path(out).resolve()))))
    _add(h, repr((settings.general, settings.paths, settings.site, settings.live_monitoring, settings.health)))
    h.update(code_digest())  # this code: an upgrade (or an edit) rebuilds
    _tree(h, template_dir() / "site", "")
    stamps: dict[str, str | None] = {}
    for entry in _entries(h, p.runs_dir):
        _add(h, f"{entry.name}:{entry.is_symlink()}")
        stamps[entry.name] = key = stamp(entry.path)
        if key is not None:
            _add(h, key)
        else:  # a symlink among the run's files: what it leads to counts
            for name in ("", *RUN_FILES):
                _stat(h, os.path.join(entry.path, name) if name else entry.path)
    if on_stamps is not None:
        on_stamps(stamps)
    try:  # the registry reads a link's target (inside it): the listing has the target's stats, its edits count
        records = registry.listing(p.registry_dir)
    except OSError as exc:
        _add(h, f"{p.registry_dir}:{type(exc).__name__}")
        records = None
    else:
        _add(h, "no registry" if records is None else records.digest)
    for rel in STATE_FILES:
        _stat(h, os.path.join(p.state_dir, rel))
    for name in STATE_CACHES:
        _add(h, f"{name}:{os.path.isdir(os.path.join(p.state_dir, name))}")
    return Inputs(h.hexdigest(), stamps, records)


def site_signature(out: Path) -> str:
    """A digest of the pages every build writes, as they are now: stats, and the body of `metrics.prom` (the
    quiet path rewrites only its last line). Taken after a full build, it shows whether they are still as it
    left them."""
    h = hashlib.blake2b(digest_size=16)
    out = Path(out).resolve()
    for rel in SITE_FILES:
        _stat(h, str(out / rel))
    _tree(h, out / "static", "")
    try:
        metrics = read_bytes(out / METRICS, METRICS_MAX_BYTES)
    except (OSError, UnreadableFile) as exc:
        _add(h, f"{METRICS}:{type(exc).__name__}")
    else:
        h.update(metrics[: metrics.rfind(b"\n" + GENERATED) + 1])
    return h.hexdigest()


def load(state_dir: Path) -> tuple[Quiet | None, str | None]:
    """The record of the last full build, or None (build in full), and a problem line when it was corrupt."""
    path = Path(state_dir) / FILE
    try:
        doc = load_json(path)
    except FileNotFoundError:
        return None, None
    except UnreadableFile as exc:
        return None, f"{exc} (the quiet-build record); the site was built in full"
    if isinstance(doc, dict) and doc.get("version") != VERSION and isinstance(doc.get("version"), int):
        return None, None  # another release's: built in full, then rewritten
    if not (
        isinstance(doc, dict)
        and isinstance(doc.get("signature"), str)
        and (doc.get("until") is None or _finite(doc.get("until")))
        and isinstance(doc.get("problems"), list)
        and all(isinstance(x, str) for x in doc["problems"])
        and isinstance(doc.get("site"), str)
        and isinstance(doc.get("runs"), str | None)
    ):
        return None, f"{path}: corrupt quiet-build record; the site was built in full"
    return Quiet(doc["signature"], doc["until"], doc["problems"], doc["site"], doc.get("runs")), None


def save(state_dir: Path, quiet: Quiet) -> None:
    doc = {
        "version": VERSION,
        "signature": quiet.signature,
        "until": quiet.until,
        "problems": quiet.problems,
        "site": quiet.site,
        "runs": quiet.runs,
    }
    try:
        write_json(Path(state_dir) / FILE, doc, fsync=False)
    except OSError:
        pass  # a directory there (named by `load`) or a read-only state/: every build is a full one


def forget(state_dir: Path) -> None:
    """Before a full build: until it has finished, its inputs are not known to be on the site."""
    try:
        (Path(state_dir) / FILE).unlink(missing_ok=True)
    except IsADirectoryError:
        pass  # no record: `load` names it, `save` cannot write one


def holds(
    settings: Settings, out: Path, now: datetime, on_stamps: Callable[[dict[str, str | None]], Any] | None = None
) -> tuple[Quiet | None, str | None, Inputs | None]:
    """(the last full build's record, None, signature) when the site it left still shows every input as it is
    now; else (None, a problem line when the record was corrupt, the signature when it was computed). With
    `on_stamps` as in `signature`, called only when a run's stats differ from the record's: a quiet build pays
    for nothing more."""
    quiet, problem = load(settings.paths.state_dir)
    if quiet is None or (quiet.until is not None and now.timestamp() >= quiet.until):
        return None, problem, None
    if not (Path(out) / "index.html").is_file() or site_signature(out) != quiet.site:
        return None, None, None
    changed = None if on_stamps is None else lambda stamps: quiet.runs != runs_digest(stamps) and on_stamps(stamps)
    inputs = signature(settings, out, changed)
    return (quiet if inputs.signature == quiet.signature else None), None, inputs


def touch(settings: Settings, out: Path, now: datetime) -> bool:
    """Rewrite the freshness stamps: `build-time.js`, the generated timestamp in `metrics.prom` and the build's
    clock in the JSON API (`server_time` and the `ops health` result's age in `api/health.json`, `generated_at`
    of the status snapshot: read by programs, which run no freshness script). False when one of these files is not
    as a full build left it (then build in full)."""
    out = Path(out)
    try:
        metrics = read_bytes(out / METRICS, METRICS_MAX_BYTES)  # not blocking on a FIFO: the lock is held
        health, snapshot = load_json(out / HEALTH), load_json(out / SNAPSHOT)
    except (OSError, UnreadableFile):
        return False
    at = metrics.rfind(b"\n" + GENERATED)
    if at < 0 or not metrics.endswith(b"\n") or not (isinstance(health, dict) and isinstance(snapshot, dict)):
        return False
    max_age = settings.health.interval_seconds * settings.health.missed_intervals
    health.update(server_time=iso(now), ops_health=ops_summary(health.get("latest"), now, max_age))
    snapshot["generated_at"] = iso(now)
    stamp = GENERATED + f"{now.timestamp():.0f}\n".encode()
    write_bytes(out / METRICS, metrics[: at + 1] + stamp, fsync=False)
    write_bytes(out / HEALTH, json_file(health), fsync=False)
    write_bytes(out / SNAPSHOT, json_file(snapshot), fsync=False)
    write_bytes(out / STAMP, build_stamp(now, settings.site.refresh_seconds, health), fsync=False)
    return True


def json_file(obj: Any) -> bytes:
    """A JSON file of the site. Strict JSON: a browser's JSON.parse rejects NaN and Infinity, so they are written
    as null. Compact: with `indent` json uses its pure-Python encoder, several times slower over 14,000 files
    (browsers indent it)."""
    text = strict_json(obj, separators=(",", ":"), sort_keys=True, default=str, ensure_ascii=False)
    return (text + "\n").encode(errors="backslashreplace")


@functools.cache
def code_digest() -> bytes:
    """A digest of this code as this process first saw it, which is the code it runs: a `site build --loop`
    started before an upgrade does not record the new code as the one its pages were rendered by."""
    h = hashlib.blake2b(digest_size=16)
    _tree(h, Path(__file__).resolve().parents[1], ".py")
    return h.digest()


def _entries(h: Any, directory: Path) -> list[os.DirEntry]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        _add(h, f"{directory}:{type(exc).__name__}")
        return []
    _add(h, f"{directory}:{len(entries)}")
    return entries


def _tree(h: Any, root: Path, suffix: str) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(suffix):
                _stat(h, os.path.join(dirpath, name))


def _stat(h: Any, path: str) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        _add(h, f"{path}:{exc.errno}")
        return
    _add(h, f"{path}:{st.st_mode}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}")


def _add(h: Any, text: str) -> None:
    """Hash `text`; a file name that is not UTF-8 arrives with surrogates, hashed as its original bytes."""
    h.update(text.encode(errors="surrogateescape"))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e18
