"""Inline SVG line charts with min/max downsampling and labelled axes. Pure; only numbers enter the SVG."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime


def downsample_minmax(xs: Sequence[float], ys: Sequence[float], buckets: int = 300) -> tuple[list, list]:
    """Keep each bucket's minimum and maximum (in time order), so spikes survive (striding would drop them)."""
    n = len(ys)
    if n <= 2 * buckets:
        return list(xs), list(ys)
    out_x, out_y = [], []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        seg = ys[lo:hi]
        i_min = lo + min(range(len(seg)), key=seg.__getitem__)
        i_max = lo + max(range(len(seg)), key=seg.__getitem__)
        for i in sorted({i_min, i_max}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return out_x, out_y


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.2f}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def line_chart(
    times: Sequence[datetime | None],
    values: Sequence[float | None],
    *,
    title: str,
    percent: bool = False,
    width: int = 720,
    height: int = 180,
    colour: str = "#2a7",
) -> str:
    """An SVG chart of `values` over `times` (x from the real timestamps, so gaps show as gaps in time)."""
    pts = [(t.timestamp(), float(v)) for t, v in zip(times, values) if t is not None and v is not None]
    left, right, top, bottom = 70, 10, 22, 24
    w, h = width - left - right, height - top - bottom
    head = (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">'
        f'<text x="{left}" y="14" class="chart-title">{html.escape(title)}</text>'
    )
    if not pts:
        return head + f'<text x="{left + w / 2}" y="{top + h / 2}" text-anchor="middle">no data yet</text></svg>'
    xs, ys = downsample_minmax([p[0] for p in pts], [p[1] for p in pts])
    x0, x1 = xs[0], xs[-1]
    y0, y1 = min(ys), max(ys)
    xspan, yspan = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    coords = " ".join(
        f"{left + (x - x0) / xspan * w:.1f},{top + h - (y - y0) / yspan * h:.1f}" for x, y in zip(xs, ys)
    )
    start = _utc(x0)
    end = _utc(x1)
    return (
        head
        + f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" class="axis"/>'
        + f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" class="axis"/>'
        + f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="tick">{_fmt(y1, percent)}</text>'
        + f'<text x="{left - 4}" y="{top + h}" text-anchor="end" class="tick">{_fmt(y0, percent)}</text>'
        + f'<text x="{left}" y="{height - 6}" class="tick">{start}</text>'
        + f'<text x="{left + w}" y="{height - 6}" text-anchor="end" class="tick">{end} UTC</text>'
        + f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" points="{coords}"/>'
        + f'<text x="{left + w}" y="14" text-anchor="end" class="tick">last {_fmt(ys[-1], percent)}</text></svg>'
    )


def _utc(epoch: float) -> str:
    from datetime import UTC

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")
