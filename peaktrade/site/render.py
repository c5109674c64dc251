"""A build of the site (`site.job` decides when one is due): gather inputs, render what changed, write every
file atomically, leaves first.

Incremental: a manifest in the state directory keeps a fingerprint per run (stat of its files plus its stale
flag) and per session record (size, ctime); pages whose inputs did not change are not re-rendered. The small
pages that summarize everything (Live-Track, runs list, JSON lists, health, metrics) are rendered every build.
Write order: run and session pages and their JSON first, then lists, `index.html` last, so a page never links
to one that does not exist yet. Each file appears atomically (temp file + rename).

Killing a build at any moment leaves nothing behind: worker processes are spawned (not forked, so they never
share the lock's file descriptor), die with the build (PR_SET_PDEATHSIG), and temp files a killed build left
are removed by the next one (`site.job`, which also records each build in `state/jobs/site-build.json`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from peaktrade import healthlog, liveness, registry, views
from peaktrade.artifacts import runmeta, scan_runs, summarycache
from peaktrade.artifacts import schema as S
from peaktrade.artifacts.scancache import ScanCache
from peaktrade.artifacts.summarycache import SummaryCache
from peaktrade.atomic import write_bytes
from peaktrade.clock import iso, parse_ts
from peaktrade.config import Settings
from peaktrade.errors import ArtifactError
from peaktrade.ids import ID_PATTERN, slug
from peaktrade.site import healthview, live, manifest, model, sessionpage
from peaktrade.site.job import BuildResult
from peaktrade.site.quiet import build_stamp, freshness_limit, json_file
from peaktrade.site.rows import page_navs, run_list_rows, session_row
from peaktrade.site.workers import EARLY_MODULES, LEAF_MODULES, start, warm
from peaktrade.templating import environment, template_dir

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

TABLE_ROWS = 25
API_SESSIONS = 100
ALERT_ROWS = 1000  # newest alert records on alerts.html and in api/alerts.json
_FINAL = ("completed", "failed", "aborted")
HEALTH_HISTORY = "api/health/history.json"
NAV = (
    ("index.html", "Live-Track", "index"),
    ("sessions/index.html", "Sessions", "sessions"),
    ("runs/index.html", "Runs", "runs"),
    ("health.html", "Health", "health"),
    ("alerts.html", "Alerts", "alerts"),
    ("api/live/status/snapshot.html", "Status", "status"),
)


class Build:
    def __init__(
        self,
        settings: Settings,
        out: Path,
        full: bool,
        now: datetime,
        problems: list[str] | None = None,
        stamps: dict[str, str | None] | None = None,
        records: registry.Listing | None = None,
        early: ProcessPoolExecutor | None = None,
        last: tuple[dict | None, str | None] | None = None,
        no_workers: bool = False,
    ):
        self.cfg = settings
        self.out = out
        self.now = now
        self.env = environment("site")
        self.written = 0
        self.full = full
        self.late_problems: list[str] = []  # met while rendering leaves (possibly in worker processes)
        self.run_problems: dict[str, list[str]] = {}  # run id -> those its page met (kept in the manifest)
        self._unread: list[str] = []  # records of the newest sessions that could not be read (`_write_summaries`)
        self.sessions_key: str | None = None  # what a kept summary of the sessions holds for (`_sessions_key`)
        self._registry_clean = False  # read this build without a problem, every record final (`_read_registry`)
        self.early_problems = list(problems or [])  # met before this build started (site.job)
        self.stamps = stamps  # stats of each run's files, taken by site.quiet before this build read any
        self.records = records  # and of the registry's record files
        self.alerts_by_run: dict[str, list[dict[str, Any]]] = {}
        self.workers = 1
        self.live: dict[str, dict[str, Any]] = {}  # run id -> live numbers and writer state (site.live)
        # Totals of runs in the original format, derived once per event-file fingerprint (state/).
        self.summaries = SummaryCache(settings.paths.state_dir)
        self._held: list[tuple[str, bytes]] | None = None  # see _write_leaves
        self._dirs: set[Path] = set()  # directories this build made sure exist
        self._executor: ProcessPoolExecutor | None = None  # see _pool
        self._early = early  # one worker for a few changed runs, started by `site.job` or `_run`
        self._last = last  # the last build's manifest and its problem, when `site.job` read it already
        self._no_workers = no_workers  # none can start on this host (see _start; `site.job` may have found so)
        self.parsed: dict[str, dict[str, Any]] = {}  # registry file name -> the record the scan parsed
        self._registry_base: Path | None = None  # the registry directory resolved, once (`_record`)
        self._pool_size = 0
        self._shells: tuple[dict[str, Any], Any, sessionpage.Shell] | None = None  # see _shell

    def _write_leaves(
        self, runs: list[model.RunInfo], sessions: list[dict], links: _Links, meanwhile: Callable[[], None]
    ) -> list[tuple[str, bytes | None]] | None:
        """Run and session pages. Leaves are independent files, so they are spread over the CPU cores when many;
        then this process runs `meanwhile()` with its writes held back, and returns them (None when the leaves
        were rendered here, in this process, and `meanwhile` did not run). Held pages are written only once every
        leaf is on disk: a list never links to a page not written yet."""
        few = len(runs) * 10 + len(sessions) < self.cfg.site.parallel_min_pages
        if few:
            pool, workers = self._early, 1  # started when the build began, if a run had changed
        else:
            pool = self._pool()
            workers = self._pool_size
        if pool is None or (not runs and (few or not sessions)):  # a few session pages: here, as fast as sending
            _render_leaves(self, runs, sessions, links)
            return None
        self.workers = workers
        chunks = [(runs[i::workers], sessions[i::workers]) for i in range(workers)]
        self._held = []
        try:
            try:
                futures = [
                    pool.submit(
                        _leaf_worker,
                        self.cfg,
                        self.out,
                        self.now,
                        self.base,
                        r,
                        s,
                        links,
                        {i.run_id: self.alerts_by_run[i.run_id] for i in r if i.run_id in self.alerts_by_run},
                        {e["_file"]: self.parsed[e["_file"]] for e in s if e["_file"] in self.parsed},
                    )
                    for r, s in chunks
                ]
                meanwhile()
                done = [future.result() for future in futures]
            except BrokenExecutor as exc:  # a worker died (killed, out of memory): every leaf is rendered here,
                self._held = None  # the lists by the caller, after them
                self.late_problems.append(
                    f"a worker process of this build died ({exc}); its pages were rendered by the build process. "
                    "If this repeats, look for the out-of-memory killer in the kernel log (dmesg)"
                )
                _render_leaves(self, runs, sessions, links)
                return None
            for written, problems, run_problems in done:
                self.written += written
                self.late_problems += problems
                self.run_problems.update(run_problems)
            return self._held
        finally:
            self._held = None

    def _write_held(self, held: list[tuple[str, bytes | None]]) -> None:
        for rel, data in held:
            if data is None:
                (self.out / rel).unlink(missing_ok=True)
            else:
                self._write(rel, data)

    def _remove(self, rel: str) -> None:
        """Delete a page (after the held writes, when writes are held: see `_write_leaves`)."""
        if self._held is not None:
            self._held.append((rel, None))
        else:
            (self.out / rel).unlink(missing_ok=True)

    def _pool(self) -> ProcessPoolExecutor | None:
        """The build's worker processes, one per core (2 to 4), all started on first use (small builds never start
        any); None where none can start: the caller does the work in this process."""
        if self._executor is None and not self._no_workers:
            self._pool_size = min(max(os.cpu_count() or 1, 2), 4)
            self._executor = self._start(self._pool_size)
        return self._executor

    def _start(self, workers: int, modules: tuple[str, ...] = LEAF_MODULES) -> ProcessPoolExecutor | None:
        """`workers.start`; where none can start, this build works in this process from then on."""
        pool = start(workers, modules)
        if pool is None:
            self._no_workers = True
        return pool

    def _many_leaves(self) -> bool:
        """Will a full build render enough pages to use the workers? (Counted from directory listings only.)"""
        try:
            runs = sum(1 for e in os.scandir(self.cfg.paths.runs_dir) if not e.name.startswith("."))
            sessions = sum(1 for e in os.scandir(self.cfg.paths.registry_dir) if e.name.endswith(".json"))
        except OSError:
            return False
        return runs * 10 + sessions >= self.cfg.site.parallel_min_pages

    def _derive_summaries(self, scanned: list) -> Callable[[], None]:
        """Summaries of runs in the original format whose event file is new or changed, derived over the workers
        when many or when a worker runs anyway (each one is a pass over a whole file; a cold build of 1,000 such
        runs spent most of its time here, in one process). Returns what waits for them and keeps them: the caller
        goes on meanwhile. A run that fails here is derived again, and its problem reported, by the gather."""
        todo = []
        for entry in scanned:
            summary = entry.meta.get("summary")
            if isinstance(summary, dict) and isinstance(summary.get("totals"), dict):
                continue  # ours: the totals are in meta.json
            if entry.stamp is not None:  # the stats this build took (`scancache.stamp`): none taken again
                path, fp = summarycache.stamped_event_file(entry.path, entry.stamp) or (None, None)
            else:
                path, fp = summarycache.event_file(entry.path), None
            if path is not None and not self.summaries.fresh(entry.path, path, fp):
                todo.append((entry.path, path))
        many = len(todo) * 10 >= self.cfg.site.parallel_min_pages
        pool = self._pool() if many else self._early
        if not todo or pool is None:
            return lambda: None  # few, and no worker started: the gather derives them as it goes
        chunk = max(1, len(todo) // (self._pool_size * 8)) if many else len(todo)
        derived = pool.map(summarycache.derive_kept, [path for _, path in todo], chunksize=chunk)  # submitted now

        def keep() -> None:
            try:
                for (run_dir, _), summary in zip(todo, derived):
                    if summary is not None:
                        self.summaries.put(run_dir, summary)
            except BrokenExecutor:  # a worker died: the gather derives what is missing as it goes
                pass

        return keep

    # -- orchestration --------------------------------------------------------------------------------------

    def run(self) -> BuildResult:
        try:
            return self._run()
        finally:
            for pool in (self._executor, self._early):
                if pool is not None:
                    pool.shutdown(cancel_futures=True)

    def _run(self) -> BuildResult:
        started = time.perf_counter()
        old, manifest_problem = self._last if self._last is not None else manifest.load(self.cfg, self.out)
        if old is None:
            self.full = True
        self.out.mkdir(parents=True, exist_ok=True)
        self._copy_static()
        if self.full and self._many_leaves():
            self._pool()  # the workers start (and import) while this process gathers
        elif (
            not (self.full or self._no_workers)
            and self._early is None
            and manifest.runs_changed(old, self.stamps or {})
        ):
            self._early = self._start(1, EARLY_MODULES)  # see `site.job`, which starts it sooner when it can
        inp, run_fps, session_fps = self._gather(old)
        inp.problems[:0] = self.early_problems + ([manifest_problem] if manifest_problem else [])
        # Found by earlier builds while rendering the pages of runs that are still there: expected again (the
        # badge must not flip while a run with a bad line keeps changing); replaced by what re-rendered pages find.
        kept = manifest.run_problems(old, {r.run_id for r in inp.runs})
        inp.problems += _new(inp.problems, (p for problems in kept.values() for p in problems))
        health = model.health(inp)
        if old is not None and old.get("badge") != health["status"]:
            self.full = True  # every page carries the health badge
            if inp.summary is not None:  # the session pages too: their sessions are read after all
                inp.sessions, session_fps = self._sessions(self._read_registry(inp.problems), inp.runs)
                inp.summary = None
        self.base = dict(
            site_title=inp.title,
            nav=NAV,
            health=health,
            generated_at=inp.now,
            data_time=model.newest_data_time(inp),
            labels=views.STATUS_LABELS,
            currency=inp.currency,
            built_epoch=int(inp.now.timestamp()),
            stale_after=freshness_limit(inp.refresh_seconds),
        )
        data_time = self.base["data_time"]
        self.base["data_age"] = views.age_text((inp.now - data_time).total_seconds()) if data_time else "-"
        self.base["data_epoch"] = int(data_time.timestamp()) if data_time else 0
        changed_runs = [r for r in inp.runs if self.full or old["runs"].get(r.run_id) != r.fingerprint]
        if inp.summary is not None:  # kept from the last build (see `_gather`): every session page stands
            page_fps, changed_sessions, registry_fp = dict(old["sessions"]), [], old["registry"]
        else:
            # a running session's page shows its run's numbers: it changes whenever its run does
            page_fps = {
                sid: fp + "|" + run_fps.get(str(e.get("run_id")), "-") if e.get("status") not in _FINAL else fp
                for e in inp.sessions
                for sid, fp in [(e["session_id"], session_fps[e["session_id"]])]
            }
            changed_sessions = [
                e
                for e in inp.sessions
                if self.full or old["sessions"].get(e["session_id"]) != page_fps[e["session_id"]]
            ]
            registry_fp = _digest(json.dumps(session_fps, sort_keys=True))  # the session lists show these
        links = _Links(
            {r.run_id for r in inp.runs},
            set(page_fps),
            {r.run_id: self.live[r.run_id] for r in inp.runs},
        )
        lists_due = self.full or old.get("registry") != registry_fp
        badge = health["status"]
        history = healthlog.history(self.cfg.paths.state_dir, self.cfg.health.timeline_results)
        inp.problems += history.problems
        # The session lists and the summary pages link to leaves and carry the health header: while the workers
        # render leaves, render them with the header they get if no leaf finds a problem; kept only if none does.
        early = model.health(inp)  # with the problems known so far (the history's too)
        newest: list[_Newest] = []

        def meanwhile() -> None:
            with self._header(early):
                if lists_due:
                    self._write_session_lists(inp)
                newest.append(self._write_summaries(inp, early, history))

        header = list(inp.problems)
        held = self._write_leaves(changed_runs, changed_sessions, links, meanwhile)
        rendered = {r.run_id for r in changed_runs}
        still = {p for r, problems in kept.items() if r not in rendered for p in problems} | set(self.late_problems)
        gone = {p for r, problems in kept.items() if r in rendered for p in problems} - still
        inp.problems[:] = [p for p in inp.problems if p not in gone]
        inp.problems += _new(inp.problems, self.late_problems)
        health.update(model.health(inp))  # from the problems as they are now: some expected may be gone
        if held is not None and inp.problems == header:
            self._write_held(held)
        else:
            if lists_due:
                self._write_session_lists(inp)
            newest[:] = [self._write_summaries(inp, health, history)]
        self._write_index(inp, newest[0])  # last: its sparklines are written with the run pages
        # Records of the newest sessions that could not be read: said by every build that meets them, whether or
        # not it rendered the summaries twice (they show those sessions as missing either way).
        inp.problems += [p for p in dict.fromkeys(self._unread) if p not in inp.problems]
        health_fp = self._write_health_history(old)
        self._remove_gone(old, run_fps, page_fps)
        seen = sorted({_digest(p) for p in inp.problems})
        unrendered = {name: key for name, key in (self.stamps or {}).items() if name not in run_fps}
        manifest.save(
            self.cfg,
            self.out,
            run_fps,
            page_fps,
            registry_fp,
            badge=badge,
            health_files=health_fp,
            problems=seen,
            unrendered=unrendered,
            run_problems={**{r: p for r, p in kept.items() if r not in rendered}, **self.run_problems},
            sessions_view=self._view_to_keep(inp, newest[0]),
        )
        if self.summaries.entries:  # keyed by absolute run directory
            base = str(Path(self.cfg.paths.runs_dir).absolute())
            self.summaries.forget_missing({os.path.join(base, e.path.name) for e in self._scanned})
        self.summaries.save()
        # The problems a quiet build repeats must be lasting ones, seen by the build before too: "the cache was
        # rebuilt" is said once, by the build that rebuilt it.
        before = old.get("problems") if old is not None else None
        stable = not seen or (isinstance(before, list) and set(seen) <= set(before))
        # A badge saved unlike the pages' final one (a problem expected was gone): the next build renders them all
        stable = stable and badge == health["status"]
        settled, until = _settled(inp, health)
        return BuildResult(
            self.out,
            self.written,
            len(changed_runs),
            len(changed_sessions),
            inp.problems,
            time.perf_counter() - started,
            self.workers,
            settled=settled and stable,
            settled_until=until,
        )

    # -- inputs ---------------------------------------------------------------------------------------------

    def _gather(self, old: dict | None) -> tuple[model.SiteInput, dict[str, str], dict[str, str]]:
        cfg = self.cfg
        mon = cfg.live_monitoring
        problems: list[str] = list(self.summaries.problems)
        cache = ScanCache(cfg.paths.state_dir)
        scan = scan_runs(cfg.paths.runs_dir, cache, self.stamps)
        cache.save()
        self._scanned = scan.runs
        derived = self._derive_summaries(scan.runs)  # in the workers, while this process reads the registry
        if self._early is not None:  # after those, the early worker prepares for the run pages
            try:
                self._early.submit(warm, *LEAF_MODULES)
            except BrokenExecutor:  # it died: the run pages are rendered here (`_write_leaves`)
                pass
        self.sessions_key = key = self._sessions_key(scan.runs)
        kept = None if self.full or old is None or key is None else manifest.sessions_view(old, key)
        # The registry as the last build read it, every session final and the same runs there: what the pages show
        # of all sessions is kept (`model.SessionsSummary`), no entry is read, and no session page changes.
        sessions = self._read_registry(problems) if kept is None else []
        problems += scan.problems
        derived()
        session_ids = {e["session_id"] for e in sessions} if kept is None else set(old["sessions"])
        runs = []
        for entry in scan.runs:
            try:
                # the meta.json the scan read is the one this build renders from (read once, one commit point)
                totals, last, found = runmeta.glance(entry.path, entry.meta, self.summaries, entry.stamp)
                meta = dict(entry.meta)
                meta["run_id"] = entry.run_id
                snap = model.run_snapshot(meta, totals, last, self.now, mon.stale_after_bars, mon.stale_min_seconds)
            except (ArtifactError, OSError) as exc:
                problems.append(f"{entry.path}: {exc}")
                continue
            problems += [p for p in found if p not in scan.problems]
            # A run page links to its session page only while that page exists: re-render when it comes or goes.
            linked = "session" if meta.get("session_id") in session_ids else "no-session"
            files = entry.stamp or _fingerprint_files(entry.path, (S.META, S.EVENTS, S.LEGACY_CSV, S.ORDERS))
            fp = f"{files}|{snap.state}|{linked}"
            runs.append(model.RunInfo(entry.run_id, meta, snap, fp, totals=totals))
            # one rule for the writer's state everywhere (peaktrade.status): badges, fingerprint, metrics
            self.live[entry.run_id] = live.live_numbers(snap, snap.state)
        if kept is not None and len(runs) != len(scan.runs):  # a run could not be read: its sessions' links change
            kept, sessions = None, self._read_registry(problems)
        alerts = self._alerts(problems)
        by_run = model.alerts_by_run(alerts)
        for info in runs:  # a run page shows its alerts: re-render it when they change
            mine = by_run.get(info.run_id, [])
            info.fingerprint += f"|alerts:{len(mine)}:{mine[0]['at'] if mine else ''}"
        sessions, session_fps = self._sessions(sessions, runs)
        ops_latest, ops_problem = healthlog.latest(cfg.paths.state_dir)
        problems += [ops_problem] if ops_problem else []
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
            alerts=alerts,
            ops_health=ops_latest,
            ops_health_max_age=cfg.health.interval_seconds * cfg.health.missed_intervals,
            summary=None if kept is None else _summary(kept),
        )
        self.alerts_by_run = by_run
        return inp, {r.run_id: r.fingerprint for r in runs}, session_fps

    def _read_registry(self, problems: list[str]) -> list[dict[str, Any]]:
        """The registry's index entries with a safe session id, newest first; its problems are added."""
        cfg = self.cfg
        index = Path(cfg.paths.state_dir) / "registry-index.json"
        reg = registry.scan(cfg.paths.registry_dir, index, taken=self.records)
        self.parsed = reg.records  # the session pages show these as the scan read them: one read per record
        unsafe = [
            f"session id {e.get('session_id')!r} in {e['_file']} is not a safe id; skipped"
            for e in reg.entries
            if not ID_PATTERN.match(e.get("session_id") or "")
        ]
        problems += reg.problems + unsafe
        entries = [e for e in reg.entries if ID_PATTERN.match(e.get("session_id") or "")]
        # Only records that say themselves they are final may be kept taken together: the status shown of one
        # that does not comes from its run (`session_truth`), which may change while the registry does not.
        self._registry_clean = not (reg.problems or unsafe) and all(e.get("status") in _FINAL for e in entries)
        return entries

    def _sessions(
        self, entries: list[dict[str, Any]], runs: list[model.RunInfo]
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The sessions with the status they really have (`session_truth`) and their pages' fingerprints."""
        metas = {r.run_id: r.meta for r in runs}
        stale = self.cfg.live_monitoring.stale_min_seconds
        sessions = [model.session_truth(e, metas.get(e.get("run_id")), self.now, stale) for e in entries]
        run_ids = {r.run_id for r in runs}
        session_fps = {  # a session page re-renders when its record, its shown status or its run's presence changes
            e["session_id"]: _session_fp(e, run_ids) for e in sessions
        }
        return sessions, session_fps

    def _sessions_key(self, scanned: list) -> str | None:
        """What a kept `model.SessionsSummary` holds for: the registry's record files as their stats show them,
        settled (see `registry.Listing.settled`), and the runs there. None: nothing may be kept."""
        listing = self.records
        if listing is None or not listing.settled():
            return None
        return _digest(listing.digest + "|" + "|".join(sorted(e.run_id for e in scanned)))

    def _view_to_keep(self, inp: model.SiteInput, newest: _Newest) -> dict[str, Any] | None:
        """What the next build may keep of all sessions (`manifest.sessions_view`), if it may: the registry read
        without a problem, every record final as its file says, every one of the newest records and every run read.
        A view kept from the last build is kept again: it was kept for these very record files and runs."""
        if self.sessions_key is None:
            return None
        if inp.summary is not None:
            s = inp.summary
            total, by_status, stats, newest_time, records = s.total, s.by_status, s.stats, s.newest_time, s.records
        elif (
            self._registry_clean
            and not self._unread
            and len(newest.records) == min(len(inp.sessions), API_SESSIONS)
            and len(inp.runs) == len(self._scanned)  # a run that could not be read links no session page
        ):
            total, by_status = len(inp.sessions), model.sessions_by_status(inp.sessions)
            stats, newest_time, records = newest.stats, model.newest_session_time(inp.sessions), newest.records
        else:
            return None
        return {
            "key": self.sessions_key,
            "total": total,
            "by_status": by_status,
            "stats": stats,
            "newest_time": iso(newest_time),
            "records": records,
        }

    def _alerts(self, problems: list[str]) -> list[dict[str, Any]]:
        from peaktrade.alerts.store import history

        records, trouble = history(self.cfg.paths.state_dir, ALERT_ROWS)
        problems += trouble
        return model.alerts_json(records)

    def _record(self, inp: model.SiteInput | None, entry: dict[str, Any]) -> dict[str, Any] | None:
        sid = entry["session_id"]
        cache = inp.records if inp is not None else {}
        if sid not in cache:
            record = self.parsed.get(entry["_file"])
            try:
                if record is None:  # unchanged since the index was built: read now
                    if self._registry_base is None:
                        self._registry_base = Path(self.cfg.paths.registry_dir).resolve()
                    path = Path(self.cfg.paths.registry_dir) / entry["_file"]
                    record = registry.read_record(path, within=self._registry_base)[0]
            except ArtifactError as exc:  # gone or damaged since the scan: a leaf's problem, or the summaries'
                (self.late_problems if inp is None else self._unread).append(str(exc))
                return None
            cache[sid] = model.with_truth(record, entry)
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
        self._write(rel, html_text.encode(errors="backslashreplace"))

    def _json(self, rel: str, obj: Any) -> None:
        self._write(rel, json_file(obj))

    def _write(self, rel: str, data: bytes) -> None:
        if self._held is not None:  # rendered while the workers write the leaves: written after them
            self._held.append((rel, data))
            return
        path = self.out / rel
        if path.parent not in self._dirs:  # one mkdir per directory and build, not one per file (27,000 files)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
        try:
            write_bytes(path, data, fsync=False)
        except FileNotFoundError:  # its directory was removed during the build (by hand): made again
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes(path, data, fsync=False)
        self.written += 1

    def _write_run(self, info: model.RunInfo, links: _Links) -> list[str]:
        from peaktrade.site.runpage import write_run  # pyarrow and numpy: only where run pages are rendered

        return write_run(self, info, links)

    def _write_session(self, entry: dict[str, Any], links: _Links, inp: model.SiteInput | None) -> None:
        record = self._record(inp, entry)
        if record is None:
            return
        detail = model.session_detail(record)
        sid = entry["session_id"]
        self._json(f"api/live_sessions/{sid}.json", detail)
        run_live = links.live.get(str(detail.get("run_id")))
        state = live.session_state(record, run_live, self.now, self.cfg.live_monitoring.stale_min_seconds)
        s = live.with_live(detail, run_live, state)
        body = sessionpage.body(
            s,
            error=record.get("error") if isinstance(record.get("error"), str) else None,
            notes=record.get("notes") if isinstance(record.get("notes"), str) else None,
            run_link=detail.get("run_id") in links.run_ids,
            config_json=json.dumps(detail["config"], indent=2, sort_keys=True, default=str),
            currency=self.base["currency"],
        )
        refresh = self.cfg.site.refresh_seconds if detail["status"] == "started" else None
        html_text = self._shell().page("../", refresh, "sessions", sessionpage.title(s), body)
        self._write(f"sessions/{sid}.html", html_text.encode(errors="backslashreplace"))

    def _shell(self) -> sessionpage.Shell:
        """The header and footer of pages with this build's header (`self.base`), each rendered once; again when
        the header changes (`_header` swaps it, or its health is updated in place)."""
        health = self.base.get("health")
        if self._shells is None or self._shells[0] is not self.base or self._shells[1] != health:
            self._shells = (self.base, copy.deepcopy(health), sessionpage.Shell(self.env, self.base))
        return self._shells[2]

    @contextlib.contextmanager
    def _header(self, health: dict[str, Any]) -> Iterator[None]:
        """Pages rendered meanwhile carry `health` in their header."""
        base = self.base
        self.base = {**base, "health": health}
        try:
            yield
        finally:
            self.base = base

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
        written = {f"{e['session_id']}.html" for e in inp.sessions}
        # Each session appears on five list pages (all, its mode, status, strategy, symbol): render its row once.
        row_html = {id(s): session_row(s, "../") for s in summaries}
        for key, label, rows in groups:
            pages = max(1, -(-len(rows) // size))
            names = [
                ("index.html" if key == "all" else f"{key}.html") if n == 1 else f"{key}-{n}.html"
                for n in range(1, pages + 1)
            ]
            written.update(names)
            navs = page_navs(names)
            for n in range(1, pages + 1):
                self._page(
                    f"sessions/{names[n - 1]}",
                    "sessions.html.j2",
                    False,
                    active="sessions",
                    rows=[Markup("".join(row_html[id(s)] for s in rows[(n - 1) * size : n * size]))],
                    page=n,
                    pages=pages,
                    count=len(rows),
                    page_nav=navs[n - 1],
                    filters=filters,
                    filter_label=label,
                    stats=stats,
                )
        # A filter value that no session has any more (the last paper session went): its pages go too, so no
        # list keeps linking to sessions that are gone.
        for page in (self.out / "sessions").glob("*.html"):
            if page.name not in written:
                self._remove(f"sessions/{page.name}")
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
        self._write_filter_json(summaries)

    def _write_filter_json(self, summaries: list[dict[str, Any]]) -> None:
        """Static equivalents of the seed's `api/live_sessions?mode=shadow&status=completed`: one file per mode,
        per status and per mode x status, each the newest `API_SESSIONS` matches; files of values gone vanish."""
        files: dict[str, list[dict[str, Any]]] = {}
        for s in summaries:  # newest first, as the registry index is
            mode, status = slug(str(s["mode"])), slug(str(s["status"]))
            for rel in (f"mode/{mode}.json", f"status/{status}.json", f"mode/{mode}/status/{status}.json"):
                rows = files.setdefault(rel, [])
                if len(rows) < API_SESSIONS:
                    rows.append(s)
        base = self.out / "api/live_sessions"
        for rel, rows in sorted(files.items()):
            self._json(f"api/live_sessions/{rel}", rows)
        for kind in ("mode", "status"):
            for path in sorted((base / kind).rglob("*.json")) if (base / kind).is_dir() else []:
                if path.relative_to(base).as_posix() not in files:
                    self._remove(path.relative_to(self.out).as_posix())

    def _write_summaries(
        self, inp: model.SiteInput, health: dict[str, Any], history: healthlog.HealthHistory
    ) -> _Newest:
        """The pages and JSON files that summarize everything, but `index.html`; returns what that shows."""
        if inp.summary is not None:
            records, stats = list(inp.summary.records), inp.summary.stats
        else:
            records = [r for r in (self._record(inp, e) for e in inp.sessions[:API_SESSIONS]) if r is not None]
            stats = model.stats_json(inp.sessions)
        api_sessions = [views.live_session_summary(r) for r in records]
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
        snapshots = [r.snapshot for r in inp.runs]
        self._page(
            "runs/index.html",
            "runs.html.j2",
            True,
            active="runs",
            runs=snapshots,
            run_rows=run_list_rows(snapshots, self.live),
        )
        ops_page = healthview.page(health["latest"], history.results, self.cfg.health.timeline_results)
        self._page("health.html", "health.html.j2", True, active="health", ops=ops_page)
        self._json("api/alerts.json", inp.alerts)
        self._page(
            "alerts.html",
            "alerts.html.j2",
            True,
            active="alerts",
            alerts=inp.alerts,
            alert_runs=sorted({a["run_id"] for a in inp.alerts if a.get("run_id")}),
            run_ids={r.run_id for r in inp.runs},
        )
        return _Newest(api_sessions, records, stats)

    def _write_index(self, inp: model.SiteInput, newest: _Newest) -> None:
        """Live-Track, `index.html`: written last, after the run pages whose sparklines it shows."""
        stale_min = self.cfg.live_monitoring.stale_min_seconds
        table = []
        for row, record in zip(newest.sessions[:TABLE_ROWS], newest.records):
            run_live = self.live.get(str(row.get("run_id")))
            shown = live.with_live(row, run_live, live.session_state(record, run_live, inp.now, stale_min))
            shown["spark"] = self._sparkline(str(row.get("run_id"))) if run_live is not None else []
            table.append(shown)
        tile = table[0] if table else None
        run_by_id = {r.run_id: r for r in inp.runs}
        tile_run = run_by_id.get(tile["run_id"]) if tile and tile.get("run_id") else None
        self._write("build-time.js", build_stamp(inp.now, inp.refresh_seconds, self.base["health"]))
        stale_runs = [
            {"run_id": r.run_id, **self.live[r.run_id]}
            for r in inp.runs
            if self.live[r.run_id]["state"] in (liveness.STALE, liveness.DEAD)
        ]
        self._page(
            "index.html",
            "index.html.j2",
            True,
            active="index",
            tile=tile,
            tile_run=tile_run.run_id if tile_run else None,
            table=table,
            total_sessions=inp.summary.total if inp.summary is not None else len(inp.sessions),
            stats=newest.stats,
            stale_runs=stale_runs,
        )

    def _write_health_history(self, old: dict | None) -> str:
        """`api/health/history.json`, rewritten only when the `ops health` files changed (they are large)."""
        state = healthlog.health_dir(self.cfg.paths.state_dir)
        fp = _fingerprint_files(state, ("latest.json", "history.jsonl"))
        if self.full or old is None or old.get("health_files") != fp or not (self.out / HEALTH_HISTORY).exists():
            history = healthlog.history(self.cfg.paths.state_dir)
            self._json(HEALTH_HISTORY, {"results": history.results, "problems": history.problems})
        return fp

    def _sparkline(self, run_id: str) -> list[float]:
        """The equity points the run's page build left beside it (api/runs/<id>/sparkline.json): no event read."""
        try:
            points = json.loads((self.out / f"api/runs/{run_id}/sparkline.json").read_bytes())
        except (OSError, ValueError):
            return []
        return points if isinstance(points, list) else []

    def _copy_static(self) -> None:
        """templates/site/static/ (the vendored chart library, its licence, our chart script) into site/static/,
        rewriting only files whose bytes differ."""
        src = template_dir() / "site" / "static"
        for path in sorted(src.rglob("*")):
            if not path.is_file():
                continue
            rel = "static/" + path.relative_to(src).as_posix()
            data = path.read_bytes()
            try:
                if (self.out / rel).read_bytes() == data:
                    continue
            except OSError:
                pass
            self._write(rel, data)

    def _remove_gone(self, old: dict | None, run_fps: dict[str, str], session_fps: dict[str, str]) -> None:
        if not old:
            return
        for run_id in set(old["runs"]) - set(run_fps):
            for rel in (
                f"runs/{run_id}.html",
                f"runs/{run_id}.chart.js",
                f"api/runs/{run_id}/snapshot.json",
                f"api/runs/{run_id}/tail.json",
                f"api/runs/{run_id}/alerts.json",
                f"api/runs/{run_id}/sparkline.json",
            ):
                (self.out / rel).unlink(missing_ok=True)
            _remove_if_empty(self.out / "api/runs" / run_id)
        for sid in set(old["sessions"]) - set(session_fps):
            for rel in (f"sessions/{sid}.html", f"api/live_sessions/{sid}.json"):
                (self.out / rel).unlink(missing_ok=True)
        # a mode no session has any more: its filter files went (`_write_filter_json`), their directories go too
        modes = self.out / "api/live_sessions/mode"
        for mode_dir in modes.iterdir() if modes.is_dir() else []:
            if mode_dir.is_dir() and not mode_dir.is_symlink():
                _remove_if_empty(mode_dir / "status")
                _remove_if_empty(mode_dir)


def _remove_if_empty(directory: Path) -> None:
    """Remove `directory` if it is empty (a file someone put there keeps it)."""
    with contextlib.suppress(OSError):  # not empty, gone, or not a directory
        directory.rmdir()


@dataclass(frozen=True)
class _Newest:
    """What the summaries show of the newest sessions, for `index.html`."""

    sessions: list[dict[str, Any]]  # the newest API_SESSIONS, as api/live_sessions.json lists them
    records: list[dict[str, Any]]  # their records
    stats: dict[str, Any]


@dataclass(frozen=True)
class _Links:
    """What exists in this build, so no page links to one that is not there; and each run's live numbers."""

    run_ids: set[str]
    session_ids: set[str]
    live: dict[str, dict[str, Any]]  # run id -> its live numbers and writer state (site.live)


def _render_leaves(b: Build, runs: list[model.RunInfo], sessions: list[dict], links: _Links) -> None:
    for info in runs:
        found = b._write_run(info, links)
        if found:
            b.run_problems[info.run_id] = found
            b.late_problems += found
    for entry in sessions:
        b._write_session(entry, links, None)


def _leaf_worker(
    cfg: Settings,
    out: Path,
    now: datetime,
    base: dict,
    runs: list,
    sessions: list,
    links: _Links,
    alerts_by_run: dict[str, list[dict]],
    parsed: dict[str, dict[str, Any]],
) -> tuple[int, list[str], dict[str, list[str]]]:
    b = Build(cfg, out, True, now)
    b.base = base
    b.parsed = parsed
    b.live = links.live
    b.alerts_by_run = alerts_by_run
    _render_leaves(b, runs, sessions, links)
    return b.written, b.late_problems, b.run_problems


def _new(problems: list[str], more: Iterable[str]) -> list[str]:
    """Those of `more` not in `problems` yet, each once, in order."""
    have = set(problems)
    return [p for p in dict.fromkeys(more) if p not in have]


def _settled(inp: model.SiteInput, health: dict[str, Any]) -> tuple[bool, float | None]:
    """Does nothing on these pages depend on the clock, as long as their inputs stay as they are? True when every
    run and session finished (no heartbeat ages, no writer that may go stale or die); then until when: the
    `ops health` result goes late at its check time plus the allowed age (None: no result at all)."""
    if any(r.snapshot.state not in _FINAL for r in inp.runs) or any(e["status"] not in _FINAL for e in inp.sessions):
        return False, None
    if health["latest"] is None:
        return True, None
    ops = health["ops_health"]
    checked = parse_ts(ops["checked_at"])
    if ops["late"] or checked is None:
        return False, None
    return True, checked.timestamp() + inp.ops_health_max_age


def _summary(view: dict[str, Any]) -> model.SessionsSummary:
    """A `manifest.sessions_view` as the pages use it."""
    return model.SessionsSummary(
        view["total"], view["by_status"], view["stats"], parse_ts(view["newest_time"]), view["records"]
    )


def _digest(line: str) -> str:
    return hashlib.blake2b(line.encode(errors="surrogateescape"), digest_size=12).hexdigest()


def _session_fp(entry: dict[str, Any], run_ids: set[str]) -> str:
    linked = "run" if entry.get("run_id") in run_ids else "-"
    return f"{entry['_size']}:{entry['_ctime']}:{entry['status']}:{linked}"


def _fingerprint_files(directory: Path, names: tuple[str, ...]) -> str:
    parts = []
    for name in names:
        try:
            st = os.stat(directory / name)
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        except OSError:  # missing (or its directory is not one): "-" until it appears
            parts.append("-")
    return "|".join(parts)
