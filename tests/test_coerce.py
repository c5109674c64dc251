"""The read edge: clean typed views of hostile records, meta and orders; terminal-safe text; timestamps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peaktrade import coerce, registry
from peaktrade.clock import parse_ts
from peaktrade.errors import ArtifactError
from peaktrade.terminal import json_text, printable

GOOD = {"session_id": "session_1", "started_at": "2025-01-01T00:00:00+00:00", "metrics": {"realized_pnl": 1.5}}


@pytest.mark.parametrize(
    "payload, shown",
    [
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # window title
        ("\x1b]52;c;cHduZWQ=\x07", "\\x1b]52;c;cHduZWQ=\\x07"),  # clipboard write
        ("\x1b[2J", "\\x1b[2J"),  # clear screen
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("a\nb\tc\x7f", "a\\x0ab\\x09c\\x7f"),
        ("abc\u202edef", "abc\\u202edef"),  # right-to-left override
        ("plain text, ünïcode € ok", "plain text, ünïcode € ok"),
    ],
)
def test_printable_shows_control_characters_escaped(payload: str, shown: str) -> None:
    assert printable(payload) == shown


def test_printable_keeps_newlines_of_multi_line_messages() -> None:
    assert printable("line 1\nline\x1b2", keep_newlines=True) == "line 1\nline\\x1b2"


def test_json_text_is_strict_and_terminal_safe() -> None:
    text = json_text({"a": float("nan"), "b": [float("inf")], "c": "\x9b\x1b"})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {"a": None, "b": [None], "c": "\x9b\x1b"}
    assert "\x9b" not in text and "\x1b" not in text


@pytest.mark.parametrize(
    "value", [1e308, -1e308, float("nan"), float("inf"), "0001-01-01T00:00:00+05:00", "9999-12-31T23:59-05:00", "x"]
)
def test_unrepresentable_timestamps_are_none_not_overflow(value: object) -> None:
    assert parse_ts(value) is None


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("metrics", "x", {}),
        ("cli_args", 5, []),
        ("run_id", [1], None),
        ("run_id", "..", None),
        ("finished_at", 1e308, None),
        ("mode", 5, None),
        ("tags", "x", []),
        ("config", [1], {}),
    ],
)
def test_a_field_of_the_wrong_type_is_missing_and_reported(field: str, value: object, expected: object) -> None:
    record, problems = coerce.record({**GOOD, field: value}, Path("reg/r.json"))
    assert record[field] == expected
    assert len(problems) == 1 and "reg/r.json" in problems[0] and f"field {field} " in problems[0]
    assert record["metrics"] == ({} if field == "metrics" else GOOD["metrics"])


@pytest.mark.parametrize(
    "over, why",
    [
        ({"session_id": ".."}, "not a valid id"),
        ({"session_id": 5}, "not a session record"),
        ({"started_at": 1e308}, "not a timestamp"),
        ({"started_at": True}, "not a timestamp"),
    ],
)
def test_a_record_without_a_usable_id_or_start_is_skipped(over: dict, why: str) -> None:
    with pytest.raises(ArtifactError, match=why):
        coerce.record({**GOOD, **over}, Path("r.json"))


def test_a_deeply_nested_field_is_dropped_without_recursion() -> None:
    deep: list = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    record, problems = coerce.record({**GOOD, "config": {"x": deep}}, Path("r.json"))
    assert record["config"] is None and "nested at most" in problems[0]


def test_partial_totals_are_ignored_so_they_are_computed_from_events() -> None:
    meta, problems = coerce.meta({"summary": {"totals": {"steps": "x", "orders": 1}, "last": {}}}, Path("m.json"))
    assert "totals" not in meta["summary"]
    assert any("summary.totals.steps" in p for p in problems)


def test_an_order_line_gets_every_field() -> None:
    order, problems = coerce.order({"qty": "x", "reasons": 5}, Path("o.jsonl"), 3)
    assert order is not None and order["ts"] is None and order["qty"] is None and order["reasons"] == []
    assert all(p.startswith("o.jsonl:3: ") for p in problems) and len(problems) == 2


def test_the_registry_reads_a_record_with_bad_fields_and_names_them(tmp_path: Path) -> None:
    path = tmp_path / "20250101T000000_live_session_paper_session_1.json"
    path.write_text(json.dumps({**GOOD, "metrics": "x", "cli_args": 5}))
    result = registry.scan(tmp_path)
    assert [e["session_id"] for e in result.entries] == ["session_1"]
    assert len(result.problems) == 2 and all(str(path) in p for p in result.problems)


def _nested(depth: int) -> list:
    deep: list = []
    node = deep
    for _ in range(depth):
        node.append([])
        node = node[0]
    return deep


class _Dict(dict):
    pass


# Values a meta.json field may hold, hostile or not: each one, in each field, must come out of the fast path for
# what our writer writes exactly as the field-by-field path would leave it (problems included).
_VALUES = (
    None, "", "x", "..", "run_ok", "2025-01-01T00:00:00+00:00", "2025-01-01T00:00:00Z", " 2025-01-01T00:00:00Z ",
    "2025-01-01T00:00:00", "0001-01-01T00:00:00+05:00", 0, 1, -1, 2**70, 10**400, 1.5, float("nan"), float("inf"),
    True, False, [], ["a"], ["a", 1], {}, {"a": {"b": 1}}, _nested(70), _nested(10), _Dict(a=1), ("t",),
)  # fmt: skip


def _good_meta() -> dict:
    return {
        "schema_version": 1, "run_id": "20250101_000000_paper_x_BTC-EUR_1m_aaaa0001", "session_id": "session_1",
        "mode": "paper", "strategy_name": "ma_crossover", "symbol": "BTC/EUR", "timeframe": "1m", "status": "running",
        "error": None, "data_source": "synthetic:42", "notes": "", "host": "h", "pid": 12, "pid_start_ticks": 34,
        "rows": 10, "started_at": "2025-01-01T00:00:00+00:00", "ended_at": None,
        "heartbeat_at": "2025-01-01T00:10:00+00:00", "last_bar_time": "2025-01-01T00:09:00+00:00", "tags": ["a"],
        "strategy_params": {"fast": 5}, "config_snapshot": {"risk": {"max_position": 1.0}}, "extra": {"k": [1]},
        "summary": {
            "totals": {"steps": 10, "orders": 2, "filled": 1, "rejected": 0, "blocked": 1, "signal_changes": 3,
                       "max_drawdown": 0.1, "first_equity": 1000.0},
            "last": {"step": 9, "ts_bar": "2025-01-01T00:09:00+00:00", "ts_event": "2025-01-01T00:09:01+00:00",
                     "price": 1.5, "equity": 1000.0, "signal": 1, "signal_changed": False, "risk_allowed": True,
                     "risk_reasons": "", "risk_severity": "ok"},
            "kept": 1,
        },
    }  # fmt: skip


def _variants() -> list[dict]:
    out = [_good_meta()]
    for value in _VALUES:
        for key in (*_good_meta(), "new_field"):
            meta = _good_meta()
            meta[key] = value
            out.append(meta)
        for part in ("totals", "last"):
            for key in (*_good_meta()["summary"][part], "other"):
                meta = _good_meta()
                meta["summary"][part][key] = value
                out.append(meta)
        for key in ("totals", "last", "kept"):
            meta = _good_meta()
            meta["summary"][key] = value
            out.append(meta)
    return out


def test_the_fast_path_for_a_plain_meta_keeps_what_the_field_by_field_path_keeps() -> None:
    plain = 0
    for meta in _variants():
        fast, checked = coerce.meta(meta, "m.json"), coerce._meta_checked(meta, "m.json")
        assert repr(fast) == repr(checked), meta  # repr: a NaN equals itself there
        plain += coerce._plain_meta(meta)
    assert plain > 100  # the fast path was taken, not only the slow one
    source = _good_meta()
    fast, _ = coerce.meta(source, "m.json")
    fast["summary"]["last"]["price"] = 2.0
    fast["summary"]["kept"] = 2
    fast["notes"] = "changed"
    assert source == _good_meta()  # copies: the caller's changes leave the input (a cached meta) alone


def _good_record() -> dict:
    return {
        "schema_version": 1, "session_id": "session_1", "run_id": "20250101_000000_paper_x_BTC-EUR_1m_aaaa0001",
        "run_type": "live_session_paper", "mode": "paper", "env_name": "env", "symbol": "BTC/EUR",
        "strategy": "ma_crossover", "status": "completed", "error": None, "notes": "", "host": "h", "pid": 12,
        "pid_start_ticks": 34, "started_at": "2025-01-01T00:00:00+00:00", "finished_at": "2025-01-01T01:00:00Z",
        "heartbeat_at": "", "created_at": None, "config": {"live_risk": {"max_order_notional": 500.0}},
        "metrics": {"realized_pnl": 1.5, "num_orders": 3, "label": "x", "none": None},
        "cli_args": ["peaktrade", "session", "run"], "tags": [], "extra": 5,
    }  # fmt: skip


def test_the_fast_path_for_a_plain_record_keeps_what_the_field_by_field_path_keeps() -> None:
    variants = [_good_record()]
    for value in (*_VALUES, 2**63, -(2**63), 2**63 - 1):
        for key in (*_good_record(), "new_field"):
            if key not in ("session_id", "started_at"):  # checked before either path (a record without is none)
                variants.append({**_good_record(), key: value})
        for key in (*_good_record()["metrics"], "other"):
            record = _good_record()
            record["metrics"][key] = value
            variants.append(record)
        variants.append({**_good_record(), "config": {"live_risk": value}})
    plain = 0
    for record in variants:
        started = coerce.parse_ts(record["started_at"])
        fast, checked = coerce.record(record, Path("r.json")), coerce._record_checked(record, Path("r.json"), started)
        assert repr(fast) == repr(checked), record  # repr: a NaN equals itself there
        plain += coerce._plain_record(record)
    assert plain > 100  # the fast path was taken, not only the slow one
    source = _good_record()
    fast, _ = coerce.record(source, Path("r.json"))
    fast["metrics"]["realized_pnl"] = 2.0
    fast["notes"] = "changed"
    assert source == _good_record()  # copies, as the field-by-field path makes
