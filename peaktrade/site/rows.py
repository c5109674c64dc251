"""The long tables of the site (a run page's last events and execution timeline, the runs list) as HTML rows,
built in Python.

A run page shows ~250 rows of ~9 cells; through Jinja each cell costs a filter call, an attribute lookup and an
escape, and at 1,000 run pages that was a third of a cold `site build`. The runs list has a row per run and is
rendered by every build that is not quiet (a tenth of one where one run changed). These builders write the very same
markup (the golden site tree pins it) at a fraction of the cost. Text from artifacts goes through `escape`;
numbers are formatted by the same functions the templates' filters use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup, escape

from peaktrade.site.badges import mode, pnl, status
from peaktrade.site.fmt import short_time, sparkline_svg
from peaktrade.views import amount, fmt_time, money, percent, short_id

_MUTED = '<span class="muted">-</span>'
_BLOCK = '<span class="badge st-failed">BLOCK</span>'
_OK = '<span class="badge st-ok">OK</span>'
_ORDER_CSS = {"filled": "ok", "blocked": "failed"}  # anything else reads as aborted


def _pnl(value: Any) -> str:
    if value is None:
        return _MUTED
    return f'<span class="{"pos" if value >= 0 else "neg"}">{money(value)}</span>'


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float)  # Jinja's `is number` (a bool counts, as there)


def tail_rows(rows: Iterable[Mapping[str, Any]]) -> Markup:
    """`<tr>` lines of the "Last N events" table, oldest first."""
    out = []
    for r in rows:
        position = r.get("position_size")
        out.append(
            f"<tr><td>{fmt_time(r.get('ts_bar'))}</td>"
            f'<td class="num">{amount(r.get("close"))}</td>'
            f'<td class="num">{escape(r.get("signal"))}</td>'
            f'<td class="num">{"-" if position is None else f"{position:.6f}"}</td>'
            f'<td class="num">{amount(r.get("equity"))}</td>'
            f'<td class="num">{_pnl(r.get("realized_pnl"))}</td>'
            f'<td class="num">{_pnl(r.get("unrealized_pnl"))}</td>'
            f'<td class="num">{escape(r.get("orders_generated") or 0)}</td>'
            f"<td>{_BLOCK if r.get('risk_allowed') is False else _OK}</td>"
            f'<td class="wrap">{escape(r.get("risk_reasons") or "")}</td></tr>\n'
        )
    return Markup("".join(out))


def order_rows(orders: Iterable[Mapping[str, Any]]) -> Markup:
    """`<tr>` lines of the execution timeline, in the order given."""
    out = []
    for o in orders:
        qty, notional, price, fee = o.get("qty"), o.get("notional"), o.get("fill_price"), o.get("fee")
        reasons, status = o.get("reasons") or [], o.get("status")
        out.append(
            f"<tr><td>{fmt_time(o.get('ts'))}</td><td>{escape(o.get('side'))}</td>"
            f'<td class="num">{f"{qty:.6f}" if _is_number(qty) else "-"}</td>'
            f'<td class="num">{amount(notional) if _is_number(notional) else "-"}</td>'
            f'<td><span class="badge st-{_ORDER_CSS.get(status, "aborted")}">{escape(status)}</span></td>'
            f'<td class="num">{amount(price) if _is_number(price) else "-"}</td>'
            f'<td class="num">{amount(fee) if _is_number(fee) else "-"}</td>'
            f'<td class="wrap">{escape("; ").join(reasons)}</td></tr>\n'
        )
    return Markup("".join(out))


def run_list_rows(runs: Iterable[Any], live: Mapping[str, Mapping[str, Any]]) -> Markup:
    """`<tr>` lines of the runs list (`runs/index.html`): one per run snapshot, with its writer's live state."""
    out = []
    for r in runs:
        run_id, lv = escape(r.run_id), live.get(r.run_id)
        beat = f'<span class="sub">heartbeat {escape(lv["heartbeat_age"])} ago</span>' if lv and lv["active"] else ""
        out.append(
            f'<tr><td class="id"><a href="{run_id}.html" title="{run_id}">{escape(short_id(r.run_id, 26))}</a></td>'
            f"<td>{mode(r.mode)}</td><td>{status(r.status, lv['state'] if lv else r.stale)}{beat}</td>"
            f"<td>{escape(r.strategy_name)}</td>"
            f'<td>{escape(r.symbol)} <span class="muted">{escape(r.timeframe)}</span></td>'
            f"<td>{escape(short_time(r.started_at))}</td>"
            f'<td class="num">{escape(f"{r.total_steps:,}")}</td><td class="num">{escape(amount(r.equity))}</td>'
            f'<td class="num">{pnl(r.realized_pnl)}</td><td class="num">{escape(r.total_blocked_orders)}</td></tr>\n'
        )
    return Markup("".join(out))


def session_row(s: Mapping[str, Any], root: str, spark: bool = False) -> Markup:
    """One session's `<tr>` in the session lists and on Live-Track (`spark`: with its equity sparkline). The lists
    render it once per session and put it on each of the five list pages the session appears on."""
    lv = s.get("live")
    active = bool(lv and lv["active"])
    sid = escape(s["session_id"])
    if s["ended_at"]:
        end = escape(short_time(s["ended_at"]))
    elif active:
        css = "neg" if lv["state"] != "running" else ""
        end = f'<span class="{css}">heartbeat {escape(lv["heartbeat_age"])} ago</span>'
    else:
        end = "running"
    orders = "-" if s["num_orders"] is None else escape(s["num_orders"])
    if active:
        unrealized = f'<span class="sub">unrealized {escape(money(lv["unrealized_pnl"]))}</span>'
        drawdown = f'<span class="sub">now {escape(percent(lv["drawdown"]))}</span>'
        bars = f'<span class="sub">{escape(format(lv["steps"], ","))} bars</span>'
    else:
        unrealized = drawdown = bars = ""
    cells = [
        f'<tr><td class="id"><a href="{escape(root)}sessions/{sid}.html" title="{sid}">'
        f"{escape(short_id(s['session_id']))}</a></td><td>{mode(s['mode'])}</td>"
        f"<td>{status(s['status'], s.get('state', ''))}</td>"
        f'<td class="wrap2">{escape(s["strategy"] or "-")}<span class="sub">{escape(s["symbol"] or "-")}</span></td>'
        f"<td>{escape(short_time(s['started_at']))}</td>\n<td>{end}</td>\n"
        f'<td class="num">{pnl(s["realized_pnl"])}{unrealized}</td>'
        f'<td class="num">{escape(percent(s["max_drawdown"]))}{drawdown}</td><td class="num">{orders}{bars}</td>\n'
    ]
    if spark:
        equity = f'<span class="sub">{escape(amount(lv["equity"]))}</span>' if lv and lv["equity"] is not None else ""
        cells.append(f"<td>{sparkline_svg(s.get('spark', []))}{equity}</td>")
    cells.append("</tr>\n")
    return Markup("".join(cells))


def page_navs(names: list[str]) -> list[Markup]:
    """The page-number nav of each page of a paged list (`names`: its pages' file names, first page first), the
    page's own number in bold."""
    links = [f'<a href="{escape(href)}">{n}</a> ' for n, href in enumerate(names, 1)]
    pages = range(1, len(names) + 1)
    return [Markup(f"{''.join(links[: n - 1])}<strong>{n}</strong> {''.join(links[n:])}") for n in pages]
