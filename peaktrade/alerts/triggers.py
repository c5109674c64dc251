"""Alert triggers: a snapshot of artifacts and health in, a list of `Alert`s out. Pure: no clock, no files.

Each trigger names the run or session, gives the numbers, and says what to do next: an operator woken at night
should be able to act on the message alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from peaktrade.alerts.model import Alert, RunFacts, SessionFacts, Snapshot
from peaktrade.clock import parse_ts
from peaktrade.config import AlertsConfig


def evaluate(snap: Snapshot, cfg: AlertsConfig, base_url: str = "") -> list[Alert]:
    """Every alert that holds at `snap.now`, sorted by key (deterministic)."""
    links = _Links(base_url)
    alerts: list[Alert] = []
    for run in snap.runs:
        alerts += run_alerts(run, cfg, links)
    for session in snap.sessions:
        alert = session_alert(session, links)
        if alert is not None:
            alerts.append(alert)
    alerts += health_alerts(snap.health, links)
    down = exchange_alert(snap.health_history, snap.now, cfg.exchange_down_seconds, links)
    if down is not None:
        alerts.append(down)
    return sorted(alerts, key=lambda a: a.key)


class _Links:
    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/") + "/" if base_url else ""

    def __call__(self, rel: str) -> str | None:
        return self.base + rel if self.base else None

    def run(self, run_id: str) -> str | None:
        return self(f"runs/{run_id}.html")

    def session(self, session_id: str) -> str | None:
        return self(f"sessions/{session_id}.html")


def _who(run: RunFacts) -> str:
    session = f", session `{run.session_id}`" if run.session_id else ""
    return f"Run `{run.run_id}` ({run.mode} {run.strategy} {run.symbol}){session}"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run_alerts(run: RunFacts, cfg: AlertsConfig, links: _Links) -> list[Alert]:
    """Writer dead/stale, new blocked orders, drawdown and daily loss of one run."""
    out: list[Alert] = []
    common = {"run_id": run.run_id, "session_id": run.session_id, "link": links.run(run.run_id)}
    if run.writer in ("dead", "stale"):
        if run.writer == "dead":
            what = f"The writer process died: pid {run.pid} on host `{run.host}` is gone."
        else:
            what = "The writer stopped writing: its heartbeat is too old (hung, or its host is unreachable)."
        out.append(
            Alert(
                key=f"run:{run.run_id}:writer",
                severity="critical" if run.writer == "dead" else "warning",
                title=f"run {run.run_id}: writer {run.writer}",
                body=(
                    f"{_who(run)} is marked running, but no sign of life for {_age(run.heartbeat_age)}.\n\n"
                    f"{what}\n\nCheck the trading process; if it is gone, finalize the run with "
                    f"`peaktrade runs recover --run-id {run.run_id}`."
                ),
                **common,
            )
        )
    if run.blocked:
        total = sum(run.blocked.values())
        reasons = "\n".join(f"- `{code}`: {n}" for code, n in sorted(run.blocked.items(), key=lambda kv: -kv[1]))
        out.append(
            Alert(
                key=f"run:{run.run_id}:blocked",
                severity="warning",
                title=f"run {run.run_id}: {total} order(s) blocked by risk limits",
                body=(
                    f"{_who(run)}: {total} new order(s) blocked by `[live_risk]` limits since the last check.\n\n"
                    f"{reasons}\n\nReview the limits or the strategy's position size."
                ),
                kind="event",
                counts=dict(run.blocked),
                **common,
            )
        )
    active = run.status == "running"
    if active and run.drawdown is not None:
        pct = run.drawdown * 100.0
        severity = _level(pct, cfg.drawdown_warning_pct, cfg.drawdown_critical_pct)
        if severity:
            limit = cfg.drawdown_critical_pct if severity == "critical" else cfg.drawdown_warning_pct
            out.append(
                Alert(
                    key=f"run:{run.run_id}:drawdown",
                    severity=severity,
                    title=f"run {run.run_id}: drawdown {pct:.1f}%",
                    body=(
                        f"{_who(run)}: drawdown **{pct:.2f}%** from the equity peak "
                        f"(threshold {limit:g}%, `[alerts] drawdown_{severity}_pct`); equity {_num(run.equity)}."
                    ),
                    attach_run=run.run_id,
                    **common,
                )
            )
    if active and run.day_start_equity and run.equity is not None and run.day_start_equity > 0:
        loss = max(0.0, run.day_start_equity - run.equity)
        pct = loss / run.day_start_equity * 100.0
        severity = _level(pct, cfg.daily_loss_warning_pct, cfg.daily_loss_critical_pct)
        if severity:
            limit = cfg.daily_loss_critical_pct if severity == "critical" else cfg.daily_loss_warning_pct
            out.append(
                Alert(
                    key=f"run:{run.run_id}:daily_loss",
                    severity=severity,
                    title=f"run {run.run_id}: daily loss {pct:.1f}%",
                    body=(
                        f"{_who(run)}: lost **{_num(loss)}** ({pct:.2f}%) on {run.day} UTC, from "
                        f"{_num(run.day_start_equity)} to {_num(run.equity)} "
                        f"(threshold {limit:g}%, `[alerts] daily_loss_{severity}_pct`)."
                    ),
                    attach_run=run.run_id,
                    **common,
                )
            )
    return out


def _level(value: float, warning: float, critical: float) -> str | None:
    if critical > 0 and value >= critical:
        return "critical"
    if warning > 0 and value >= warning:
        return "warning"
    return None


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def session_alert(s: SessionFacts, links: _Links) -> Alert | None:
    """A failed (critical) or aborted (warning) session, announced once."""
    if s.status not in ("failed", "aborted"):
        return None
    error = f"\n\nError: `{s.error}`" if s.error else ""
    run = f" (run `{s.run_id}`)" if s.run_id else ""
    return Alert(
        key=f"session:{s.session_id}:{s.status}",
        severity="critical" if s.status == "failed" else "warning",
        title=f"session {s.session_id} {s.status}",
        body=(
            f"Session `{s.session_id}`{run}, {s.mode} {s.strategy} {s.symbol}, ended **{s.status}**.{error}\n\n"
            f"Details: `peaktrade session show {s.session_id}`."
        ),
        kind="once",
        run_id=s.run_id,
        session_id=s.session_id,
        link=links.session(s.session_id),
    )


def health_alerts(doc: dict[str, Any] | None, links: _Links) -> list[Alert]:
    """`ops health` DEGRADED (warning) or FAIL (critical); resolved when it is OK again."""
    if not doc or doc.get("overall") not in ("DEGRADED", "FAIL"):
        return []
    lines = []
    for check in doc.get("checks") or []:
        if not isinstance(check, dict) or check.get("status") not in ("warn", "fail"):
            continue
        fix = f" Fix: {check.get('fix')}" if check.get("fix") else ""
        lines.append(f"- **{check.get('status')}** `{check.get('name')}`: {check.get('message') or ''}{fix}")
    overall = doc["overall"]
    return [
        Alert(
            key="health:overall",
            severity="critical" if overall == "FAIL" else "warning",
            title=f"health {overall}",
            body=f"`peaktrade ops health` says **{overall}** (checked {doc.get('checked_at')}).\n\n"
            + "\n".join(lines),
            link=links("health.html"),
        )
    ]


def exchange_down_since(history: list[dict[str, Any]]) -> datetime | None:
    """When the `exchange` health check started failing without a pass since (None: it passes now)."""
    since = None
    for doc in reversed(history):
        status = next(
            (c.get("status") for c in doc.get("checks") or [] if isinstance(c, dict) and c.get("name") == "exchange"),
            None,
        )
        if status is None or status == "skip":
            continue  # this health run did not look at the exchange: neither proof of failure nor of recovery
        if status != "fail":
            break
        since = parse_ts(doc.get("checked_at")) or since
    return since


def exchange_alert(history: list[dict[str, Any]], now: datetime, threshold: float, links: _Links) -> Alert | None:
    """The exchange unreachable (health check `exchange` failing) for at least `threshold` seconds."""
    since = exchange_down_since(history)
    if since is None:
        return None
    seconds = (now - since).total_seconds()
    if seconds < threshold:
        return None
    message, needed = "", True
    for doc in reversed(history):
        check = next(
            (c for c in doc.get("checks") or [] if isinstance(c, dict) and c.get("name") == "exchange"), None
        )
        if check is not None:
            message = str(check.get("message") or "")
            needed = check.get("critical") is not False  # ops health marks it critical when a session needs it
            break
    return Alert(
        key="exchange:down",
        severity="critical" if needed else "warning",
        title=f"exchange unreachable for {_age(seconds)}",
        body=(
            f"The `exchange` health check has failed since {since.isoformat()} ({_age(seconds)}; threshold "
            f"{threshold:g} s, `[alerts] exchange_down_seconds`).\n\nLast message: {message}\n\n"
            + (
                "Live and testnet sessions cannot trade; check the network and the exchange's status page."
                if needed
                else "Nothing running needs the exchange now, but a live or testnet session could not start."
            )
        ),
        link=links("health.html"),
    )
