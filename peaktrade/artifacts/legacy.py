"""Normalize event tables to schema_version 1, including runs written by the original Peak_Trade system.

Peak_Trade wrote one `events.parquet` or `events.csv` with ISO-string timestamps (sometimes naive), no cash or
equity, and aliases such as `orders_count` and `pnl`. Naive timestamps are taken as UTC.
"""

from __future__ import annotations

import math
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


def normalize(
    table: pa.Table,
    problems: list[str] | None = None,
    source: object = "events",
    *,
    columns: Iterable[str] | None = None,
) -> pa.Table:
    """A table with exactly `EVENT_SCHEMA`'s columns and types; missing columns are null.

    Cells that cannot be read as their column's type (text in a number column, a timestamp outside years
    1-9999, NaN or Infinity) become null; each such column is reported once in `problems`, naming `source`.
    With `columns`, only those (in `EVENT_SCHEMA` order) are converted: converting text timestamps is the
    expensive part, and charts or totals need only a few columns.
    """
    wanted = set(columns) if columns is not None else None
    if len(set(table.column_names)) < table.num_columns:
        table = _first_of_each_name(table, problems, source)
    if table.schema.equals(S.EVENT_SCHEMA, check_metadata=False) and _all_clean(table):
        # ours, and nothing to clean: the monitor's 10 ms refresh takes this path
        return table.select([f.name for f in S.EVENT_SCHEMA if f.name in wanted]) if wanted is not None else table
    n = table.num_rows
    names = set(table.column_names)
    fields = [f for f in S.EVENT_SCHEMA if wanted is None or f.name in wanted]
    if wanted is not None and all(f.name in names and table.schema.field(f.name).type == f.type for f in fields):
        # ours read with a projection (a run page's columns), of the right types: only cleaning to check
        projected = table.select([f.name for f in fields])
        if _all_clean(projected):
            return projected
    arrays = []
    for f in fields:
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
    return pa.Table.from_arrays(arrays, schema=S.EVENT_SCHEMA if wanted is None else pa.schema(fields))


def _first_of_each_name(table: pa.Table, problems: list[str] | None, source: object) -> pa.Table:
    """`table` with only the first column of each name (a column found twice is ambiguous: pyarrow refuses to
    pick one by name); each name found more than once is reported."""
    first: dict[str, int] = {}
    times: dict[str, int] = {}
    for i, name in enumerate(table.column_names):  # one pass: a hostile file may have 100,000 columns
        first.setdefault(name, i)
        times[name] = times.get(name, 0) + 1
    if problems is not None:
        for name in sorted(name for name, n in times.items() if n > 1):
            problems.append(
                f"{source}: column {name} appears {times[name]} times; the first is used (rename or remove the "
                "others)"
            )
    return table.select(sorted(first.values()))


def source_columns(columns: Iterable[str], available: Iterable[str]) -> list[str]:
    """The columns of a file that `normalize(table, columns=...)` reads (names, aliases, `close` for `price`)."""
    wanted = set(source_names(columns))
    return [c for c in set(available) if c in wanted]


def source_names(columns: Iterable[str]) -> list[str]:
    """Every name a file's column that feeds `columns` may have (names, aliases, `close` for `price`), sorted."""
    wanted = set(columns)
    for name in list(wanted):
        wanted.add(ALIASES.get(name, name))
    if "price" in wanted:
        wanted.add("close")
    return sorted(wanted)


_TS_MIN = -62_135_596_800_000  # 0001-01-01T00:00:00Z in ms
_TS_MAX = 253_402_300_799_000  # 9999-12-31T23:59:59Z in ms


_FLOATS = [f.name for f in S.EVENT_SCHEMA if pa.types.is_floating(f.type)]


def _all_clean(table: pa.Table) -> bool:
    """No NaN/Infinity in any float column and every timestamp in range (of those of `EVENT_SCHEMA`'s columns
    the table has), checked in three compute calls."""
    have = set(table.column_names)
    chunks = [chunk for name in _FLOATS if name in have for chunk in table.column(name).chunks]
    total = pc.sum(pa.chunked_array(chunks, pa.float64())).as_py() if chunks else None
    if total is not None and not math.isfinite(total):
        return False
    for name in (t for t in S.TIME_COLUMNS if t in have):
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
        return _int_range(n)
    if f.name == "price" and "close" in table.column_names:
        try:
            return _clean(_coerce(table.column("close"), f.type))[0]
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            return pa.nulls(n, f.type)
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
    if (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)) and not pa.types.is_boolean(target):
        # Text columns (CSV summaries read every column as text): Arrow parses clean numbers itself. Only a
        # stray non-numeric cell needs pandas (imported lazily: ~50 MB), and bad cells become null.
        try:
            return pc.cast(col, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        import pandas as pd

        numbers = pd.to_numeric(col.to_pandas(use_threads=False), errors="coerce")
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

    values = pd.to_datetime(col.to_pandas(use_threads=False), utc=True, format="ISO8601", errors="coerce")
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
    acc.add(normalize(table, columns=TOTALS_COLUMNS))
    return acc.result()
