"""The two long tables of a run page (last events, execution timeline) as HTML rows, built in Python.

A run page shows ~250 rows of ~9 cells; through Jinja each cell costs a filter call, an attribute lookup and an
escape, and at 1,000 run pages that was a third of a cold `site build`. These builders write the very same
markup (the golden site tree pins it) at a fraction of the cost. Text from artifacts goes through `escape`;
numbers are formatted by the same functions the templates' filters use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup, escape

from peaktrade.views import amount, fmt_time, money

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
