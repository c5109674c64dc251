"""The badges every list shows per row (mode, status, PnL) and a session's end, as HTML: template globals of the site
(`peaktrade.templating`). Python, not Jinja macros: a macro call costs ~15 microseconds, and the runs list
alone makes 3,000 of them on every build. Text from artifacts is escaped here, as autoescaping would.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from peaktrade import views

MODES = ("shadow", "paper", "testnet", "live")


def mode(m: Any) -> Markup:
    kind = m if m in MODES else "unknown"
    return Markup(f'<span class="badge mode-{escape(kind)}">{escape(m)}</span>')


def status(s: Any, state: Any = "") -> Markup:
    """A session's or run's status; `state` (a writer state word, or True for an old-style stale flag) wins."""
    if state == "dead":
        return Markup('<span class="badge st-dead" title="its process is gone">DEAD</span>')
    if state == "stale" or state is True:
        return Markup('<span class="badge st-stale" title="no heartbeat for too long">STALE</span>')
    if s == "started" or s == "running":
        return Markup('<span class="badge st-running">RUNNING</span>')
    return Markup(f'<span class="badge st-{escape(s)}">{escape(views.STATUS_LABELS.get(s, s))}</span>')


def pnl(v: Any, ccy: Any = "") -> Markup:
    """Signed money, green or red; `-` when missing."""
    if v is None:
        return Markup('<span class="muted">-</span>')
    unit = f" {escape(ccy)}" if ccy else ""
    return Markup(f'<span class="{"pos" if v >= 0 else "neg"}">{escape(views.money(v))}{unit}</span>')


def ended(at: Any, s: Any, state: Any = "") -> Markup:
    """When a session or run ended; else why it has no end (its writer is stale or dead, or it runs)."""
    if at:
        return Markup(escape(views.fmt_time(at)))
    if state in ("stale", "dead"):
        return Markup(f"{escape(state)} (no end recorded)")
    if s == "started" or s == "running":
        return Markup("running")
    return escape(s)
