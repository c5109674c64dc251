"""`peaktrade ops health`: run every check, judge the whole, record it (history + job record).

The checks are the `CHECKS` list: (name, function(ctx) -> CheckResult). Adding one is a function in
`health/checks.py` (or any module) and one line here. `run_checks` is the pure-ish core (reads files, never
writes); `run` is the edge that loads the config, runs the checks and records the result in `state/`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade import config as _config
from peaktrade.clock import utcnow
from peaktrade.errors import ConfigError
from peaktrade.health import checks as C
from peaktrade.health.core import (
    CheckResult,
    document,
    evaluate,
    exit_code,
    text_lines,
)
from peaktrade.redact import REDACTED, redact

Check = Callable[[C.Context], CheckResult]

# Order = the order of the output lines. The exchange probe goes after "config".
CHECKS: list[tuple[str, Check]] = [
    ("exchange", C.check_exchange),
    ("alerts", C.check_alerts),
    ("risk", C.check_risk),
    ("sessions", C.check_sessions),
    ("site", C.check_site),
    ("artifacts", C.check_artifacts),
    ("disk", C.check_disk),
    ("jobs", C.check_jobs),
]

BACKGROUND = frozenset({"exchange"})

__all__ = ["CHECKS", "CheckResult", "HealthRun", "evaluate", "exit_code", "run", "run_checks", "text_lines"]

_SECRETISH = re.compile(r"(urls?|key|secret|token|password|webhook)\b", re.I)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def config_result(settings_source: Path | None, problems: Sequence[str]) -> CheckResult:
    """The config check, from what loading the config gave: critical when the file does not load."""
    if problems:
        clean = [_redact_problem(p) for p in problems]
        return CheckResult(
            "config",
            "fail",
            f"{len(clean)} problem(s): {clean[0]}",
            "fix each line `peaktrade config check` lists (docs/config.md)",
            critical=True,
            data={"config_ok": False, "config_errors": clean},
            details=tuple(clean),
        )
    found = f"{settings_source} loaded and valid" if settings_source else "no config file found; built-in defaults"
    return CheckResult("config", "ok", found, data={"config_ok": True, "config_errors": []})


def _redact_problem(line: str) -> str:
    """A config problem may quote the bad value; for a secret-like key (urls, token...) it must not."""
    line = str(redact(line))
    return _QUOTED.sub(f"'{REDACTED}'", line) if _SECRETISH.search(line) else line


def run_checks(
    ctx: C.Context, checks: Sequence[tuple[str, Check]] | None = None, budget_seconds: float | None = None
) -> list[CheckResult]:
    """Run each check once, timed, within one time budget for all (default `[health].timeout_seconds`).

    A check that raises becomes a `fail` naming the exception; one still running when the budget is spent
    (a hung network file system, say) becomes a `fail` and is abandoned, so `ops health` always answers.
    """
    budget = ctx.settings.health.timeout_seconds if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    results = [config_result(ctx.settings.source, ctx.config_problems)]
    todo = list(CHECKS if checks is None else checks)
    # network checks start at once and run alongside the file checks, so a slow exchange costs its own
    # bounded time only once, not on top of everything else
    early = {} if ctx.config_problems else {n: _start(n, c, ctx) for n, c in todo if n in BACKGROUND}
    for name, check in todo:
        started = time.perf_counter()
        if ctx.config_problems:
            result = CheckResult(name, "skip", "not run: the config did not load", "fix the config first")
        elif name in early:
            result = _finish(name, *early[name], deadline - time.monotonic(), budget)
        elif time.monotonic() >= deadline:
            result = CheckResult(name, "skip", "not run: an earlier check used up the time budget", "see that check")
        else:
            result = _bounded(name, check, ctx, deadline - time.monotonic(), budget)
        seconds = early[name][2]() if name in early else time.perf_counter() - started
        results.append(replace(result, name=name, seconds=seconds))
    return results


def _bounded(name: str, check: Check, ctx: C.Context, left: float, budget: float) -> CheckResult:
    return _finish(name, *_start(name, check, ctx), left, budget)


def _start(name: str, check: Check, ctx: C.Context) -> tuple[threading.Thread, list, Callable[[], float]]:
    box: list[CheckResult] = []
    t0 = time.perf_counter()
    took: list[float] = []

    def target() -> None:
        try:
            box.append(check(ctx))
        except Exception as exc:  # one broken check must not hide the others' results
            found = f"the check itself failed: {exc.__class__.__name__}: {exc}"
            box.append(CheckResult(name, "fail", found, "report this bug"))
        took.append(time.perf_counter() - t0)

    # a daemon thread: one that never returns is left behind when the process exits
    worker = threading.Thread(target=target, name=f"health-{name}", daemon=True)
    worker.start()
    return worker, box, lambda: took[0] if took else time.perf_counter() - t0


def _finish(
    name: str, worker: threading.Thread, box: list, _took: Callable[[], float], left: float, budget: float
) -> CheckResult:
    worker.join(max(0.0, left))
    if box:
        return box[0]
    return CheckResult(
        name,
        "fail",
        f"did not finish within the {budget:g} s budget of all checks ([health] timeout_seconds)",
        "a file system or network call hangs: check the mounts of [paths] and the network",
    )


@dataclass
class HealthRun:
    """One `ops health` run: the JSON document, and problems met while recording it (for stderr)."""

    doc: dict[str, Any]
    results: list[CheckResult]
    problems: list[str] = field(default_factory=list)

    @property
    def overall(self) -> str:
        return self.doc["overall"]


def run(config_arg: str | None = None, *, now: datetime | None = None, record: bool = True) -> HealthRun:
    """Load the config, run every check, append the result to the history and record the `ops-health` job.

    A config that does not load is the critical `config` failure, not an exception: the other checks are
    skipped and the result is recorded under the default state directory.
    """
    started = time.perf_counter()
    started_at = now or utcnow()
    try:
        settings, problems = _config.load(config_arg), []
    except ConfigError as exc:
        settings, problems = _config.Settings(), list(exc.problems)
    ctx = C.Context(settings=settings, now=started_at, config_problems=problems)
    results = run_checks(ctx)
    doc = document(results, started_at, time.perf_counter() - started)
    out = HealthRun(doc, results)
    if record:
        out.problems += _record(settings, doc, started_at)
    return out


def _record(settings: _config.Settings, doc: dict[str, Any], started_at: datetime) -> list[str]:
    from peaktrade import healthlog, jobs

    state = Path(settings.paths.state_dir)
    try:
        healthlog.append(state, doc, settings.health.history_retention)
        jobs.record(
            state,
            "ops-health",
            ok=doc["overall"] != "FAIL",
            started_at=started_at,
            finished_at=utcnow(),
            detail=f"overall {doc['overall']}",
        )
    except OSError as exc:
        return [f"{state}: cannot record the health result ({exc.strerror}); check the directory's permissions"]
    return []
