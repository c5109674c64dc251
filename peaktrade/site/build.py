"""`peaktrade site build`: gather inputs, render what changed, write every file atomically, leaves first.

Incremental: a manifest in the state directory keeps a fingerprint per run (stat of its files plus its stale
flag) and per session record (size, mtime); pages whose inputs did not change are not re-rendered. The small
pages that summarize everything (Live-Track, runs list, JSON lists, health, metrics) are rendered every build.
Write order: run and session pages and their JSON first, then lists, `index.html` last, so a page never links
to one that does not exist yet. Each file appears atomically (temp file + rename).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from peaktrade import registry, views
from peaktrade.artifacts import RunReader, scan_runs
from peaktrade.artifacts import schema as S
from peaktrade.artifacts.summaries import SummaryCache
from peaktrade.atomic import write_bytes
from peaktrade.charts import line_chart
from peaktrade.clock import utcnow
from peaktrade.config import Settings
from peaktrade.errors import ArtifactError
from peaktrade.ids import ID_PATTERN, slug
from peaktrade.lock import job_lock
from peaktrade.site import model
from peaktrade.templating import environment, template_hash

GEN_VERSION = "1"
TABLE_ROWS = 25
API_SESSIONS = 100
TAIL_ROWS = 50
TIMELINE_ORDERS = 200
NAV = (
    ("index.html", "Live-Track", "index"),
    ("sessions/index.html", "Sessions", "sessions"),
    ("runs/index.html", "Runs", "runs"),
    ("health.html", "Health", "health"),
    ("api/live/status/snapshot.html", "Status", "status"),
)


@dataclass
class BuildResult:
    out_dir: Path
    written: int
    rendered_runs: int
    rendered_sessions: int
    problems: list[str]
    seconds: float


def build_now() -> datetime:
    """The build clock: $SOURCE_DATE_EPOCH when set (reproducible builds, golden tests), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else utcnow()


def build(
    settings: Settings, *, out_dir: Path | None = None, full: bool = False, now: datetime | None = None
) -> BuildResult:
    """Build the site once; raises `LockHeld` (exit 75) if another build holds the lock."""
    with job_lock(settings.paths.state_dir, "site-build"):
        return _Build(settings, Path(out_dir or settings.paths.site_dir), full, now or build_now()).run()


