"""Normalize event tables to schema_version 1, including runs written by the original Peak_Trade system.

Peak_Trade wrote one `events.parquet` or `events.csv` with ISO-string timestamps (sometimes naive), no cash or
equity, and aliases such as `orders_count` and `pnl`. Naive timestamps are taken as UTC.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from datetime import UTC
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from peaktrade.artifacts import schema as S

ALIASES = {"orders_generated": "orders_count", "realized_pnl": "pnl"}


TOTALS_COLUMNS = (
    "orders_generated",
    "orders_filled",
    "orders_rejected",
    "orders_blocked",
    "risk_allowed",
    "signal_changed",
    "drawdown",
    "equity",
)


def normalize(table: pa.Table, columns: Iterable[str] | None = None) -> pa.Table:
    """A table with exactly `EVENT_SCHEMA`'s columns and types; missing columns are null.

    With `columns`, only those (in `EVENT_SCHEMA` order) are converted: converting text timestamps is the
    expensive part, and charts or totals need only a few columns.
    """
    if table.schema.equals(S.EVENT_SCHEMA, check_metadata=False):
        return table.select([f.name for f in S.EVENT_SCHEMA if f.name in set(columns)]) if columns else table
    n = table.num_rows
    names = set(table.column_names)
    wanted = set(columns) if columns is not None else None
    fields = [f for f in S.EVENT_SCHEMA if wanted is None or f.name in wanted]
    arrays = []
    for f in fields:
        source = f.name if f.name in names else ALIASES.get(f.name)
        if source not in names:
            arrays.append(_default_column(f, n, table))
            continue
        col = table.column(source)
        arrays.append(_coerce(col, f.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def source_columns(columns: Iterable[str], available: Iterable[str]) -> list[str]:
    """The columns of a file that `normalize(table, columns)` reads (names, aliases, `close` for `price`)."""
    have = set(available)
    wanted = set(columns)
    for name in list(wanted):
        wanted.add(ALIASES.get(name, name))
    if "price" in wanted:
        wanted.add("close")
    return [c for c in have if c in wanted]


def _default_column(f: pa.Field, n: int, table: pa.Table) -> pa.Array:
    if f.name == "step":
        return _int_range(n)
    if f.name == "price" and "close" in table.column_names:
        return _coerce(table.column("close"), f.type)
    if f.name in ("risk_allowed",):
        return pc.fill_null(pa.nulls(n, pa.bool_()), _strings(["true"]).cast(pa.bool_())[0])
    if f.name == "risk_reasons":
        return pc.fill_null(pa.nulls(n, pa.string()), _strings([""])[0])
    return pa.nulls(n, f.type)


# Constant arrays are built from buffers, not Python lists: pyarrow imports pandas (~50 MB) to convert any
# Python or numpy value, and the monitor must stay small while it streams a 1M-event file.


def to_rows(table: pa.Table) -> list[dict[str, Any]]:
    """`table.to_pylist()` with timestamps as aware UTC datetimes, converted without importing pandas
    (pyarrow imports it for zone-aware timestamps: ~50 MB in a monitor that should stay small)."""
    columns = {}
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_timestamp(col.type) and col.type.tz is not None:
            naive = pc.cast(col, pa.timestamp(col.type.unit))  # the same instant as UTC wall time
            columns[name] = [v.replace(tzinfo=UTC) if v is not None else None for v in naive.to_pylist()]
        else:
            columns[name] = col.to_pylist()
    return [dict(zip(columns, values)) for values in zip(*columns.values())] if columns else []


def _strings(values: list[str]) -> pa.Array:
    data = "".join(values).encode()
    offsets, at = [0], 0
    for v in values:
        at += len(v.encode())
        offsets.append(at)
    return pa.Array.from_buffers(
        pa.string(), len(values), [None, pa.py_buffer(struct.pack(f"<{len(offsets)}i", *offsets)), pa.py_buffer(data)]
    )


def _int_range(n: int) -> pa.Array:
    import numpy as np

    return pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(np.arange(n, dtype=np.int64))])


def _coerce(col: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if col.type == target:
        return col
    if pa.types.is_timestamp(target):
        return _to_timestamp(col, target)
    if pa.types.is_string(target):
        out = pc.cast(col, pa.string(), safe=False)
        return pc.fill_null(out, _strings([""])[0])
    if pa.types.is_boolean(target) and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        lowered = pc.utf8_lower(col)
        return pc.is_in(lowered, value_set=_strings(["true", "1", "yes"]))
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), target)
    return pc.cast(col, target, safe=False)


def _to_timestamp(col: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            col = pc.assume_timezone(col, "UTC")
        return pc.cast(col, target)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        seconds = pc.cast(col, pa.float64())
        ms = pc.cast(pc.multiply(seconds, 1000.0), pa.int64(), safe=False)
        return pc.cast(ms, target)
    # Arrow parses uniform ISO 8601 text itself (with an offset, or naive = UTC); pandas (~50 MB more memory,
    # imported lazily) only for mixed or odd text, where unparseable cells become null.
    try:
        return pc.cast(col, target, safe=False)
    except pa.ArrowInvalid:
        pass
    try:
        return pc.assume_timezone(pc.cast(col, pa.timestamp(target.unit), safe=False), "UTC")
    except pa.ArrowInvalid:
        pass
    import pandas as pd

    values = pd.to_datetime(col.to_pandas(), utc=True, format="ISO8601", errors="coerce")
    return pa.chunked_array([pa.array(values, type=pa.timestamp("ns", tz="UTC")).cast(target, safe=False)])


class TotalsAccumulator:
    """Whole-run totals added up batch by batch (normalized tables with at least `TOTALS_COLUMNS`)."""

    def __init__(self) -> None:
        self.steps = 0
        self.sums = {"orders_generated": 0, "orders_filled": 0, "orders_rejected": 0, "orders_blocked": 0}
        self.not_allowed = 0
        self.signal_changes = 0
        self.max_drawdown: float | None = None
        self.first_equity: float | None = None

    def add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self.steps += table.num_rows
        for name in self.sums:
            self.sums[name] += int(pc.sum(table.column(name)).as_py() or 0)
        self.not_allowed += int(pc.sum(pc.invert(table.column("risk_allowed"))).as_py() or 0)
        self.signal_changes += int(pc.sum(table.column("signal_changed")).as_py() or 0)
        dd = pc.max(table.column("drawdown")).as_py()
        if dd is not None and dd == dd:  # NaN is no drawdown
            self.max_drawdown = dd if self.max_drawdown is None else max(self.max_drawdown, dd)
        if self.first_equity is None:
            equity = table.column("equity").drop_null()
            if len(equity):
                self.first_equity = equity[0].as_py()

    def result(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "orders": self.sums["orders_generated"],
            "filled": self.sums["orders_filled"],
            "rejected": self.sums["orders_rejected"],
            # Peak_Trade runs without an orders_blocked column count the rows the risk check refused.
            "blocked": self.sums["orders_blocked"] or self.not_allowed,
            "signal_changes": self.signal_changes,
            "max_drawdown": float(self.max_drawdown or 0.0),
            "first_equity": self.first_equity,
        }


def totals_from_table(table: pa.Table) -> dict[str, Any]:
    """Whole-run totals computed from the events themselves (legacy or recovered runs)."""
    acc = TotalsAccumulator()
    acc.add(normalize(table, TOTALS_COLUMNS))
    return acc.result()
