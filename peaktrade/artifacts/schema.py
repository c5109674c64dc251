"""The run directory format, schema_version 1: file names, the event schema, meta fields.

The Arrow schema (`EVENT_SCHEMA`, `EVENT_COLUMNS`) is built on first use (PEP 562): the file names are needed by
code that never reads an event (a site build's gather, the quiet build) and must not pay for importing pyarrow.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1

META = "meta.json"
EVENTS = "events.parquet"  # compacted at the end of a run
SEGMENTS = "events.d"  # while running: seg-NNNNNNNN.arrows, Arrow IPC streams, append-only
ORDERS = "orders.jsonl"  # append-only, one complete JSON object per line
LEGACY_CSV = "events.csv"  # written by the original Peak_Trade system only

SEGMENT_PREFIX = "seg-"
SEGMENT_SUFFIX = ".arrows"
ROW_GROUP_ROWS = 16_384  # <= 64k (DESIGN); small enough that a tail read decodes little

FINAL_STATUSES = ("completed", "failed", "aborted")

TIME_COLUMNS = ("ts_bar", "ts_event")

# Orders log record keys (orders.jsonl); a reader gives every order each of them (None when missing).
ORDER_FIELDS = (
    "ts",
    "step",
    "symbol",
    "side",
    "qty",
    "price",
    "notional",
    "status",
    "reasons",
    "fill_price",
    "fee",
)


def segment_name(seq: int) -> str:
    return f"{SEGMENT_PREFIX}{seq:08d}{SEGMENT_SUFFIX}"


def _event_schema() -> Any:
    import pyarrow as pa

    ts = pa.timestamp("ms", tz="UTC")
    return pa.schema(
        [
            ("step", pa.int64()),
            ("ts_bar", ts),
            ("ts_event", ts),
            ("open", pa.float64()),
            ("high", pa.float64()),
            ("low", pa.float64()),
            ("close", pa.float64()),
            ("volume", pa.float64()),
            ("price", pa.float64()),
            ("signal", pa.int8()),
            ("signal_changed", pa.bool_()),
            ("position_size", pa.float64()),
            ("avg_entry_price", pa.float64()),
            ("cash", pa.float64()),
            ("equity", pa.float64()),
            ("realized_pnl", pa.float64()),
            ("unrealized_pnl", pa.float64()),
            ("fees_paid", pa.float64()),
            ("drawdown", pa.float64()),
            ("orders_generated", pa.int32()),
            ("orders_filled", pa.int32()),
            ("orders_rejected", pa.int32()),
            ("orders_blocked", pa.int32()),
            ("risk_allowed", pa.bool_()),
            ("risk_reasons", pa.string()),
            ("risk_severity", pa.string()),
        ],
        metadata={"peaktrade.schema_version": str(SCHEMA_VERSION)},
    )


def __getattr__(name: str) -> Any:
    """`EVENT_SCHEMA` and `EVENT_COLUMNS`, built once, on first use."""
    if name == "EVENT_SCHEMA":
        value = _event_schema()
    elif name == "EVENT_COLUMNS":
        value = tuple(__getattr__("EVENT_SCHEMA").names)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
