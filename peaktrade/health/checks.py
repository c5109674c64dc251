"""The health checks: small functions `check(ctx) -> CheckResult`, each bounded in time.

No check walks a directory tree: runs come from one `scandir` of the runs directory (`scan_runs`), sessions from
the registry index (`registry.scan`), both scanned once per health run and shared through `Context`.
A check reports names of runs, sessions and files, never a secret (alert targets by scheme only).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade import jobs, registry
from peaktrade.artifacts.catalog import RunScan, scan_runs
from peaktrade.config import Settings
from peaktrade.health.core import CheckResult, listing
from peaktrade.liveness import DEAD, RUNNING, STALE, heartbeat_age, writer_state
from peaktrade.monitoring import stale_after_seconds
from peaktrade.views import age_text

FINISHED = ("completed", "failed", "aborted")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]{0,31})://", re.I)


@dataclass
class Context:
    """What every check may read: the settings, the time, and scans shared between checks (made once)."""

    settings: Settings
    now: datetime
    config_problems: list[str] = field(default_factory=list)
    _runs: RunScan | None = None
    _registry: registry.Scan | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the exchange check runs in its own thread

    def runs(self) -> RunScan:
        with self._lock:
            if self._runs is None:
                self._runs = scan_runs(self.settings.paths.runs_dir)
            return self._runs

    def registry(self) -> registry.Scan:
        with self._lock:
            if self._registry is None:
                index = Path(self.settings.paths.state_dir) / "registry-index.json"
                self._registry = registry.scan(self.settings.paths.registry_dir, index)
            return self._registry

    def stale_seconds(self, meta: dict[str, Any]) -> float:
        mon = self.settings.live_monitoring
        timeframe = meta.get("timeframe") if isinstance(meta.get("timeframe"), str) else "1m"
        return stale_after_seconds(timeframe, mon.stale_after_bars, mon.stale_min_seconds)

    def needs_exchange(self) -> bool:
        """Does anything depend on the exchange now? The config's session mode/source, or a running run's.

        The exchange check marks its failure critical only then (`CheckResult(critical=ctx.needs_exchange())`).
        """
        if _uses_exchange(self.settings.session.mode, self.settings.session.source):
            return True
        for entry in self.runs().runs:
            meta = entry.meta
            if (
                meta.get("status") == RUNNING
                and _uses_exchange(meta.get("mode"), meta.get("data_source"))
                and writer_state(meta, self.now, self.stale_seconds(meta)) == RUNNING
            ):
                return True
        return False


def _uses_exchange(mode: Any, source: Any) -> bool:
    return mode == "testnet" or (isinstance(source, str) and source.split(":", 1)[0] in ("kraken", "ccxt"))


# -- exchange -------------------------------------------------------------------------------------------------

EXCHANGE_PROBE_SECONDS = 2.0  # the whole `ops health` must answer within 3 s with the exchange unreachable


def check_exchange(ctx: Context) -> CheckResult:
    """A real public call (SystemStatus) through the resilient client, bounded in time. Its failure is critical
    only when a running session or the config's session needs the exchange."""
    from peaktrade.exchange import probe

    cfg = ctx.settings.exchange
    result = probe(cfg, min(EXCHANGE_PROBE_SECONDS, cfg.timeout_seconds))
    data = {"exchange_ok": result.ok, "exchange_errors": [] if result.ok else [result.message]}
    if result.ok:
        return CheckResult("exchange", "ok", result.message, data=data)
    needed = ctx.needs_exchange()
    why = "a session needs it" if needed else "nothing running needs it now"
    return CheckResult("exchange", "fail", f"{result.message} ({why})", result.fix, critical=needed, data=data)


# -- alerts ---------------------------------------------------------------------------------------------------