class _Build:
    def __init__(self, settings: Settings, out: Path, full: bool, now: datetime):
        self.cfg = settings
        self.out = out
        self.now = now
        self.env = environment("site")
        self.written = 0
        self.manifest_path = Path(settings.paths.state_dir) / "site-manifest.json"
        self.full = full
        self.late_problems: list[str] = []  # met while rendering leaves (possibly in worker processes)
        # Totals of runs in the original format, derived once per event-file fingerprint (state/).
        self.summaries = SummaryCache(settings.paths.state_dir)

    def _write_leaves(self, runs: list[model.RunInfo], sessions: list[dict], run_ids: set[str]) -> None:
        """Run and session pages: independent files, so they are spread over the CPU cores when many."""
        workers = min(os.cpu_count() or 1, 4)
        if workers < 2 or len(runs) * 10 + len(sessions) < 1000:
            _render_leaves(self, runs, sessions, run_ids)
            return
        from concurrent.futures import ProcessPoolExecutor

        chunks = [(runs[i::workers], sessions[i::workers]) for i in range(workers)]
        with ProcessPoolExecutor(workers) as pool:
            futures = [
                pool.submit(_leaf_worker, self.cfg, self.out, self.now, self.base, r, s, run_ids) for r, s in chunks
            ]
            for future in futures:
                written, problems = future.result()
                self.written += written
                self.late_problems += problems

    # -- orchestration --------------------------------------------------------------------------------------

    def run(self) -> BuildResult:
        started = time.perf_counter()
        old = self._load_manifest()
        if old is None:
            self.full = True
        self.out.mkdir(parents=True, exist_ok=True)
        inp, run_fps, session_fps = self._gather()
        health = model.health(inp)
        self.base = dict(
            site_title=inp.title,
            nav=NAV,
            health=health,
            generated_at=inp.now,
            data_time=model.newest_data_time(inp),
            labels=views.STATUS_LABELS,
        )
        data_time = self.base["data_time"]
        self.base["data_age"] = views.age_text((inp.now - data_time).total_seconds()) if data_time else "-"
        changed_runs = [r for r in inp.runs if self.full or old["runs"].get(r.run_id) != r.fingerprint]
        changed_sessions = [
            e
            for e in inp.sessions
            if self.full or old["sessions"].get(e["session_id"]) != session_fps[e["session_id"]]
        ]
        run_ids = {r.run_id for r in inp.runs}
        self._write_leaves(changed_runs, changed_sessions, run_ids)
        inp.problems += self.late_problems
        health["problems"] = list(inp.problems)
        if health["problems"]:
            health["status"] = "degraded"
        registry_fp = str(sorted(session_fps.items()))
        if self.full or old.get("registry") != registry_fp:
            self._write_session_lists(inp)
        self._write_summaries(inp, health)
        self._remove_gone(old, run_fps, session_fps)
        self._save_manifest(run_fps, session_fps, registry_fp)
        self.summaries.forget_missing({str(e.path.absolute()) for e in self._scanned})
        self.summaries.save()
        return BuildResult(
            self.out,
            self.written,
            len(changed_runs),
            len(changed_sessions),
            inp.problems,
            time.perf_counter() - started,
        )

    # -- inputs ---------------------------------------------------------------------------------------------

    def _gather(self) -> tuple[model.SiteInput, dict[str, str], dict[str, str]]:
        cfg = self.cfg
        mon = cfg.live_monitoring
        problems: list[str] = list(self.summaries.problems)
        reg = registry.scan(cfg.paths.registry_dir, Path(cfg.paths.state_dir) / "registry-index.json")
        problems += reg.problems
        sessions = [e for e in reg.entries if ID_PATTERN.match(e.get("session_id") or "")]
        problems += [
            f"session id {e.get('session_id')!r} in {e['_file']} is not a safe id; skipped"
            for e in reg.entries
            if not ID_PATTERN.match(e.get("session_id") or "")
        ]
        scan = scan_runs(cfg.paths.runs_dir)
        self._scanned = scan.runs
        problems += scan.problems
        runs = []
        for entry in scan.runs:
            try:
                reader = RunReader(entry.path, self.summaries, meta=entry.meta)
                meta = dict(reader.meta)
                meta["run_id"] = entry.run_id
                snap = model.run_snapshot(
                    meta, reader.totals(), reader.last_event(), self.now, mon.stale_after_bars, mon.stale_min_seconds
                )
            except (ArtifactError, OSError) as exc:
                problems.append(f"{entry.path}: {exc}")
                continue
            runs.append(model.RunInfo(entry.run_id, meta, snap, _fingerprint(entry.path, snap.stale)))
        session_fps = {e["session_id"]: f"{e['_size']}:{e['_mtime']}" for e in sessions}
        inp = model.SiteInput(
            now=self.now,
            title=cfg.site.title,
            refresh_seconds=cfg.site.refresh_seconds,
            page_size=cfg.site.page_size,
            currency=cfg.general.base_currency,
            sessions=sessions,
            records={},
            runs=runs,
            problems=problems,
        )
        return inp, {r.run_id: r.fingerprint for r in runs}, session_fps

    def _record(self, inp: model.SiteInput | None, entry: dict[str, Any]) -> dict[str, Any] | None:
        sid = entry["session_id"]
        cache = inp.records if inp is not None else {}
        if sid not in cache:
            try:
                cache[sid] = registry.load_record(Path(self.cfg.paths.registry_dir) / entry["_file"])
            except ArtifactError as exc:
                self.late_problems.append(str(exc))
                return None
        return cache[sid]

    # -- pages ----------------------------------------------------------------------------------------------

    def _page(self, rel: str, template: str, refresh: bool, **ctx: Any) -> None:
        depth = rel.count("/")
        html_text = self.env.get_template(template).render(
            **self.base,
            root="../" * depth,
            refresh=self.cfg.site.refresh_seconds if refresh else None,
            active=ctx.pop("active", ""),
            **ctx,
        )
        self._write(rel, html_text.encode())

    def _json(self, rel: str, obj: Any) -> None:
        self._write(rel, (json.dumps(obj, indent=2, sort_keys=True, default=str, ensure_ascii=False) + "\n").encode())

    def _write(self, rel: str, data: bytes) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, data, fsync=False)
        self.written += 1

    def _write_run(self, info: model.RunInfo) -> None:
        run_dir = Path(self.cfg.paths.runs_dir) / info.run_id
        s = info.snapshot
        try:
            reader = RunReader(run_dir, self.summaries)
            series = reader.events(["ts_bar", "equity", "drawdown", "position_size"])
            tail = reader.tail(TAIL_ROWS).to_pylist()
            orders = reader.orders()
            totals = reader.totals()
        except (ArtifactError, OSError) as exc:
            self.late_problems.append(f"{run_dir}: {exc}")
            return
        times = _numbers(series.column("ts_bar").cast(pa.int64()))
        charts = "".join(
            [
                line_chart(
                    times, _numbers(series.column("equity")), title=f"Equity ({self.cfg.general.base_currency})"
                ),
                line_chart(times, _numbers(series.column("drawdown")), title="Drawdown", percent=True, colour="#c33"),
                line_chart(
                    times, _numbers(series.column("position_size")), title="Position (base units)", colour="#36c"
                ),
            ]
        )
        age = views.age_text(s.heartbeat_age_seconds)
        self._json(f"api/runs/{info.run_id}/snapshot.json", model.run_snapshot_json(s))
        self._json(f"api/runs/{info.run_id}/tail.json", model.tail_json(tail))
        session_id = info.meta.get("session_id")
        self._page(
            f"runs/{info.run_id}.html",
            "run.html.j2",
            s.status == "running",
            active="runs",
            s=s,
            charts=charts,
            tail=tail,
            funnel=views.funnel(totals, orders),
            orders=list(reversed(orders[-TIMELINE_ORDERS:])),
            orders_total=len(orders),
            age=age,
            data_source=info.meta.get("data_source") or "-",
            session_id=session_id if isinstance(session_id, str) and ID_PATTERN.match(session_id) else None,
        )

    def _write_session(self, entry: dict[str, Any], run_ids: set[str], inp: model.SiteInput | None) -> None:
        record = self._record(inp, entry)
        if record is None:
            return
        detail = model.session_detail(record)
        sid = entry["session_id"]
        self._json(f"api/live_sessions/{sid}.json", detail)
        self._page(
            f"sessions/{sid}.html",
            "session.html.j2",
            detail["status"] == "started",
            active="sessions",
            s=detail,
            run_link=detail.get("run_id") in run_ids,
            config_json=json.dumps(detail["config"], indent=2, sort_keys=True, default=str),
        )

    def _write_session_lists(self, inp: model.SiteInput) -> None:
        summaries = [views.live_session_summary(r) for r in model.sessions_as_records(inp.sessions)]
        groups: list[tuple[str, str, list]] = [("all", "", summaries)]
        filters = []
        for kind in ("mode", "status", "strategy", "symbol"):
            values = sorted({str(s[kind]) for s in summaries if s.get(kind)})
            options = []
            for value in values:
                key = f"{kind}-{slug(value)}"
                groups.append((key, f"{kind} = {value}", [s for s in summaries if str(s.get(kind)) == value]))
                options.append((value, f"{key}.html"))
            filters.append((kind, options))
        stats = model.stats_json(inp.sessions)
        size = inp.page_size
        for key, label, rows in groups:
            pages = max(1, -(-len(rows) // size))
            names = [
                ("index.html" if key == "all" else f"{key}.html") if n == 1 else f"{key}-{n}.html"
                for n in range(1, pages + 1)
            ]
            for n in range(1, pages + 1):
                self._page(
                    f"sessions/{names[n - 1]}",
                    "sessions.html.j2",
                    False,
                    active="sessions",
                    rows=rows[(n - 1) * size : n * size],
                    page=n,
                    pages=pages,
                    count=len(rows),
                    page_links=list(zip(range(1, pages + 1), names)),
                    filters=filters,
                    filter_label=label,
                    stats=stats,
                )
        self._json(
            "api/sessions_search.json",
            [
                [
                    s["session_id"],
                    s["mode"],
                    s["status"],
                    s.get("strategy") or "",
                    s.get("symbol") or "",
                    s["started_at"] or "",
                ]
                for s in summaries
            ],
        )

    def _write_summaries(self, inp: model.SiteInput, health: dict[str, Any]) -> None:
        newest = inp.sessions[:API_SESSIONS]
        api_sessions = [
            views.live_session_summary(r) for r in (self._record(inp, e) for e in newest) if r is not None
        ]
        stats = model.stats_json(inp.sessions)
        self._json("api/live_sessions.json", api_sessions)
        self._json("api/live_sessions/stats.json", stats)
        self._json("api/runs.json", [model.run_metadata(r) for r in inp.runs])
        self._json("api/health.json", health)
        snapshot = model.status_snapshot(inp, health)
        self._json("api/live/status/snapshot.json", snapshot)
        self._write(
            "api/live/status/snapshot.html",
            self.env.get_template("status_snapshot.html.j2")
            .render(snap=snapshot, refresh=inp.refresh_seconds)
            .encode(),
        )
        self._write("metrics.prom", model.prometheus(inp).encode())
        self._page("runs/index.html", "runs.html.j2", True, active="runs", runs=[r.snapshot for r in inp.runs])
        self._page("health.html", "health.html.j2", True, active="health")
        tile = api_sessions[0] if api_sessions else None
        run_by_id = {r.run_id: r for r in inp.runs}
        tile_run = run_by_id.get(tile["run_id"]) if tile and tile.get("run_id") else None
        stale_runs = [
            {"run_id": r.run_id, "age": views.age_text(r.snapshot.heartbeat_age_seconds)}
            for r in inp.runs
            if r.snapshot.stale
        ]
        self._page(
            "index.html",
            "index.html.j2",
            True,
            active="index",
            tile=tile,
            tile_run=tile_run.run_id if tile_run else None,
            tile_stale=bool(tile_run and tile_run.snapshot.stale),
            table=api_sessions[:TABLE_ROWS],
            total_sessions=len(inp.sessions),
            stats=stats,
            stale_runs=stale_runs,
            currency=inp.currency,
        )

    def _remove_gone(self, old: dict | None, run_fps: dict[str, str], session_fps: dict[str, str]) -> None:
        if not old:
            return
        for run_id in set(old["runs"]) - set(run_fps):
            for rel in (f"runs/{run_id}.html", f"api/runs/{run_id}/snapshot.json", f"api/runs/{run_id}/tail.json"):
                (self.out / rel).unlink(missing_ok=True)
        for sid in set(old["sessions"]) - set(session_fps):
            for rel in (f"sessions/{sid}.html", f"api/live_sessions/{sid}.json"):
                (self.out / rel).unlink(missing_ok=True)

    # -- manifest -------------------------------------------------------------------------------------------

    def _signature(self) -> dict[str, str]:
        return {
            "gen": GEN_VERSION,
            "templates": template_hash("site"),
            "out": str(self.out.resolve()),
            "page_size": str(self.cfg.site.page_size),
            "title": self.cfg.site.title,
            "refresh": str(self.cfg.site.refresh_seconds),
        }

    def _load_manifest(self) -> dict | None:
        try:
            data = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("signature") != self._signature():
            return None
        if not (self.out / "index.html").exists():
            return None
        return data

    def _save_manifest(self, run_fps: dict[str, str], session_fps: dict[str, str], registry_fp: str) -> None:
        self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        data = {"signature": self._signature(), "runs": run_fps, "sessions": session_fps, "registry": registry_fp}
        write_bytes(self.manifest_path, json.dumps(data, sort_keys=True).encode(), fsync=False)


def _render_leaves(b: _Build, runs: list[model.RunInfo], sessions: list[dict], run_ids: set[str]) -> None:
    for info in runs:
        b._write_run(info)
    for entry in sessions:
        b._write_session(entry, run_ids, None)


def _leaf_worker(
    cfg: Settings, out: Path, now: datetime, base: dict, runs: list, sessions: list, run_ids: set[str]
) -> tuple[int, list[str]]:
    b = _Build(cfg, out, True, now)
    b.base = base
    _render_leaves(b, runs, sessions, run_ids)
    return b.written, b.late_problems


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """A column as float64 with NaN for nulls, without going through Python objects."""
    return column.cast(pa.float64()).to_numpy().astype("float64", copy=False) if len(column) else np.empty(0)


def _fingerprint(run_dir: Path, stale: bool) -> str:
    parts = []
    for name in (S.META, S.EVENTS, S.LEGACY_CSV, S.ORDERS):
        try:
            st = os.stat(run_dir / name)
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        except FileNotFoundError:
            parts.append("-")
    parts.append("stale" if stale else "fresh")
    return "|".join(parts)
