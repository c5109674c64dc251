"""What the site shows about a session's or run's writer right now: its numbers from the run, and whether it is
alive (peaktrade.liveness). Pure apart from liveness's pid probe; the page wording lives here so the tile, the
tables and the run and session pages say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from peaktrade import liveness, views
from peaktrade.snapshot import LiveRunSnapshot

# state -> (badge label, badge css class, sentence for the page)
STATE_WORDS = {
    "running": ("RUNNING", "st-running", "running: heartbeat {age} ago"),
    "stale": ("STALE", "st-stale", "stale: no heartbeat for {age}; the writer may be hung or gone"),
    "dead": (
        "DEAD",
        "st-dead",
        "dead: its process is gone (last heartbeat {age} ago); `peaktrade runs recover` finalizes it",
    ),
}


def live_numbers(snapshot: LiveRunSnapshot, state: str) -> dict[str, Any]:
    """The run's current numbers as the tile, the tables and the session page show them."""
    label, css, sentence = STATE_WORDS.get(state, (views.STATUS_LABELS.get(state, state.upper()), f"st-{state}", ""))
    age = views.age_text(snapshot.heartbeat_age_seconds)
    return {
        "state": state,
        "active": state in STATE_WORDS,
        "label": label,
        "css": css,
        "sentence": sentence.format(age=age),
        "equity": snapshot.equity,
        "realized_pnl": snapshot.realized_pnl,
        "unrealized_pnl": snapshot.unrealized_pnl,
        "drawdown": snapshot.drawdown,
        "max_drawdown": snapshot.max_drawdown,
        "steps": snapshot.total_steps,
        "heartbeat_age": age,
        "heartbeat_age_seconds": snapshot.heartbeat_age_seconds,
        "last_bar_time": snapshot.last_bar_time,
    }


def session_state(
    record: Mapping[str, Any], run_live: Mapping[str, Any] | None, now: datetime, stale_seconds: float
) -> str:
    """A session's state: its run's when the run is known, else the registry record's own heartbeat."""
    if record.get("status") not in liveness.ACTIVE_STATUSES:
        return str(record.get("status") or "unknown")
    if run_live is not None:
        return str(run_live["state"])
    return liveness.writer_state(record, now, stale_seconds)


def with_live(summary: dict[str, Any], run_live: Mapping[str, Any] | None, state: str) -> dict[str, Any]:
    """A session summary for display: a running session's missing PnL and drawdown come from its run."""
    row = dict(summary)
    row["live"] = dict(run_live) if run_live is not None else None
    label, css, _ = STATE_WORDS.get(state, (views.STATUS_LABELS.get(state, state.upper()), f"st-{state}", ""))
    row["state"], row["state_label"], row["state_css"] = state, label, css
    if run_live is not None and state in STATE_WORDS:  # the run is newer than the session's last record
        for key in ("realized_pnl", "max_drawdown"):
            if run_live.get(key) is not None:
                row[key] = run_live[key]
    return row
