"""Normalize event tables to schema_version 1, including runs written by the original Peak_Trade system.

Peak_Trade wrote one `events.parquet` or `events.csv` with ISO-string timestamps (sometimes naive), no cash or
equity, and aliases such as `orders_count` and `pnl`. Naive timestamps are taken as UTC.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from peaktrade.artifacts import schema as S

ALIASES = {"orders_generated": "orders_count", "realized_pnl": "pnl"}


def normalize(table: pa.Table, problems: list[str] | None = None, source: object = "events") -> pa.Table:
    """A table with exactly `EVENT_SCHEMA`'s columns and types; missing columns are null.

    Cells that cannot be read as their column's type (text in a number column, a timestamp outside years
    1-9999, NaN or Infinity) become null; each such column is reported once in `problems`, naming `source`.
    """
    if table.schema.equals(S.EVENT_SCHEMA, check_metadata=False) and _all_clean(table):
        return table  # ours, and nothing to clean: the monitor's 10 ms refresh takes this path
    n = table.num_rows
    names = set(table.column_names)
    arrays = []
    for f in S.EVENT_SCHEMA:
        source_name = f.name if f.name in names else ALIASES.get(f.name)
        if source_name not in names:
            arrays.append(_default_column(f, n, table))
            continue
        col = table.column(source_name)
        try:
            out = _coerce(col, f.type)
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            out = _coerce_cellwise(col, f.type)
        converted = max(0, out.null_count - col.null_count)  # cells that did not convert became null
        out, cleaned = _clean(out)
        lost = converted + cleaned
        if lost and problems is not None:
            problems.append(
                f"{source}: column {source_name}: {lost} value(s) are not a valid {f.type}; treated as missing"
            )
        arrays.append(out)
    return pa.Table.from_arrays(arrays, schema=S.EVENT_SCHEMA)


_TS_MIN = -62_135_596_800_000  # 0001-01-01T00:00:00Z in ms
_TS_MAX = 253_402_300_799_000  # 9999-12-31T23:59:59Z in ms


_FLOATS = [f.name for f in S.EVENT_SCHEMA if pa.types.is_floating(f.type)]


def _all_clean(table: pa.Table) -> bool:
    """No NaN/Infinity in any float column and every timestamp in range, checked in three compute calls."""
    chunks = [chunk for name in _FLOATS for chunk in table.column(name).chunks]
    total = pc.sum(pa.chunked_array(chunks, pa.float64())).as_py() if chunks else None
    if total is not None and not math.isfinite(total):
        return False
    for name in S.TIME_COLUMNS:
        bounds = pc.min_max(pc.cast(table.column(name), pa.int64()))
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is not None and (low < _TS_MIN or high > _TS_MAX):
            return False
    return True


def _clean(col: pa.ChunkedArray) -> tuple[pa.ChunkedArray, int]:
    """Null out cells Python cannot represent (timestamps out of range) or JSON cannot carry (NaN, Infinity)."""
    if pa.types.is_timestamp(col.type):
        ms = pc.cast(col, pa.int64())
        bounds = pc.min_max(ms)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is None or (low >= _TS_MIN and high <= _TS_MAX):  # the usual case, one pass
            return col, 0
        bad = pc.or_(pc.less(ms, _TS_MIN), pc.greater(ms, _TS_MAX))
    elif pa.types.is_floating(col.type):
        total = pc.sum(col).as_py()  # finite unless a cell is NaN/Infinity (or huge values overflow): one pass
        if total is None or math.isfinite(total):
            return col, 0
        bad = pc.invert(pc.is_finite(col))
    else:
        return col, 0
    lost = pc.sum(bad).as_py() or 0
    if not lost:
        return col, 0
    return pc.if_else(bad, pa.scalar(None, col.type), col), lost


def _coerce_cellwise(col: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """The slow path for hostile columns: convert cell by cell, whatever fails is null."""
    values = []
    for value in col.to_pylist() if not pa.types.is_nested(col.type) else [None] * len(col):
        try:
            values.append(pa.scalar(_number_or_text(value, target), target).as_py())
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            values.append(None)
    return pa.chunked_array([pa.array(values, target)])


def _number_or_text(value: object, target: pa.DataType) -> object:
    if isinstance(value, str) and (pa.types.is_floating(target) or pa.types.is_integer(target)):
        number = float(value.strip())
        return int(number) if pa.types.is_integer(target) else number
    if isinstance(value, str) and pa.types.is_boolean(target):
        return value.strip().lower() in ("true", "1", "yes")
    if pa.types.is_string(target):
        return None if value is None else str(value)
    return value


def _default_column(f: pa.Field, n: int, table: pa.Table) -> pa.Array:
    if f.name == "step":
        return pa.array(range(n), pa.int64())
    if f.name == "price" and "close" in table.column_names:
        try:
            return _clean(_coerce(table.column("close"), f.type))[0]
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            return pa.nulls(n, f.type)
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
    if (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)) and not pa.types.is_boolean(target):
        # Legacy CSVs with a stray non-numeric cell: pyarrow inferred text. Parse, and let bad cells be null.
        import pandas as pd

        numbers = pd.to_numeric(col.to_pandas(), errors="coerce")
        if pa.types.is_integer(target):
            numbers = numbers.where(numbers.abs() < 2**31).round()
            return pc.cast(pa.chunked_array([pa.array(numbers, pa.float64())]), target, safe=False)
        return pa.chunked_array([pa.array(numbers, target, from_pandas=True)])
    return pc.cast(col, target, safe=False)


def _to_timestamp(col: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            col = pc.assume_timezone(col, "UTC")
        return pc.cast(col, target)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        seconds = pc.cast(col, pa.float64())
        ok = pc.and_(pc.is_finite(seconds), pc.less(pc.abs(seconds), 2.5e11))  # within years 1-9999 and finite
        seconds = pc.if_else(ok, seconds, pa.scalar(None, pa.float64()))
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
