"""Markdown (and optional HTML) reports for ops notes: sessions report and summary, per-run report with PNGs.

Rendering is pure (`render_*`); `write_*` functions are the I/O edge. Numbers come from `peaktrade.views`, the
same functions the site uses.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade import views
from peaktrade.atomic import write_bytes, write_text
from peaktrade.templating import environment


def render_sessions_report(
    records: Sequence[Mapping[str, Any]], *, generated_at: datetime, filters: str, currency: str
) -> str:
    env = environment("reports")
    return env.get_template("sessions_report.md.j2").render(
        records=records,
        sessions=[views.live_session_summary(r) for r in records],
        summary=views.sessions_summary(records),
        generated_at=generated_at,
        filters=filters,
        currency=currency,
    )


def render_sessions_summary(
    records: Sequence[Mapping[str, Any]], *, generated_at: datetime, filters: str, currency: str
) -> str:
    env = environment("reports")
    return env.get_template("sessions_summary.md.j2").render(
        summary=views.sessions_summary(records),
        generated_at=generated_at,
        filters=filters,
        currency=currency,
    )


def markdown_to_html(text: str, title: str) -> str:
    """A standalone HTML page. Untrusted text was escaped by the Markdown templates, so no raw HTML survives."""
    import markdown

    body = markdown.markdown(text, extensions=["tables"], output_format="html")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>body{{font-family:system-ui,sans-serif;margin:2em;}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}"
        f"</style></head><body>\n{body}\n</body></html>\n"
    )


def write_sessions_reports(
    out_dir: Path,
    records: Sequence[Mapping[str, Any]],
    *,
    summary_only: bool,
    fmt: str,
    now: datetime,
    filters: str,
    currency: str,
) -> list[Path]:
    """`<ts>_sessions_report.md|html` and `<ts>_sessions_summary.md|html`, written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    docs = [
        (
            "sessions_summary",
            "Live sessions summary",
            render_sessions_summary(records, generated_at=now, filters=filters, currency=currency),
        )
    ]
    if not summary_only:
        docs.insert(
            0,
            (
                "sessions_report",
                "Live sessions report",
                render_sessions_report(records, generated_at=now, filters=filters, currency=currency),
            ),
        )
    written = []
    for name, title, text in docs:
        if fmt in ("markdown", "both"):
            path = out_dir / f"{stamp}_{name}.md"
            write_text(path, text)
            written.append(path)
        if fmt in ("html", "both"):
            path = out_dir / f"{stamp}_{name}.html"
            write_text(path, markdown_to_html(text, title))
            written.append(path)
    return written


def write_run_report(
    run_dir: Path, out_dir: Path, *, now: datetime, currency: str, problems: list[str] | None = None
) -> Path:
    """`out_dir/report.md` with `equity.png` and `drawdown.png` beside it; returns the report's path.

    What had to be skipped while reading the run (file and field named) is appended to `problems`.
    """
    from peaktrade.artifacts import RunReader
    from peaktrade.monitoring import load_run_snapshot

    reader = RunReader(run_dir)
    snap = load_run_snapshot(run_dir, now=now)
    events = reader.events(["ts_bar", "equity", "drawdown"])
    out_dir.mkdir(parents=True, exist_ok=True)
    xs = events.column("ts_bar").to_pylist()
    write_bytes(out_dir / "equity.png", plot_png(xs, events.column("equity").to_pylist(), f"Equity ({currency})"))
    dd = [None if v is None else -100.0 * v for v in events.column("drawdown").to_pylist()]
    write_bytes(out_dir / "drawdown.png", plot_png(xs, dd, "Drawdown (%)", fill=True))
    text = (
        environment("reports")
        .get_template("run_report.md.j2")
        .render(
            snap=snap,
            run_dir=str(run_dir),
            params=reader.meta.get("strategy_params") or {},
            data_source=reader.meta.get("data_source") or "-",
            funnel=views.funnel(reader.totals(), reader.orders()),
            tail=reader.tail(15).to_pylist(),
            generated_at=now,
            currency=currency,
        )
    )
    path = out_dir / "report.md"
    write_text(path, text)
    if problems is not None:
        problems += reader.problems + [p for p in snap.problems if p not in reader.problems]
    return path


def plot_png(xs: list, ys: list, ylabel: str, *, fill: bool = False) -> bytes:
    """One line chart as PNG bytes (matplotlib, imported here only)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.6), dpi=100)
    ax = fig.add_subplot()
    points = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None and math.isfinite(y)]
    if points:
        px, py = zip(*points)
        ax.plot(px, py, linewidth=1.0, color="#2a7")
        if fill:
            ax.fill_between(px, py, 0, color="#d55", alpha=0.3, linewidth=0)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("bar time (UTC)")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
