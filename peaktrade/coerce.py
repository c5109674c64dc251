"""Clean, typed views of what readers parse: registry records, run meta.json, order lines.

Every reader calls these right after parsing, so the code downstream only ever sees the types it expects and
needs no try/except of its own. A field of the wrong type (`metrics="x"`, `cli_args=5`, `run_id=[1]`), a
timestamp that cannot be represented (`1e308`, year 1 with a positive offset) or a number that is not finite is
treated as missing, and reported once with the file, the field, the value and the fix. Fields that are fine are
returned unchanged, unknown fields are kept (they are plain JSON values already), so `session show` still shows
everything that was in the file.
"""

from __future__ import annotations

import math
import reprlib
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade.artifacts.schema import ORDER_FIELDS
from peaktrade.clock import iso, parse_ts
from peaktrade.errors import ArtifactError
from peaktrade.ids import ID_PATTERN

_REPR = reprlib.Repr()
_REPR.maxstring = 40
_REPR.maxother = 40
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxdict = 4

RECORD_TEXT = ("run_type", "mode", "env_name", "symbol", "strategy", "status", "error", "notes", "host")
RECORD_TIMES = ("finished_at", "heartbeat_at", "created_at")
META_TEXT = (
    "session_id",
    "mode",
    "strategy_name",
    "symbol",
    "timeframe",
    "status",
    "error",
    "data_source",
    "notes",
    "host",
)
META_TIMES = ("started_at", "ended_at", "heartbeat_at", "last_bar_time", "recovered_at")
META_INTS = ("pid", "pid_start_ticks", "rows")
TOTALS_INTS = ("steps", "orders", "filled", "rejected", "blocked", "signal_changes")
TOTALS_FLOATS = ("max_drawdown", "first_equity")
EVENT_TIMES = ("ts_bar", "ts_event")
EVENT_TEXT = ("risk_reasons", "risk_severity")
EVENT_BOOLS = ("signal_changed", "risk_allowed")
ORDER_TEXT = ("symbol", "side", "status")
ORDER_NUMBERS = ("qty", "price", "notional", "fill_price", "fee")


def show(value: Any) -> str:
    """A short, single-line repr of a hostile value for a problem message (long or deep values are cut)."""
    return _REPR.repr(value)


_FLOAT_MAX = int(sys.float_info.max)


def is_number(value: Any) -> bool:
    """A finite int or float (bool is not a number here). JSON integers are unbounded: one past the float range
    would overflow wherever it is formatted or added to a float, so it is no number either."""
    kind = type(value)
    if kind is float or kind is int:  # the usual: no subclass, checked without isinstance
        return math.isfinite(value) if kind is float else -_FLOAT_MAX <= value <= _FLOAT_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and -_FLOAT_MAX <= value <= _FLOAT_MAX


MAX_DEPTH = 64
METRIC_INT_LIMIT = 2**63  # a session metric that is an integer: the registry index keeps it within this too


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Is `value` nested deeper than `limit` lists/objects? Iterative: never a RecursionError itself."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 1
    while level:  # the lists and objects `depth` levels down, one level at a time
        if depth > limit:
            return True
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        depth += 1
    return False


