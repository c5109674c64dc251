"""What the alert triggers look at and what they raise: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SEVERITIES = ("info", "warning", "critical")
RANK = {name: i for i, name in enumerate(SEVERITIES)}

# How the gate treats a key:
# - condition: holds while raised; repeats after the cool-down; one "resolved" message when it is no longer raised;
# - event: something happened (new blocked orders); repeats are held and summed, never "resolved";
# - once: announced a single time (a failed session), then silent while it keeps being raised.
KINDS = ("condition", "event", "once")


@dataclass(frozen=True)
class Alert:
    """One raised alert. `key` is stable across cron runs (e.g. `run:<run_id>:writer`)."""

    key: str
    severity: str
    title: str
    body: str  # Markdown with the numbers and the run/session id
    kind: str = "condition"
    run_id: str | None = None
    session_id: str | None = None
    link: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # summed while held back (event alerts)
    attach_run: str | None = None  # the run whose equity chart may be attached


@dataclass(frozen=True)
class RunFacts:
    """One run as the triggers need it (gathered from meta.json, orders.jsonl and events by the runner)."""

    run_id: str
    session_id: str | None
    mode: str
    strategy: str
    symbol: str
    status: str  # meta status
    writer: str  # liveness.writer_state: running | stale | dead | a final status
    heartbeat_age: float | None
    pid: Any = None
    host: Any = None
    error: str | None = None
    equity: float | None = None
    drawdown: float | None = None  # fraction of the peak
    day: str | None = None  # UTC day of the newest bar
    day_start_equity: float | None = None
    blocked: dict[str, int] = field(default_factory=dict)  # reason code -> new blocked orders since last run


@dataclass(frozen=True)
class SessionFacts:
    session_id: str
    run_id: str | None
    status: str
    mode: str
    strategy: str
    symbol: str
    ended_at: datetime | None
    error: str | None = None


@dataclass
class Snapshot:
    """Everything the triggers read, gathered at one moment `now`."""

    now: datetime
    runs: list[RunFacts] = field(default_factory=list)
    sessions: list[SessionFacts] = field(default_factory=list)
    health: dict[str, Any] | None = None  # state/health/latest.json (None: `ops health` never ran or unreadable)
    health_history: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    unknown: set[str] = field(default_factory=set)  # key prefixes whose state could not be read this time
    problems: list[str] = field(default_factory=list)
