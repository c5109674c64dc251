"""A run's page and its files (`runs/<id>.html`, its chart script, `api/runs/<id>/*.json`): the only part of a
site build that reads events, so the only one that imports pyarrow and numpy. A build imports this module only
where run pages are rendered: in its worker processes, or in-process for a small build (`site.render`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from peaktrade import views
from peaktrade.artifacts import legacy
from peaktrade.artifacts.reader import RunReader
from peaktrade.artifacts.schema import EVENT_SCHEMA
from peaktrade.charts import line_chart
from peaktrade.errors import ArtifactError
from peaktrade.site import chartdata, model
from peaktrade.site.rows import order_rows, tail_rows

if TYPE_CHECKING:
    from peaktrade.site.render import Build, _Links

TAIL_ROWS = 50
CHART_COLUMNS = ["ts_bar", "open", "high", "low", "close", "price", "equity", "drawdown", "position_size"]
TAIL_COLUMNS = [  # what the run page's tail table and api/runs/<id>/tail.json show
    "ts_bar",
    "close",
    "signal",
    "position_size",
    "equity",
    "realized_pnl",
    "unrealized_pnl",
    "orders_generated",
    "risk_allowed",
    "risk_reasons",
]
TIMELINE_ORDERS = 200


def write_run(b: Build, info: model.RunInfo, links: _Links) -> list[str]:
    """Render one run's page and files through the build `b` (its writes and alerts); returns the problems met."""
    run_dir = Path(b.cfg.paths.runs_dir) / info.run_id
    s = info.snapshot
    columns = list(dict.fromkeys(CHART_COLUMNS + TAIL_COLUMNS))
    unread: list[str] = []  # the page is written all the same (the runs list and its session link to it)
    reader = RunReader(run_dir, info.meta, summary_cache=b.summaries)
    try:
        # the meta.json gathered for the snapshot: charts and tail stop at its commit point, like the tile
        # one read for the charts and the tail (reading the file twice was a sixth of a cold build)
        events = reader.events(columns)
    except (ArtifactError, OSError) as exc:
        unread.append(f"{run_dir}: {exc}")
        events = pa.table({name: pa.array([], EVENT_SCHEMA.field(name).type) for name in columns})
    try:
        orders = reader.orders()
    except (ArtifactError, OSError) as exc:
        unread.append(f"{run_dir}: {exc}")
        orders = []
    series = events.select(CHART_COLUMNS)
    # to_rows, not to_pylist: pyarrow imports pandas (0.3 s per process) for zone-aware timestamps
    tail = legacy.to_rows(events.select(TAIL_COLUMNS).slice(max(0, events.num_rows - TAIL_ROWS)))
    times = _numbers(series.column("ts_bar").cast(pa.int64()))
    col = {name: _numbers(series.column(name)) for name in series.column_names if name != "ts_bar"}
    charts = "".join(
        [
            line_chart(times, col["equity"], title=f"Equity ({b.cfg.general.base_currency})"),
            line_chart(times, col["drawdown"], title="Drawdown", percent=True, colour="#c33"),
            line_chart(times, col["position_size"], title="Position (base units)", colour="#36c"),
        ]
    )
    grid = chartdata.series(np.floor(times / 1000.0), col)
    marks = chartdata.markers(orders, grid["t"])
    chart = {"currency": b.cfg.general.base_currency, "symbol": s.symbol, **grid, **marks}
    b._write(f"runs/{info.run_id}.chart.js", chartdata.chart_script(chart).encode())
    b._json(f"api/runs/{info.run_id}/sparkline.json", chartdata.sparkline_points(col["equity"]))
    age = views.age_text(s.heartbeat_age_seconds)
    b._json(f"api/runs/{info.run_id}/snapshot.json", model.run_snapshot_json(s))
    b._json(f"api/runs/{info.run_id}/tail.json", model.tail_json(tail))
    run_alerts = b.alerts_by_run.get(info.run_id, [])
    b._json(f"api/runs/{info.run_id}/alerts.json", run_alerts)
    session_id = info.meta.get("session_id")
    shown_orders = list(reversed(orders[-TIMELINE_ORDERS:]))
    b._page(
        f"runs/{info.run_id}.html",
        "run.html.j2",
        s.status == "running",
        active="runs",
        s=s,
        charts=charts,
        chart=chart,
        lv=b.live[info.run_id],
        tail=tail,
        tail_rows=tail_rows(tail),
        funnel=views.funnel(info.totals, orders),
        orders=shown_orders,
        order_rows=order_rows(shown_orders),
        orders_total=len(orders),
        age=age,
        data_source=info.meta.get("data_source") or "-",
        session_id=session_id if session_id in links.session_ids else None,
        alerts=run_alerts,
        unread=unread,
    )
    return list(dict.fromkeys(unread + reader.problems))


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """A column as float64 with NaN for nulls, without going through Python objects. Read from the Arrow buffers
    directly: pyarrow's own to_numpy imports pandas (0.3 s per process) to place the NaNs."""
    parts = []
    for chunk in column.cast(pa.float64()).chunks:
        if not len(chunk):
            continue
        data, offset = chunk.buffers()[1], chunk.offset
        values = np.frombuffer(data, dtype=np.float64, count=len(chunk), offset=offset * 8)
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(chunk.buffers()[0], dtype=np.uint8), bitorder="little")
            values = np.where(bits[offset : offset + len(chunk)].astype(bool), values, np.nan)
        parts.append(values)
    return np.concatenate(parts) if parts else np.empty(0)
