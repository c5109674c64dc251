"""`state/site-manifest.json`: what the last build rendered, the one module that reads and writes it.

A fingerprint per run (the stats of its files, its writer's state, whether its session page exists, its alerts)
and per session page, a digest of what the session lists show, the health badge and more (`site.render`). The
next build re-renders only what changed. A manifest of another generator, template set, output directory or
`[site]` setting, or one whose site is gone, counts as missing; a corrupt one too, and that is said once.

Light on purpose: `site.job` reads it as soon as it has the runs' stats, before the build imports jinja2, to
start the worker for changed run pages early.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peaktrade import coerce, safeio
from peaktrade.atomic import write_bytes
from peaktrade.clock import parse_ts
from peaktrade.config import Settings
from peaktrade.errors import ArtifactError
from peaktrade.site.quiet import code_digest
from peaktrade.templating import template_hash

FILE = "site-manifest.json"
GEN_VERSION = "1"


def path(settings: Settings) -> Path:
    return Path(settings.paths.state_dir) / FILE


def signature(settings: Settings, out: Path) -> dict[str, str]:
    """What every page depends on: a change re-renders all of them. The code is part of it (pages are rendered by
    Python too: badges, numbers, charts), so an upgrade re-renders every page once."""
    return {
        "gen": GEN_VERSION,
        "code": code_digest().hex(),
        "templates": template_hash("site"),
        "out": str(Path(out).resolve()),
        "page_size": str(settings.site.page_size),
        "title": settings.site.title,
        "refresh": str(settings.site.refresh_seconds),
    }


def load(settings: Settings, out: Path) -> tuple[dict | None, str | None]:
    """The last build's manifest, or None (build everything), and a problem line when it was corrupt."""
    file = path(settings)
    try:
        data = safeio.load_json(file)
    except FileNotFoundError:
        return None, None
    except safeio.UnreadableFile as exc:
        return None, f"{exc} (the site manifest); the whole site was rebuilt"
    sound = (
        isinstance(data, dict)
        and isinstance(data.get("signature"), dict)
        and isinstance(data.get("runs"), dict)
        and isinstance(data.get("sessions"), dict)
        and isinstance(data.get("registry"), str)
        and all(coerce.is_id(k) for k in [*data["runs"], *data["sessions"]])  # they name files to remove
    )
    if not sound:
        return None, f"{file}: corrupt site manifest; the whole site was rebuilt"
    if data["signature"] != signature(settings, out) or not (Path(out) / "index.html").exists():
        return None, None
    return data, None


def save(
    settings: Settings,
    out: Path,
    run_fps: dict[str, str],
    session_fps: dict[str, str],
    registry_fp: str,
    **extra: Any,
) -> None:
    file = path(settings)
    file.parent.mkdir(parents=True, exist_ok=True)
    data = {"signature": signature(settings, out), "runs": run_fps, "sessions": session_fps, "registry": registry_fp}
    data.update(extra)  # badge, health_files: a change re-renders what shows them
    try:
        write_bytes(file, json.dumps(data, sort_keys=True).encode(), fsync=False)
    except IsADirectoryError:
        pass  # named by `load`: every build renders every page until it is removed


def run_problems(old: dict[str, Any] | None, run_ids: set[str]) -> dict[str, list[str]]:
    """The problems the last build kept for runs that it found only while rendering their pages (a bad
    `orders.jsonl` line), for the runs of `run_ids`. They hold as long as the run's files are unchanged; a build
    that renders the page again replaces them with what it finds. A malformed entry counts as none."""
    kept = old.get("run_problems") if old is not None else None
    if not isinstance(kept, dict):
        return {}
    return {
        run_id: problems
        for run_id, problems in kept.items()
        if run_id in run_ids and isinstance(problems, list) and problems and all(isinstance(p, str) for p in problems)
    }


def sessions_view(old: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """What the last build kept of all sessions taken together (`save(..., sessions_view=...)`: counts, stats, the
    newest records), if it kept it for `key` (the registry's stats and the runs there, see `site.render`) and
    every part has the shape a build gives it; else None, and the build reads the registry. A record is checked
    field by field again (`coerce.record`), as the file it stands for would be, and must be final."""
    view = old.get("sessions_view") if old is not None else None
    if not isinstance(view, dict) or view.get("key") != key:
        return None
    from peaktrade.status import FINAL  # here: the quiet build, which reads no view, does not import it

    total, by_status, stats, newest, records = (
        view.get(k) for k in ("total", "by_status", "stats", "newest_time", "records")
    )
    if not (
        _count(total)
        and _counts(by_status)
        and sum(by_status.values()) == total
        and _stats(stats)
        and (newest is None or (isinstance(newest, str) and parse_ts(newest) is not None))
        and isinstance(records, list)
        and len(records) <= total
        and all(_final_record(r, FINAL) for r in records)
    ):
        return None
    return view


def _count(value: Any) -> bool:
    return coerce.is_int(value) and value >= 0


def _counts(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and _count(v) for k, v in value.items())


_STATS_KEYS = (
    "total_sessions", "by_mode", "by_status", "realized_pnl_by_mode", "avg_drawdown", "first_started_at",
    "last_started_at",
)  # fmt: skip


def _stats(value: Any) -> bool:
    """The shape of `site.model.stats_json`."""
    return (
        isinstance(value, dict)
        and sorted(value) == sorted(_STATS_KEYS)
        and _count(value["total_sessions"])
        and _counts(value["by_mode"])
        and _counts(value["by_status"])
        and isinstance(value["realized_pnl_by_mode"], dict)
        and all(isinstance(k, str) and coerce.is_number(v) for k, v in value["realized_pnl_by_mode"].items())
        and coerce.is_number(value["avg_drawdown"])
        and all(v is None or (isinstance(v, str) and parse_ts(v) is not None) for v in
                (value["first_started_at"], value["last_started_at"]))
    )  # fmt: skip


def _final_record(value: Any, final: tuple[str, ...]) -> bool:
    try:
        record, problems = coerce.record(value, "session record kept in the site manifest")
    except ArtifactError:
        return False
    return not problems and record == value and record.get("status") in final


def runs_changed(old: dict[str, Any], stamps: dict[str, str | None]) -> bool:
    """Has an entry of the runs directory changed since the build that wrote `old` (by the stats `site.quiet`
    took)? A run's stats are the start of its fingerprint; those of entries that were no run (a stray file, a
    damaged run) are kept apart (`unrendered`), so an unchanged one does not count."""
    built = old["runs"]
    others = old.get("unrendered") if isinstance(old.get("unrendered"), dict) else {}
    for name, key in stamps.items():
        fp = built.get(name)
        if not key:
            continue  # a symlink among the run's files: no stats to compare (the run is read every build)
        if fp is None and others.get(name) != key:
            return True
        if fp is not None and not (isinstance(fp, str) and fp.startswith(key + "|")):
            return True
    return False
