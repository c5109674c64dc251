"""Normalize event tables to schema_version 1, including runs written by the original Peak_Trade system.

Peak_Trade wrote one `events.parquet` or `events.csv` with ISO-string timestamps (sometimes naive), no cash or
equity, and aliases such as `orders_count` and `pnl`. Naive timestamps are taken as UTC.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from peaktrade.artifacts import schema as S

ALIASES = {"orders_generated": "orders_count", "realized_pnl": "pnl"}


def normalize(table: pa.Table) -> pa.Table:
    """A table with exactly `EVENT_SCHEMA`'s columns and types; missing columns are null."""
    if table.schema.equals(S.EVENT_SCHEMA, check_metadata=False):
        return table
    n = table.num_rows
    names = set(table.column_names)
    arrays = []
    for f in S.EVENT_SCHEMA:
        source = f.name if f.name in names else ALIASES.get(f.name)
        if source not in names:
            arrays.append(_default_column(f, n, table))
            continue
        col = table.column(source)
        arrays.append(_coerce(col, f.type))
    return pa.Table.from_arrays(arrays, schema=S.EVENT_SCHEMA)


def _default_column(f: pa.Field, n: int, table: pa.Table) -> pa.Array:
    if f.name == "step":
        return pa.array(range(n), pa.int64())
    if f.name == "price" and "close" in table.column_names:
        return _coerce(table.column("close"), f.type)
    if f.name in ("risk_allowed",):
        return pa.array([True] * n, pa.bool_())
    if f.name == "risk_reasons":
        return pa.array([""] * n, pa.string())
    return pa.nulls(n, f.type)


def _coerce(col: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if col.type == target:
        return col
    if pa.types.is_timestamp(target):
        return _to_timestamp(col, target)
    if pa.types.is_string(target):
        out = pc.cast(col, pa.string(), safe=False)
        return pc.fill_null(out, "")
    if pa.types.is_boolean(target) and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        lowered = pc.utf8_lower(col)
        return pc.is_in(lowered, value_set=pa.array(["true", "1", "yes"]))
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
    import pandas as pd  # lazily: only legacy string timestamps need it

    values = pd.to_datetime(col.to_pandas(), utc=True, format="ISO8601", errors="coerce")
    return pa.chunked_array([pa.array(values, type=pa.timestamp("ns", tz="UTC")).cast(target, safe=False)])


def totals_from_table(table: pa.Table) -> dict[str, Any]:
    """Whole-run totals computed from the events themselves (legacy or recovered runs)."""

    def total(name: str) -> int:
        return int(pc.sum(table.column(name)).as_py() or 0) if table.num_rows else 0

    blocked = total("orders_blocked")
    if not blocked and table.num_rows:
        blocked = int(pc.sum(pc.invert(table.column("risk_allowed"))).as_py() or 0)
    drawdowns = pc.max(table.column("drawdown")).as_py() if table.num_rows else None
    equity = table.column("equity").drop_null() if table.num_rows else None
    return {
        "steps": table.num_rows,
        "orders": total("orders_generated"),
        "filled": total("orders_filled"),
        "rejected": total("orders_rejected"),
        "blocked": blocked,
        "signal_changes": int(pc.sum(table.column("signal_changed")).as_py() or 0) if table.num_rows else 0,
        "max_drawdown": float(drawdowns or 0.0),
        "first_equity": equity[0].as_py() if equity is not None and len(equity) else None,
    }