def check_alerts(ctx: Context) -> CheckResult:
    """Targets configured and understood by apprise (by scheme only); the config file readable, not world-readable."""
    from peaktrade.alerts import outbox_status
    from peaktrade.alerts.delivery import target_urls

    cfg = ctx.settings.alerts
    ap = _apprise()
    schemes: list[str] = []
    failures: list[str] = []
    warnings: list[str] = []
    for n, url in enumerate(target_urls(cfg), 1):
        m = _SCHEME.match(url)
        scheme = m.group(1).lower() if m else None
        if scheme and ap.Apprise().add(url):
            schemes.append(scheme)
        else:  # name the position and scheme only: the URL itself holds tokens
            failures.append(f"target #{n} ({scheme + '://' if scheme else 'no scheme'}) is not understood by apprise")
    if cfg.config_file:
        file_schemes, file_fail, file_warn = _alert_config_file(Path(cfg.config_file), ap)
        schemes += file_schemes
        failures += file_fail
        warnings += file_warn
    data = {
        "alerts_enabled": bool(schemes),
        "alert_sinks_configured": sorted(set(schemes)),
        "alert_config_warnings": failures + warnings,
    }
    found = f"{len(schemes)} target(s): {', '.join(sorted(set(schemes)))}" if schemes else "no working target"
    if failures:
        fix = (
            "check the scheme of each target against the apprise wiki (github.com/caronc/apprise/wiki) "
            "and the [alerts] config_file"
        )
        return CheckResult("alerts", "fail", f"{found}; {listing(failures)}", fix, data=data, details=tuple(failures))
    if not schemes:
        return CheckResult(
            "alerts",
            "warn",
            "no alert targets configured: nobody is notified of failures",
            "set [alerts] config_file to an apprise config file (or $PEAKTRADE_ALERT_URLS), then "
            "`peaktrade alerts test`",
            data=data,
        )
    outbox = outbox_status(ctx.settings.paths.state_dir)
    if outbox.problem:
        warnings.append(outbox.problem)
    if outbox.failing:
        since = f" since {outbox.oldest_pending_at:%Y-%m-%d %H:%M} UTC" if outbox.oldest_pending_at else ""
        who = f" ({', '.join(outbox.failing_targets)})" if outbox.failing_targets else ""
        warnings.append(f"deliveries failing{who}: {outbox.pending_items} alert(s) waiting in the outbox{since}")
        data["alert_config_warnings"] = failures + warnings
        return CheckResult(
            "alerts",
            "warn",
            f"{found}; {listing(warnings)}",
            "check the target service is up and its token valid (`peaktrade alerts test`); the outbox is sent by "
            "the next `peaktrade alerts run`",
            data=data,
            details=tuple(warnings),
        )
    if warnings:
        fix = f"chmod 600 {cfg.config_file} (it holds tokens)"
        return CheckResult("alerts", "warn", f"{found}; {listing(warnings)}", fix, data=data, details=tuple(warnings))
    return CheckResult("alerts", "ok", found, data=data)


def _apprise():
    import apprise

    # apprise logs parse and delivery errors, sometimes with the URL in them: keep that logger quiet.
    log = logging.getLogger("apprise")
    log.handlers[:] = [logging.NullHandler()]
    log.propagate = False
    return apprise


def _alert_config_file(path: Path, ap) -> tuple[list[str], list[str], list[str]]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return [], [f"config_file {path} does not exist"], []
    except OSError as exc:
        return [], [f"config_file {path}: cannot stat ({exc.strerror})"], []
    if not stat.S_ISREG(info.st_mode):
        return [], [f"config_file {path} is not a regular file"], []
    if not os.access(path, os.R_OK):
        return [], [f"config_file {path} is not readable by this user"], []
    warnings = []
    if info.st_mode & stat.S_IROTH:
        warnings.append(f"config_file {path} is world-readable (mode {stat.S_IMODE(info.st_mode):o})")
    conf = ap.AppriseConfig()
    conf.add(str(path.resolve()))
    bundle = ap.Apprise()
    bundle.add(conf)
    schemes = []
    for server in bundle:
        m = _SCHEME.match(server.url(privacy=True))
        schemes.append(m.group(1).lower() if m else "?")
    if not schemes:
        return [], [f"config_file {path}: apprise understood no target in it"], warnings
    return schemes, [], warnings


# -- risk limits ----------------------------------------------------------------------------------------------


