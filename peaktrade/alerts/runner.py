"""`peaktrade alerts run`: gather, evaluate, gate, route, deliver, record. Cron calls it every 1 to 5 minutes.

Order of work, under the `alerts-run` job lock (a second concurrent run exits 75, so nothing is sent twice):
gather the snapshot, run the triggers and the gate, put the passed items into the outbox of every target whose
tags they are routed to, send one message per target (its pending items included, with their original
times), keep what could not be delivered, then write gate, outbox and history. A failing target never stops
the run; it is counted and its messages wait for the next run, up to `[alerts] outbox_max_age_hours`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from peaktrade import jobs
from peaktrade.alerts import gate as G
from peaktrade.alerts import store
from peaktrade.alerts.gather import Cursor, gather
from peaktrade.alerts.triggers import evaluate
from peaktrade.clock import iso, parse_ts, utcnow
from peaktrade.config import Settings
from peaktrade.errors import ArtifactError
from peaktrade.ids import ID_PATTERN
from peaktrade.lock import job_lock


@dataclass
class Preview:
    target: str
    title: str
    body: str
    notify_type: str


@dataclass
class Outcome:
    targets: str = ""  # "2 targets: json, mailto"; empty when there was nothing to send
    raised: int = 0  # alerts that hold now
    passed: int = 0  # items that passed the gate (new, repeated, escalated, resolved, digests)
    suppressed: int = 0
    resolved: int = 0
    messages: int = 0  # delivery attempts (one per target with something to send)
    delivered: int = 0
    failed: int = 0
    pending: int = 0  # items still in the outbox
    expired: int = 0
    unrouted: int = 0
    dry_run: bool = False
    previews: list[Preview] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def summary(self) -> str:
        verb = "would send" if self.dry_run else "sent"
        text = (
            f"alerts: {self.raised} holding, {self.passed} passed the gate ({self.resolved} resolved), "
            f"{self.suppressed} suppressed; "
        )
        if self.targets:
            text += f"{verb} {self.messages} message(s) to {self.targets}: "
            text += f"{self.delivered} delivered, {self.failed} failed, "
        else:
            text += "nothing to send, "
        text += f"{self.pending} item(s) pending"
        if self.expired:
            text += f", {self.expired} expired (older than [alerts] outbox_max_age_hours)"
        return text


def run(settings: Settings, *, now: datetime | None = None, dry_run: bool = False) -> Outcome:
    """One `alerts run`; raises `LockHeld` (exit 75) when another one is running. `dry_run` writes nothing."""
    state_dir = Path(settings.paths.state_dir)
    if dry_run:
        return _Run(settings, now or utcnow(), True).go()
    started = utcnow()
    with job_lock(state_dir, "alerts-run"):
        outcome = _Run(settings, now or started, False).go()
        jobs.record(
            state_dir,
            "alerts-run",
            ok=outcome.ok,
            started_at=started,
            finished_at=utcnow(),
            detail=outcome.summary(),
        )
    return outcome


class _Run:
    def __init__(self, settings: Settings, now: datetime, dry_run: bool):
        self.settings = settings
        self.cfg = settings.alerts
        self.state_dir = Path(settings.paths.state_dir)
        self.now = now
        self.dry = dry_run
        self.out = Outcome(dry_run=dry_run)
        self.records: list[dict[str, Any]] = []
        self.charts: dict[str, Path | None] = {}

    def go(self) -> Outcome:
        cfg, out = self.cfg, self.out
        gate_state, problem = store.load_gate(self.state_dir)
        outbox, problem2 = store.load_outbox(self.state_dir)
        out.problems += [p for p in (problem, problem2) if p]
        cursor = Cursor(gate_state["offsets"], gate_state["day_equity"], gate_state["runs"])
        snap, cursor = gather(self.settings, cursor, self.now)
        out.problems += snap.problems
        alerts = evaluate(snap, cfg, self.settings.site.base_url)
        result = G.apply(gate_state["keys"], alerts, self.now, cfg.cooldown_seconds, snap.unknown)
        out.raised = len({a.key for a in alerts})
        out.passed = len(result.items)
        out.suppressed = result.suppressed
        out.resolved = sum(1 for i in result.items if i["status"] == "resolved")
        self.records += result.records
        new_gate = {
            "keys": result.keys,
            "offsets": cursor.offsets,
            "day_equity": cursor.day_equity,
            "runs": cursor.runs,
        }
        if not result.items and not outbox["targets"]:
            # the usual cron run: nothing passed the gate and nothing waits; apprise is not even imported
            if not self.dry:
                if new_gate != gate_state:
                    store.save_gate(self.state_dir, new_gate)
                store.append_history(self.state_dir, self.records, cfg.history_limit)
            return out
        from peaktrade.alerts.delivery import describe, load_targets

        targets, bad = load_targets(cfg)
        out.targets = describe(targets, bad)
        routes = {"info": cfg.route_info, "warning": cfg.route_warning, "critical": cfg.route_critical}
        queues = {tid: dict(v, items=list(v["items"])) for tid, v in outbox["targets"].items()}
        for item in result.items:
            wanted = G.tags_for(item["severity"], routes)
            hit = [t for t in targets if t.tags & wanted]
            if not hit:
                out.unrouted += 1
            for t in hit:
                queues.setdefault(t.id, {"name": t.name, "items": []})["items"].append(item)
        if out.unrouted and targets:
            out.problems.append(
                f"{out.unrouted} alert item(s) matched no target: no target has a tag listed in [alerts] "
                "route_info/route_warning/route_critical; add the tag to a target or to the route"
            )
        if not self.dry and result.items:
            # write ahead: a crash while sending must not lose what passed the gate (sent again next run)
            store.save_outbox(self.state_dir, {**outbox, "targets": {k: v for k, v in queues.items() if v["items"]}})
            store.save_gate(self.state_dir, new_gate)
        failing: list[str] = []
        by_id = {t.id: t for t in targets}
        for tid in sorted(queues):
            queue = queues[tid]
            queue["items"] = self._expire(queue["items"], queue["name"])
            target = by_id.get(tid)
            if not queue["items"] or target is None:
                continue  # a target no longer configured: its items wait until they expire
            message = G.compose(queue["items"], cfg.title_prefix, self.now)
            out.messages += 1
            if self.dry:
                out.previews.append(Preview(target.name, message.title, message.body, message.notify_type))
                continue
            from peaktrade.alerts.delivery import deliver

            attach = [p for p in (self._chart(r) for r in message.attach_runs) if p is not None]
            if deliver(target, message.title, message.body, message.notify_type, attach):
                out.delivered += 1
                self.records += [self._delivery_record(i, "delivered", target.name) for i in queue["items"]]
                queue["items"] = []
            else:
                out.failed += 1
                failing.append(target.name)
                self.records.append(
                    {
                        "at": iso(self.now),
                        "event": "undelivered",
                        "key": "",
                        "severity": "info",
                        "title": f"{message.title} ({len(queue['items'])} item(s) kept in the outbox)",
                        "target": target.name,
                    }
                )
        if self.dry and not targets and result.items:
            message = G.compose(result.items, cfg.title_prefix, self.now)
            out.previews.append(Preview("(no targets)", message.title, message.body, message.notify_type))
        out.pending = sum(len(q["items"]) for q in queues.values())
        if self.dry:
            return out
        store.save_outbox(
            self.state_dir,
            store.delivery_outcome(
                {**outbox, "targets": {k: v for k, v in queues.items() if v["items"]}}, self.now, failing
            ),
        )
        if new_gate != gate_state and not result.items:
            store.save_gate(self.state_dir, new_gate)
        store.append_history(self.state_dir, self.records, cfg.history_limit)
        return out

    def _expire(self, items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
        limit = self.now - timedelta(hours=self.cfg.outbox_max_age_hours)
        kept = []
        for item in items:
            raised = parse_ts(item.get("raised_at")) if isinstance(item.get("raised_at"), str) else None
            if raised is not None and raised < limit:
                self.out.expired += 1
                self.records.append(self._delivery_record(item, "expired", name))
            else:
                kept.append(item)
        return kept

    def _delivery_record(self, item: dict[str, Any], event: str, target: str) -> dict[str, Any]:
        return {
            "at": iso(self.now),
            "event": event,
            "key": item.get("key"),
            "severity": item.get("severity"),
            "title": item.get("title"),
            "run_id": item.get("run_id"),
            "session_id": item.get("session_id"),
            "link": item.get("link"),
            "raised_at": item.get("raised_at"),
            "target": target,
        }

    def _chart(self, run_id: str) -> Path | None:
        """The run's equity chart as PNG in state/alerts/charts/ (matplotlib loaded only here), or None."""
        if not self.cfg.attach_charts or not ID_PATTERN.match(run_id):
            return None
        if run_id in self.charts:
            return self.charts[run_id]
        path = None
        try:
            from peaktrade.artifacts import RunReader
            from peaktrade.reports import plot_png

            events = RunReader(Path(self.settings.paths.runs_dir) / run_id).events(["ts_bar", "equity"])
            png = plot_png(
                events.column("ts_bar").to_pylist(),
                events.column("equity").to_pylist(),
                f"Equity ({self.settings.general.base_currency})",
            )
            path = store.save_chart(self.state_dir, run_id, png)
        except (ArtifactError, OSError, ValueError) as exc:
            self.out.problems.append(f"equity chart of run {run_id} not attached: {exc}")
        self.charts[run_id] = path
        return path


def preview_json(outcome: Outcome) -> str:
    """The dry-run previews as JSON (for scripts)."""
    return json.dumps([p.__dict__ for p in outcome.previews], indent=2, sort_keys=True)
