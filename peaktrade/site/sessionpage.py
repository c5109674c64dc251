"""A session's page (`sessions/<id>.html`), built in Python.

A cold build writes one per session, 10,000 of them at the scale DESIGN.md §8 sets. Through Jinja each cost
~0.4 ms: 159 template yields, 70 escapes and the header and footer of `base.html.j2` rendered again every time,
though they are the same on every session page of a build. Here the header and footer are rendered once per build
from `base.html.j2` itself (`Shell`) and the body is written directly: ~0.1 ms a page. The golden site tree
pins the markup byte for byte, as it was when Jinja wrote it. Text from records goes through `escape`; numbers
are formatted by the functions the templates' filters use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import escape

from peaktrade import views
from peaktrade.site.badges import ended, mode, pnl, status
from peaktrade.site.fmt import limit_text, metric_label, metric_text, money_ccy

_TITLE = "<!--peaktrade:title-->"  # markers no rendered header can hold: text from outside is escaped there
_BODY = "<!--peaktrade:body-->"
_SHELL = "{% extends 'base.html.j2' %}{% block title %}" + _TITLE + "{% endblock %}{% block body %}" + _BODY
_SHELL += "{% endblock %}"
_NO_CLI = '<p class="muted">not recorded</p>'


class Shell:
    """`base.html.j2` around a page's title and body, rendered once per page depth, refresh and active tab."""

    def __init__(self, env: Any, base: Mapping[str, Any]):
        self._template = env.from_string(_SHELL)
        self._base = base
        self._parts: dict[tuple[str, Any, str], tuple[str, str, str]] = {}

    def page(self, root: str, refresh: Any, active: str, title: str, body: str) -> str:
        """The whole page; `title` and `body` are HTML already (escaped by the caller)."""
        key = (root, refresh, active)
        parts = self._parts.get(key)
        if parts is None:
            text = self._template.render(**self._base, root=root, refresh=refresh, active=active)
            pieces = [piece for marked in text.split(_TITLE) for piece in marked.split(_BODY)]
            if len(pieces) != 3 or text.find(_TITLE) > text.find(_BODY):
                # each block must be rendered once, the title first; text from outside is escaped in the header
                raise RuntimeError("base.html.j2 must render its title block once, then its body block once")
            parts = self._parts[key] = (pieces[0], pieces[1], pieces[2])
        head, middle, tail = parts
        return f"{head}{title}{middle}{body}{tail}"


def title(s: Mapping[str, Any]) -> str:
    return str(escape(s["session_id"]))


def body(
    s: Mapping[str, Any], *, error: str | None, notes: str | None, run_link: bool, config_json: str, currency: str
) -> str:
    """The page's `<main>`: `s` is a session detail with its live numbers (`live.with_live`)."""
    lv = s["live"]
    active = bool(lv and lv["active"])
    out = [f"<h1>Session {escape(s['session_id'])}</h1>\n"]
    if lv and lv["state"] in ("stale", "dead"):
        out.append(
            f'<div class="warnbox"><span class="badge {escape(lv["css"])}">{escape(lv["label"])}</span>'
            f" This session is {escape(lv['sentence'])}.</div>"
        )
    if error:
        out.append(f'<div class="errbox"><strong>Error:</strong> {escape(error)}</div>')
    beat = f' <span class="live">heartbeat {escape(lv["heartbeat_age"])} ago</span>' if active else ""
    out.append(
        '<div class="tile" id="session-summary">\n'
        f'<div><span class="lbl">Mode</span>{mode(s["mode"])}</div>'
        f'<div><span class="lbl">Status</span>{status(s["status"], s["state"])}{beat}</div>\n'
        f'<div><span class="lbl">Strategy · symbol</span>{escape(s["strategy"] or "-")} · '
        f"{escape(s['symbol'] or '-')}</div>"
        f'<div><span class="lbl">Environment</span>{escape(s["environment"])}</div>\n'
        f'<div><span class="lbl">Start → end</span>{escape(views.fmt_time(s["started_at"]))} → '
        f"{ended(s['ended_at'], s['status'], s['state'])}</div>\n"
    )
    if active:
        out.append(
            f'<div><span class="lbl">Equity</span>{escape(money_ccy(lv["equity"], currency))}</div>\n'
            f'<div><span class="lbl">Realized PnL</span>{pnl(lv["realized_pnl"], currency)}</div>'
            f'<div><span class="lbl">Unrealized PnL</span>{pnl(lv["unrealized_pnl"], currency)}</div>\n'
            f'<div><span class="lbl">Drawdown now (max)</span>{escape(views.percent(lv["drawdown"]))}'
            f" ({escape(views.percent(lv['max_drawdown']))})</div>\n"
            f'<div><span class="lbl">Bars processed</span>{escape(format(lv["steps"], ","))}</div>\n'
        )
    else:
        out.append(
            f'<div><span class="lbl">Realized PnL</span>{pnl(s["realized_pnl"], currency)}</div>'
            f'<div><span class="lbl">Max drawdown</span>{escape(views.percent(s["max_drawdown"]))}</div>\n'
        )
    run = _run(s["run_id"], run_link)
    out.append(f'<div style="grid-column:span 2"><span class="lbl">Run</span>{run}</div>\n</div>\n')
    if notes:
        out.append(f'<div class="notebox"><strong>Notes:</strong> {escape(notes)}</div>')
    muted = ' <span class="muted">(recorded by the session when it last wrote its record; live numbers above)</span>'
    out.append(f"<h2>Metrics{muted if active else ''}</h2>\n")
    metrics = s["metrics"]
    if metrics:
        rows = "".join(
            f'<tr><td>{escape(metric_label(k))}</td><td class="num">{escape(metric_text(k, v, currency))}</td>'
            f'<td class="muted">{escape(k)}</td></tr>'
            for k, v in sorted(metrics.items(), key=_dictsort)
        )
        out.append(f'<table class="kv"><tbody>{rows}</tbody></table>')
    else:
        out.append('<p class="muted">none recorded yet</p>')
    out.append("<h2>Risk limits</h2>\n")
    if s["risk_limit_details"]:
        rows = "".join(
            f"<tr><td>{escape(metric_label(d['limit_name']))}</td>"
            f'<td class="num">{escape(limit_text(d["limit_name"], d["limit_value"], currency))}</td>'
            f'<td class="muted">{escape(d["limit_name"])}</td></tr>'
            for d in s["risk_limit_details"]
        )
        out.append(f'<table class="kv"><tbody>{rows}</tbody></table>')
    else:
        out.append('<p class="muted">none recorded</p>')
    out.append("<h2>Command line</h2>\n")
    cli_args = s["cli_args"]
    out.append(f"<pre>{escape(' '.join(map(str, cli_args)))}</pre>" if cli_args else _NO_CLI)
    out.append(f"<h2>Config (secrets redacted)</h2>\n<pre>{escape(config_json)}</pre>\n")
    return "".join(out)


def _run(run_id: Any, link: bool) -> str:
    if link:
        text = escape(views.short_id(run_id, 64))
        return f'<a href="../runs/{escape(run_id)}.html" title="{escape(run_id)}">{text}</a>'
    if run_id:
        return (
            f'<span title="{escape(run_id)}">{escape(views.short_id(run_id, 40))}</span>'
            ' <span class="muted">(no run directory)</span>'
        )
    return "-"


def _dictsort(item: tuple[Any, Any]) -> Any:
    """Jinja's `dictsort`: by key, case-insensitively."""
    key = item[0]
    return key.lower() if isinstance(key, str) else key