def check_risk(ctx: Context) -> CheckResult:
    """[live_risk] limits consistent with each other and the session; a warning when every limit is off."""
    from peaktrade.risk import config_problems

    r = ctx.settings.live_risk
    failures = config_problems(r)  # the same verdict `session run --dry-run` gives
    warnings: list[str] = []
    if 0 < r.max_total_exposure_notional < r.max_order_notional:
        failures.append("max_order_notional is larger than max_total_exposure_notional: large orders always block")
    if 0 < r.max_symbol_exposure_notional < r.min_order_notional:
        failures.append("min_order_notional is larger than max_symbol_exposure_notional: every opening order blocks")
    limits = (
        "max_order_notional",
        "max_symbol_exposure_notional",
        "max_total_exposure_notional",
        "max_open_positions",
        "max_daily_loss_abs",
        "max_daily_loss_pct",
    )
    if not r.enabled:
        warnings.append("risk checks are off ([live_risk] enabled = false)")
    elif all(getattr(r, k) == 0 for k in limits):
        warnings.append("every risk limit is off (all max_* are 0)")
    elif not r.block_on_violation:
        warnings.append("block_on_violation = false: breaches are logged but orders go through")
    balance = ctx.settings.session.start_balance
    if r.max_daily_loss_abs > 0 and r.max_daily_loss_abs >= balance:
        warnings.append(
            f"max_daily_loss_abs ({r.max_daily_loss_abs:g}) >= start_balance ({balance:g}): never reached"
        )
    if r.max_daily_loss_pct >= 100:
        warnings.append(f"max_daily_loss_pct ({r.max_daily_loss_pct:g}) >= 100: never reached")
    data = {"live_risk_ok": not failures, "live_risk_warnings": failures + warnings}
    if failures:
        fix = "in [live_risk], make each smaller limit at most the larger one (0 turns a limit off)"
        return CheckResult("risk", "fail", listing(failures), fix, data=data, details=tuple(failures + warnings))
    if warnings:
        fix = "set the limits in [live_risk] (docs/config.md); 0 turns a limit off"
        return CheckResult("risk", "warn", listing(warnings), fix, data=data, details=tuple(warnings))
    active = sum(1 for k in limits if getattr(r, k) > 0)
    return CheckResult("risk", "ok", f"{active} limit(s) set and consistent", data=data)


# -- sessions (dead-man's switch) -----------------------------------------------------------------------------


def check_sessions(ctx: Context) -> CheckResult:
    """Running runs whose writer died (critical) or went stale; sessions `started` whose run says otherwise."""
    dead: list[str] = []
    stale: list[str] = []
    stuck: list[str] = []
    alive = 0
    run_status: dict[str, str] = {}
    for entry in ctx.runs().runs:
        meta = entry.meta
        status = meta.get("status")
        run_status[entry.run_id] = status if isinstance(status, str) else "?"
        if status != RUNNING:
            continue
        state = writer_state(meta, ctx.now, ctx.stale_seconds(meta))
        beat = age_text(heartbeat_age(meta, ctx.now))
        if state == DEAD:
            dead.append(f"{entry.run_id}: writer died (pid {meta.get('pid')} gone; last heartbeat {beat} ago)")
        elif state == STALE:
            stale.append(f"{entry.run_id}: no heartbeat for {beat}")
        else:
            alive += 1
    for e in ctx.registry().entries:
        if e.get("status") != "started":
            continue
        sid, run_id = e.get("session_id"), e.get("run_id")
        if run_id in run_status:
            if run_status[run_id] in FINISHED:
                stuck.append(f"session {sid}: registry says started, run {run_id} says {run_status[run_id]}")
            continue  # a running run is judged above, by its own meta.json
        limit = ctx.settings.live_monitoring.stale_min_seconds
        state = writer_state(e, ctx.now, limit)
        if state == DEAD:
            dead.append(f"session {sid}: writer died")
        elif state == STALE:
            stale.append(f"session {sid}: no heartbeat for {age_text(heartbeat_age(e, ctx.now))} (no run directory)")
    findings = dead + stale + stuck
    if dead:
        fix = (
            "`peaktrade runs recover` marks dead runs aborted and keeps every flushed event; then restart the "
            "session if it should still run"
        )
        return CheckResult(
            "sessions", "fail", f"{len(dead)} dead: {listing(dead)}", fix, critical=True, details=tuple(findings)
        )
    if stale:
        fix = (
            "look at the trading process (hung, or on another host?); if it is gone: "
            "`peaktrade runs recover --run-id ID --force`"
        )
        return CheckResult("sessions", "fail", f"{len(stale)} stale: {listing(stale)}", fix, details=tuple(findings))
    if stuck:
        fix = "the session ended without updating its registry record; the run page says how it ended"
        return CheckResult("sessions", "warn", listing(stuck), fix, details=tuple(findings))
    return CheckResult("sessions", "ok", f"{alive} running, every writer alive" if alive else "no running sessions")


# -- site freshness -------------------------------------------------------------------------------------------


