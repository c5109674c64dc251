"""Inline SVG line charts with min/max downsampling and labelled axes. Pure; only numbers enter the SVG."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import numpy as np


def downsample_minmax(xs: np.ndarray, ys: np.ndarray, buckets: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Keep each bucket's minimum and maximum (in time order), so spikes survive (striding would drop them).

    The first and the final point are always kept: the final one is the "last" value and the end of the time
    axis, and it is rarely its bucket's minimum or maximum.
    """
    idx = minmax_indices(ys, buckets)
    return xs[idx], ys[idx]


def minmax_indices(ys: np.ndarray, buckets: int = 300) -> np.ndarray:
    """Sorted indices into `ys` that `downsample_minmax` keeps (all of them when `ys` is short)."""
    n = len(ys)
    if n <= 2 * buckets:
        return np.arange(n)
    k = n // buckets
    body = ys[: k * buckets].reshape(buckets, k)
    base = np.arange(buckets) * k
    idx = [base + body.argmin(axis=1), base + body.argmax(axis=1), np.array([0, n - 1])]
    if k * buckets < n:  # the remainder forms one more bucket
        tail = ys[k * buckets :]
        idx.append(np.array([k * buckets + tail.argmin(), k * buckets + tail.argmax()]))
    return np.unique(np.concatenate(idx))


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.2f}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def line_chart(
    times_ms: np.ndarray,
    values: np.ndarray,
    *,
    title: str,
    percent: bool = False,
    width: int = 1200,
    height: int = 200,
    colour: str = "#2a7",
) -> str:
    """An SVG chart of `values` over epoch-millisecond `times_ms` (x from the real timestamps, so gaps show)."""
    times_ms = np.asarray(times_ms, dtype="float64")
    values = np.asarray(values, dtype="float64")
    keep = np.isfinite(times_ms) & np.isfinite(values)
    xs_all, ys_all = times_ms[keep], values[keep]
    left, right, top, bottom = 70, 10, 22, 24
    w, h = width - left - right, height - top - bottom
    label = html.escape(title)
    head = (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{label}">'
        f'<text x="{left}" y="14" class="chart-title">{label}</text>'
    )
    if not len(xs_all):
        return head + f'<text x="{left + w / 2}" y="{top + h / 2}" text-anchor="middle">no data yet</text></svg>'
    xs, ys = downsample_minmax(xs_all, ys_all)
    x0, x1 = float(xs[0]), float(xs[-1])
    y0, y1 = float(ys.min()), float(ys.max())
    px = left + (xs - x0) / ((x1 - x0) or 1.0) * w
    py = top + h - (ys - y0) / ((y1 - y0) or 1.0) * h
    xy = np.empty(2 * len(px))
    xy[0::2], xy[1::2] = px, py
    coords = ("%.1f,%.1f " * len(px) % tuple(xy.tolist()))[:-1]  # one format call: 3 charts per run page
    return (
        head
        + f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" class="axis"/>'
        + f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" class="axis"/>'
        + f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="tick">{_fmt(y1, percent)}</text>'
        + f'<text x="{left - 4}" y="{top + h}" text-anchor="end" class="tick">{_fmt(y0, percent)}</text>'
        + f'<text x="{left}" y="{height - 6}" class="tick">{_utc(x0)}</text>'
        + f'<text x="{left + w}" y="{height - 6}" text-anchor="end" class="tick">{_utc(x1)} UTC</text>'
        + f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" points="{coords}"/>'
        + f'<text x="{left + w}" y="14" text-anchor="end" class="tick">last {_fmt(float(ys[-1]), percent)}</text>'
        + "</svg>"
    )


def _utc(epoch_ms: float) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000.0, UTC).strftime("%Y-%m-%d %H:%M")