def finite(value: Any) -> Any:
    """`value` with every NaN/Infinity float replaced by None (strict JSON parsers, browsers, reject them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def strict_json(value: Any, **options: Any) -> str:
    """`value` as strict JSON text (NaN/Infinity written as null), `options` passed to `json.dumps`.

    The common case has no non-finite float: it is encoded once (by the C encoder unless `indent` is given, which
    forces the pure-Python one: hot paths pass none). Only a value that does hold one is walked by `finite` and
    encoded again.
    """
    import json

    try:
        return json.dumps(value, allow_nan=False, **options)
    except ValueError:  # a NaN or an infinity somewhere (the only ValueError our acyclic values can raise)
        return json.dumps(finite(value), allow_nan=False, **options)


def is_id(value: Any) -> bool:
    """A safe run or session id: 1-160 characters from A-Z a-z 0-9 . _ - and not `.` or `..`."""
    return isinstance(value, str) and bool(ID_PATTERN.match(value)) and value not in (".", "..")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Fields:
    """Collects the problems of one file while its fields are checked."""

    def __init__(self, source: Path | str, data: Mapping[str, Any], prefix: str = ""):
        self.source = source
        self.out = dict(data)
        self.prefix = prefix
        self.problems: list[str] = []

    def drop(self, key: str, value: Any, expected: str, replacement: Any = None) -> None:
        self.problems.append(
            f"{self.source}: field {self.prefix}{key} = {show(value)} is not {expected}; treated as missing "
            "(fix or remove the field)"
        )
        self.out[key] = replacement

    def shallow(self) -> None:
        for key, value in list(self.out.items()):
            if isinstance(value, dict | list) and too_deep(value, MAX_DEPTH - 1):
                self.drop(key, "...", f"nested at most {MAX_DEPTH} levels deep")

    def text(self, key: str) -> None:
        value = self.out.get(key)
        if value is not None and not isinstance(value, str):
            self.drop(key, value, "text")

    def time(self, key: str) -> None:
        value = self.out.get(key)
        if value is None or value == "":
            return
        ts = parse_ts(value)
        if ts is None or isinstance(value, bool):
            self.drop(key, value, "an ISO 8601 time in range")
        elif not isinstance(value, str):
            self.out[key] = iso(ts)  # epoch seconds: downstream code expects text

    def integer(self, key: str) -> None:
        value = self.out.get(key)
        if value is not None and not is_int(value):
            self.drop(key, value, "an integer")

    def number(self, key: str) -> None:
        value = self.out.get(key)
        if value is not None and not is_number(value):
            self.drop(key, value, "a finite number")

    def mapping(self, key: str) -> None:
        value = self.out.get(key)
        if value is not None and not isinstance(value, dict):
            self.drop(key, value, "an object", {})

    def strings(self, key: str) -> None:
        value = self.out.get(key)
        if value is None:
            return
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.drop(key, value, "a list of text", [])

    def identifier(self, key: str) -> None:
        value = self.out.get(key)
        if value is not None and not is_id(value):
            self.drop(key, value, "a valid id (1-160 characters from A-Z a-z 0-9 . _ -, not '..')")


def record(data: Any, path: Path) -> tuple[dict[str, Any], list[str]]:
    """A registry record with every known field of its type; `ArtifactError` if it is no session record."""
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object, got {type(data).__name__}; skipped (remove it)")
    sid = data.get("session_id")
    if not isinstance(sid, str) or "started_at" not in data:
        raise ArtifactError(f"{path}: not a session record (no session_id/started_at); skipped")
    if not is_id(sid):
        raise ArtifactError(
            f"{path}: session_id {show(sid)} is not a valid id (1-160 characters from A-Z a-z 0-9 . _ -, "
            "not '..'); skipped (fix the field)"
        )
    started = parse_ts(data.get("started_at"))
    if started is None or isinstance(data.get("started_at"), bool):
        raise ArtifactError(
            f"{path}: started_at {show(data.get('started_at'))} is not a timestamp in range; skipped (fix the field)"
        )
    if type(data["started_at"]) is str and _plain_record(data):  # what our sessions write: 10,000 per cold build
        out = dict(data)
        if type(out.get("metrics")) is dict:
            out["metrics"] = dict(out["metrics"])
        return out, []
    return _record_checked(data, path, started)


def _record_checked(data: dict[str, Any], path: Path, started: datetime) -> tuple[dict[str, Any], list[str]]:
    """`record` field by field, once the id and start are known good: what it keeps and every problem."""
    f = _Fields(path, data)
    f.shallow()
    if not isinstance(data["started_at"], str):
        f.out["started_at"] = iso(started)
    f.identifier("run_id")
    for key in RECORD_TEXT:
        f.text(key)
    for key in RECORD_TIMES:
        f.time(key)
    f.mapping("config")
    f.mapping("metrics")
    f.strings("cli_args")
    f.strings("tags")
    f.integer("pid")
    f.integer("pid_start_ticks")
    metrics = f.out.get("metrics")
    if isinstance(metrics, dict):
        m = _Fields(path, metrics, "metrics.")
        for key, value in metrics.items():
            if isinstance(value, int | float) and not is_number(value):  # a bool or an infinity is no number
                m.drop(key, value, "a finite number")
            elif type(value) is int and not -METRIC_INT_LIMIT < value < METRIC_INT_LIMIT:
                m.drop(key, value, "an integer within +-2**63 (what every reader of metrics can hold)")
            elif value is not None and not isinstance(value, int | float | str):
                m.drop(key, value, "a number")
        f.out["metrics"] = m.out
        f.problems += m.problems
    return f.out, f.problems


_RECORD_TEXT, _RECORD_TIMES = frozenset(RECORD_TEXT), frozenset(RECORD_TIMES)
_RECORD_LISTS, _RECORD_INTS = frozenset(("cli_args", "tags")), frozenset(("pid", "pid_start_ticks"))
_RECORD_MAPS = frozenset(("config", "metrics"))


def _plain_record(data: dict[str, Any]) -> bool:
    """Does every field already hold what `record` would keep? (The fast path: one pass, no copies.)

    Known fields of their type, times in range, metrics finite numbers (integers within +-2**63) or text, a
    config nested less than `MAX_DEPTH` levels, every other field a scalar. Anything else takes the field-by-field
    path."""
    for key, value in data.items():
        if value is None:
            continue
        kind = type(value)
        if key in _RECORD_TEXT:
            if kind is not str:
                return False
        elif key in _RECORD_TIMES:
            if kind is not str or (value != "" and parse_ts(value) is None):
                return False
        elif key in _RECORD_MAPS:
            if kind is not dict:
                return False
            if key == "metrics":
                for v in value.values():
                    vk = type(v)
                    if not (
                        v is None
                        or vk is str
                        or (vk is float and math.isfinite(v))
                        or (vk is int and -METRIC_INT_LIMIT < v < METRIC_INT_LIMIT)
                    ):
                        return False
            elif too_deep(value, MAX_DEPTH - 1):
                return False
        elif key in _RECORD_LISTS:
            if kind is not list or not all(type(v) is str for v in value):
                return False
        elif key in _RECORD_INTS:
            if kind is not int:
                return False
        elif key == "run_id":
            if not is_id(value):
                return False
        elif kind is dict or kind is list:
            return False
    return True


def meta(data: Any, path: Path | str) -> tuple[dict[str, Any], list[str]]:
    """A run's meta.json with every known field of its type (summary totals and last event included)."""
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object, got {type(data).__name__}; remove or rewrite it")
    if _plain_meta(data):  # what our writer writes (and what a site build's scan cache keeps for 1,000 runs)
        out = dict(data)
        summary = out.get("summary")
        if summary is not None:
            out["summary"] = summary = dict(summary)
            if summary.get("last") is not None:
                summary["last"] = dict(summary["last"])
        return out, []
    return _meta_checked(data, path)