def check_site(ctx: Context) -> CheckResult:
    """The site exists and was built within `missed_intervals` site build intervals. Every build rewrites
    `build-time.js` (one that finds nothing changed rewrites nothing else); a site from before it: `index.html`."""
    h = ctx.settings.health
    site_dir = Path(ctx.settings.paths.site_dir)
    index = site_dir / "index.html"
    try:
        os.stat(index)
        try:
            mtime = os.stat(site_dir / "build-time.js").st_mtime
        except FileNotFoundError:
            mtime = os.stat(index).st_mtime
    except OSError:
        return CheckResult(
            "site",
            "warn",
            f"{index} missing: the site was never built here",
            "run `peaktrade site build` and install the site line of crontab.example",
        )
    age = ctx.now.timestamp() - mtime
    limit = h.site_build_interval_seconds * h.missed_intervals
    found = f"{index} built {age_text(age)} ago"
    if age > limit:
        fix = "is cron running `peaktrade site build`? see state/cron.log; run it by hand to see the error"
        return CheckResult("site", "fail", f"{found} (limit {age_text(limit)})", fix)
    return CheckResult("site", "ok", found)


# -- artifacts ------------------------------------------------------------------------------------------------


def check_artifacts(ctx: Context) -> CheckResult:
    """Unreadable run directories and registry records, each named."""
    runs, reg = ctx.runs(), ctx.registry()
    problems = list(runs.problems) + list(reg.problems)
    found = f"{len(runs.runs)} run(s), {len(reg.entries)} session record(s) readable"
    if problems:
        fix = "move each named file or directory out of the way (it is skipped meanwhile); see docs/artifacts.md"
        return CheckResult(
            "artifacts", "warn", f"{len(problems)} unreadable: {listing(problems)}", fix, details=tuple(problems)
        )
    return CheckResult("artifacts", "ok", found)


# -- disk -----------------------------------------------------------------------------------------------------


def check_disk(ctx: Context) -> CheckResult:
    """Free space on the file system where runs are written."""
    h = ctx.settings.health
    where = Path(ctx.settings.paths.runs_dir)
    probe = where
    while not probe.exists() and probe != probe.parent:  # not created yet: the disk it will be created on
        probe = probe.parent if str(probe.parent) else Path(".")
    usage = shutil.disk_usage(probe if probe.exists() else Path("."))
    free_mb = usage.free / 2**20
    pct = 100.0 * usage.free / usage.total if usage.total else 0.0
    found = f"{free_mb / 1024:.1f} GiB free ({pct:.1f} %) at {where}"
    fix = "free space, or move [paths].runs_dir to a larger disk (finished runs can be archived)"
    if free_mb < h.disk_fail_free_mb or pct < h.disk_fail_free_percent:
        limits = f"fail below {h.disk_fail_free_mb:g} MiB or {h.disk_fail_free_percent:g} %"
        return CheckResult("disk", "fail", f"{found}; {limits}", fix)
    if free_mb < h.disk_warn_free_mb or pct < h.disk_warn_free_percent:
        limits = f"warn below {h.disk_warn_free_mb:g} MiB or {h.disk_warn_free_percent:g} %"
        return CheckResult("disk", "warn", f"{found}; {limits}", fix)
    return CheckResult("disk", "ok", found)


# -- cron jobs ------------------------------------------------------------------------------------------------


def check_jobs(ctx: Context) -> CheckResult:
    """When `site build`, `runs recover` and `alerts run` last succeeded (state/jobs/), so a stopped cron shows."""
    h = ctx.settings.health
    view = jobs.load_all(ctx.settings.paths.state_dir)
    expected = (
        ("site-build", h.site_build_interval_seconds),
        ("runs-recover", h.recover_interval_seconds),
        ("alerts-run", h.alerts_interval_seconds),
    )
    late: list[str] = []
    fine: list[str] = []
    for name, interval in expected:
        run = view.runs.get(name)
        limit = interval * h.missed_intervals
        if run is None:
            late.append(f"{name} never ran")
        elif run.last_ok_at is None:
            late.append(f"{name} never succeeded (last run: {run.detail or 'failed'})")
        elif (age := (ctx.now - run.last_ok_at).total_seconds()) > limit:
            late.append(f"{name} last succeeded {age_text(age)} ago (expected every {age_text(interval)})")
        elif not run.ok:
            late.append(f"{name} failed on its last run: {run.detail or 'no detail'}")
        else:
            fine.append(f"{name} ok {age_text(age)} ago")
    late += view.problems
    if late:
        fix = "install the lines of crontab.example (`crontab -l` to compare); errors are in state/cron.log"
        return CheckResult("jobs", "warn", listing(late + fine, 6), fix, details=tuple(late + fine))
    return CheckResult("jobs", "ok", "; ".join(fine))