def _meta_checked(data: dict[str, Any], path: Path | str) -> tuple[dict[str, Any], list[str]]:
    """`meta` field by field: what it keeps and every problem."""
    f = _Fields(path, data)
    f.shallow()
    f.identifier("run_id")
    for key in META_TEXT:
        f.text(key)
    for key in META_TIMES:
        f.time(key)
    for key in META_INTS:
        f.integer(key)
    f.mapping("strategy_params")
    f.mapping("config_snapshot")
    f.strings("tags")
    f.mapping("summary")
    summary = f.out.get("summary")
    if isinstance(summary, dict):
        s = _Fields(path, summary, "summary.")
        s.mapping("totals")
        s.mapping("last")
        totals = s.out.get("totals")
        if isinstance(totals, dict):
            problems = run_totals(totals, path, "summary.totals.")[1]
            if problems:  # partial totals would lie: derive them from the events instead
                s.problems += problems
                s.problems.append(f"{path}: summary.totals ignored; totals are computed from the events")
                s.out.pop("totals")
        last = s.out.get("last")
        if isinstance(last, dict):
            s.out["last"], problems = event_row(last, path, "summary.last.")
            s.problems += problems
        f.out["summary"] = s.out
        f.problems += s.problems
    return f.out, f.problems


def run_totals(data: Mapping[str, Any], path: Path | str, prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """A run's whole-run totals (meta's `summary.totals`, or a kept summary's): counts are integers, the rest
    finite numbers."""
    t = _Fields(path, data, prefix)
    for key in TOTALS_INTS:
        t.integer(key)
    for key in TOTALS_FLOATS:
        t.number(key)
    return t.out, t.problems


def event_row(data: Mapping[str, Any], path: Path | str, prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """One event as a dict (meta's `summary.last`): times as text, numbers finite, flags bool."""
    f = _Fields(path, data, prefix)
    for key, value in data.items():
        if value is None:
            continue  # missing, whatever the field
        if key in _EVENT_TIMES:
            f.time(key)
        elif key in _EVENT_TEXT:
            f.text(key)
        elif key in _EVENT_BOOLS:
            if not isinstance(value, bool):
                f.drop(key, value, "true or false")
        elif not is_number(value):
            f.drop(key, value, "a finite number")
    return f.out, f.problems


_EVENT_TIMES, _EVENT_TEXT, _EVENT_BOOLS = frozenset(EVENT_TIMES), frozenset(EVENT_TEXT), frozenset(EVENT_BOOLS)
_META_TEXT, _META_TIMES, _META_INTS = frozenset(META_TEXT), frozenset(META_TIMES), frozenset(META_INTS)
_META_SCALARS = _META_TEXT | _META_TIMES | _META_INTS | {"run_id"}
_META_OBJECTS = frozenset(("strategy_params", "config_snapshot"))
_SCALARS = frozenset((str, int, float, bool))  # exact types, as JSON decodes them: anything else is looked at slowly


def _plain_meta(data: dict[str, Any]) -> bool:
    """Does every field of a meta.json already hold what `meta` would keep? (The fast path: one pass, no copies.)
    Any doubt takes the field-by-field path (`_meta_checked`), which also names the problems."""
    for key, value in data.items():
        if value is None:
            continue
        kind = type(value)
        if kind in _SCALARS:
            if key in _META_SCALARS:
                if key in _META_TEXT:
                    ok = kind is str
                elif key in _META_TIMES:
                    ok = kind is str and (not value or parse_ts(value) is not None)
                elif key in _META_INTS:
                    ok = kind is int
                else:
                    ok = is_id(value)
            else:
                ok = key not in _META_OBJECTS and key not in ("summary", "tags")
        elif kind is dict or kind is list:
            if key in _META_SCALARS:
                return False
            if key == "summary":
                ok = kind is dict and _plain_summary(value)  # two levels deep at most: no depth to measure
            elif key == "tags":
                ok = kind is list and all(type(v) is str for v in value)
            else:
                ok = (kind is dict or key not in _META_OBJECTS) and not too_deep(value, MAX_DEPTH - 1)
        else:
            return False
        if not ok:
            return False
    return True


def _plain_summary(summary: dict[str, Any]) -> bool:
    """meta's `summary` as our writer leaves it: `totals` and `last` of their types, nothing else nested."""
    for key, value in summary.items():
        if value is None:
            continue
        if key == "totals":
            if type(value) is not dict or not _plain_totals(value):
                return False
        elif key == "last":
            if type(value) is not dict or not _plain_event(value):
                return False
        elif type(value) not in _SCALARS:
            return False
    return True


def _plain_totals(totals: dict[str, Any]) -> bool:
    for key, value in totals.items():
        if value is None:
            continue
        kind = type(value)
        if kind not in _SCALARS:
            return False
        if key in _TOTALS_INTS and kind is not int:
            return False
        if key in _TOTALS_FLOATS and not is_number(value):
            return False
    return True


def _plain_event(last: dict[str, Any]) -> bool:
    for key, value in last.items():
        kind = type(value)
        if kind is float or kind is int:  # most fields: numbers
            if key in _EVENT_NOT_NUMBERS or not is_number(value):
                return False
            continue
        if value is None:
            continue
        if key in _EVENT_TIMES:
            ok = type(value) is str and (not value or parse_ts(value) is not None)
        elif key in _EVENT_TEXT:
            ok = type(value) is str
        elif key in _EVENT_BOOLS:
            ok = type(value) is bool
        else:
            ok = is_number(value)
        if not ok:
            return False
    return True


_TOTALS_INTS, _TOTALS_FLOATS = frozenset(TOTALS_INTS), frozenset(TOTALS_FLOATS)
_EVENT_NOT_NUMBERS = _EVENT_TIMES | _EVENT_TEXT | _EVENT_BOOLS


def order(data: Any, path: Path, line: int) -> tuple[dict[str, Any] | None, list[str]]:
    """One orders.jsonl line; None (with a problem) if it is not a JSON object."""
    if not isinstance(data, dict):
        return None, [f"{path}:{line}: expected a JSON object, got {type(data).__name__}; line skipped"]
    if _plain_order(data):  # what our writer writes: nothing to check one field at a time
        return {key: None for key in ORDER_FIELDS} | data, []
    f = _Fields(f"{path}:{line}", {key: None for key in ORDER_FIELDS} | data)  # every field present, maybe None
    f.shallow()
    f.time("ts")
    f.integer("step")
    for key in ORDER_TEXT:
        f.text(key)
    for key in ORDER_NUMBERS:
        f.number(key)
    f.strings("reasons")
    return f.out, f.problems


_ORDER_TYPES = {key: str for key in ORDER_TEXT} | {"step": int}
_ORDER_NUMBER_KEYS = frozenset(ORDER_NUMBERS)


def _plain_order(data: dict[str, Any]) -> bool:
    """Does every field already hold what `order` would keep? (The fast path: one pass, no copies.)

    Known fields of their type (numbers finite), `ts` a time in range, `reasons` a list of text, every other
    field a scalar (nothing nested that could be too deep). Anything else takes the field-by-field path.
    """
    for key, value in data.items():
        if value is None:
            continue
        kind = type(value)
        if key in _ORDER_NUMBER_KEYS:
            if not is_number(value):
                return False
        elif key in _ORDER_TYPES:
            if kind is not _ORDER_TYPES[key]:
                return False
        elif key == "ts":
            if kind is not str or parse_ts(value) is None:
                return False
        elif key == "reasons":
            if kind is not list or not all(type(r) is str for r in value):
                return False
        elif kind is dict or kind is list:
            return False
    return True
