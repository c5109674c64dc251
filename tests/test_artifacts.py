from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from peaktrade.artifacts import (
    EVENT_COLUMNS,
    RunReader,
    RunWriter,
    find_run,
    latest_run_dir,
    recover_run,
    scan_runs,
)
from peaktrade.artifacts import schema as S
from peaktrade.errors import ArtifactError, InvalidId, RunNotFound
from tests.conftest import T0, event


def make_writer(runs: Path, **kw) -> RunWriter:
    opts = dict(flush_rows=10, segment_rows=100, fsync=False)
    opts.update(kw)
    return RunWriter.create(
        runs, mode="paper", strategy_name="ma_crossover", symbol="BTC/EUR", timeframe="1m", **opts
    )


def test_round_trip_running_then_finished(tmp_path: Path) -> None:
    w = make_writer(tmp_path)
    for i in range(255):
        w.append_event(event(i))
    w.append_order({"ts": T0, "step": 5, "side": "buy", "qty": 0.1, "status": "filled", "reasons": []})
    w.flush()
    r = RunReader(w.run_dir)
    assert r.meta["status"] == "running" and r.meta["rows"] == 255
    assert r.tail(15).column("step").to_pylist() == list(range(240, 255))
    assert r.events().num_rows == 255
    assert r.totals()["orders"] == 1 and r.totals()["blocked"] == 1
    assert len(list((w.run_dir / S.SEGMENTS).iterdir())) == 3  # 100 + 100 + 55 rows
    w.close()
    r = RunReader(w.run_dir)
    assert r.meta["status"] == "completed" and r.meta["ended_at"]
    assert sorted(p.name for p in w.run_dir.iterdir()) == ["events.parquet", "meta.json", "orders.jsonl"]
    table = r.events()
    assert table.schema.equals(S.EVENT_SCHEMA, check_metadata=False)
    assert table.to_pylist() == [_norm(event(i)) for i in range(255)]
    assert r.tail(3).column("step").to_pylist() == [252, 253, 254]
    assert r.orders()[0]["side"] == "buy"


def _norm(row: dict) -> dict:
    return {k: row.get(k) for k in EVENT_COLUMNS}


def test_tail_spans_row_groups_and_segments(tmp_path: Path) -> None:
    w = make_writer(tmp_path, segment_rows=100)
    for i in range(201):  # the last segment holds 1 row: tail(15) needs the one before it too
        w.append_event(event(i))
    w.flush()
    assert RunReader(w.run_dir).tail(15).column("step").to_pylist() == list(range(186, 201))


def test_meta_is_written_after_data(tmp_path: Path) -> None:
    w = make_writer(tmp_path)
    for i in range(30):
        w.append_event(event(i))
    r = RunReader(w.run_dir)
    assert r.events().num_rows >= r.meta["rows"] == 30


def test_writer_context_manager_records_failure(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), make_writer(tmp_path) as w:
        w.append_event(event(0))
        _ = 1 / 0
    meta = RunReader(w.run_dir).meta
    assert meta["status"] == "failed" and meta["error"].startswith("ZeroDivisionError")


def test_empty_run(tmp_path: Path) -> None:
    w = make_writer(tmp_path)
    r = RunReader(w.run_dir)
    assert r.tail(15).num_rows == 0 and r.events().num_rows == 0 and r.last_event() is None
    w.close()
    assert RunReader(w.run_dir).events().num_rows == 0


def test_same_second_runs_get_distinct_directories(tmp_path: Path) -> None:
    a = make_writer(tmp_path, started_at=T0)
    b = make_writer(tmp_path, started_at=T0)
    assert a.run_dir != b.run_dir


def test_explicit_run_id_validated(tmp_path: Path) -> None:
    with pytest.raises(InvalidId):
        make_writer(tmp_path, run_id="../escape")
    make_writer(tmp_path, run_id="fixed")
    with pytest.raises(ArtifactError, match="already exists"):
        make_writer(tmp_path, run_id="fixed")


def test_torn_segment_tail_and_torn_order_line_are_skipped(tmp_path: Path) -> None:
    w = make_writer(tmp_path)
    for i in range(40):
        w.append_event(event(i))
    w.append_order({"step": 1, "side": "buy"})
    w.flush()
    seg = next((w.run_dir / S.SEGMENTS).iterdir())
    data = seg.read_bytes()
    for cut in range(len(data) - 1, 0, -97):  # every cut point must give whole batches or nothing
        seg.write_bytes(data[:cut])
        rows = RunReader(w.run_dir).tail(100).num_rows
        assert rows % 10 == 0
    seg.write_bytes(data)
    with open(w.run_dir / S.ORDERS, "a") as fh:
        fh.write('{"step": 2, "si')
    assert [o["step"] for o in RunReader(w.run_dir).orders()] == [1]


def test_corrupt_empty_and_foreign_meta(tmp_path: Path) -> None:
    for name, content in [("empty", ""), ("garbage", "{not json"), ("list", "[1,2]"), ("binary", "\xff\xfe")]:
        d = tmp_path / name
        d.mkdir()
        (d / "meta.json").write_text(content, encoding="latin-1")
        with pytest.raises(ArtifactError, match=str(d)):
            RunReader(d)
    (tmp_path / "no_meta").mkdir()
    with pytest.raises(RunNotFound):
        RunReader(tmp_path / "no_meta")
    with pytest.raises(FileNotFoundError):
        RunReader(tmp_path / "missing")
    scan = scan_runs(tmp_path)
    assert scan.runs == [] and len(scan.problems) == 4


def test_truncated_compacted_file_reports_instead_of_crashing(tmp_path: Path) -> None:
    w = make_writer(tmp_path)
    for i in range(20):
        w.append_event(event(i))
    w.close()
    final = w.run_dir / S.EVENTS
    final.write_bytes(final.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="unreadable Parquet"):
        RunReader(w.run_dir).tail(5)


def _legacy_meta(d: Path, run_id: str, started: str) -> None:
    d.mkdir(parents=True)
    (d / "meta.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "mode": "shadow",
                "strategy_name": "ma_crossover",
                "symbol": "BTC/EUR",
                "timeframe": "1m",
                "started_at": started,
                "ended_at": None,
                "config_snapshot": {},
                "notes": "",
            }
        )
    )


def _legacy_frame(n: int = 20, naive: bool = False) -> pd.DataFrame:
    base = datetime(2025, 12, 4, 18, 0)
    ts = [(base + timedelta(minutes=i)).isoformat() + ("" if naive else "+00:00") for i in range(n)]
    return pd.DataFrame(
        {
            "step": range(n),
            "ts_bar": ts,
            "ts_event": ts,
            "price": [40000.0 + 10 * i for i in range(n)],
            "close": [40000.0 + 10 * i for i in range(n)],
            "position_size": [0.1 if i >= 5 else 0.0 for i in range(n)],
            "cash": [None] * n,
            "equity": [None] * n,
            "realized_pnl": [0.0] * n,
            "unrealized_pnl": [0.0] * n,
            "signal": [1 if i >= 5 else 0 for i in range(n)],
            "signal_changed": [i == 5 for i in range(n)],
            "orders_generated": [1 if i == 5 else 0 for i in range(n)],
            "orders_filled": [1 if i == 5 else 0 for i in range(n)],
            "orders_rejected": [0] * n,
            "orders_blocked": [1 if i == 15 else 0 for i in range(n)],
            "risk_allowed": [i != 15 for i in range(n)],
            "risk_reasons": ["max_total_exposure" if i == 15 else "" for i in range(n)],
        }
    )


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("naive", [False, True])
def test_reads_runs_written_by_peak_trade(tmp_path: Path, fmt: str, naive: bool) -> None:
    d = tmp_path / "20251204_180000_paper_ma_crossover_BTC-EUR_1m"
    _legacy_meta(d, d.name, "2025-12-04T18:00:00" + ("" if naive else "+00:00"))
    df = _legacy_frame(naive=naive)
    if fmt == "parquet":
        df.to_parquet(d / "events.parquet")
    else:
        df.to_csv(d / "events.csv", index=False)
    r = RunReader(d)
    assert r.is_legacy
    tail = r.tail(15)
    assert tail.num_rows == 15 and tail.column("step").to_pylist() == list(range(5, 20))
    first = tail.column("ts_bar")[0].as_py()
    assert first == datetime(2025, 12, 4, 18, 5, tzinfo=UTC)
    assert tail.column("equity").null_count == 15
    totals = r.totals()
    assert (totals["steps"], totals["orders"], totals["blocked"]) == (20, 1, 1)
    assert [x for x in tail.column("risk_reasons").to_pylist() if x] == ["max_total_exposure"]


def test_legacy_aliases_and_missing_columns(tmp_path: Path) -> None:
    d = tmp_path / "old"
    _legacy_meta(d, "old", "2025-12-04T18:00:00")
    pq.write_table(
        pa.table({"ts_bar": ["2025-12-04T18:00:00"], "orders_count": [3], "pnl": [1.5]}), d / "events.parquet"
    )
    row = RunReader(d).tail(1).to_pylist()[0]
    assert row["orders_generated"] == 3 and row["realized_pnl"] == 1.5 and row["step"] == 0
    assert row["risk_allowed"] is True


def test_latest_is_by_start_time_not_name(tmp_path: Path) -> None:
    _legacy_meta(tmp_path / "zzz_test_run", "zzz_test_run", "2024-01-01T00:00:00Z")
    _legacy_meta(tmp_path / "20250101_000000_a", "20250101_000000_a", "2025-01-01T00:00:00Z")
    _legacy_meta(tmp_path / "20250101_000000_b", "20250101_000000_b", "2025-01-01T00:00:00+00:00")
    assert latest_run_dir(tmp_path) == tmp_path / "20250101_000000_b"
    assert latest_run_dir(tmp_path / "nope") is None


def test_find_run_validates_and_suggests(tmp_path: Path) -> None:
    _legacy_meta(tmp_path / "runs" / "20250101_abc", "20250101_abc", "2025-01-01T00:00:00Z")
    assert find_run(tmp_path / "runs", "20250101_abc") == tmp_path / "runs" / "20250101_abc"
    with pytest.raises(RunNotFound, match="close matches: 20250101_abc"):
        find_run(tmp_path / "runs", "20250101_abd")
    with pytest.raises(InvalidId):
        find_run(tmp_path / "runs", "..")


def test_recover_compacts_and_marks_aborted(tmp_path: Path) -> None:
    w = make_writer(tmp_path)
    for i in range(123):
        w.append_event(event(i))
    w.append_order({"step": 3, "side": "buy"})
    w.flush()  # the writer then "dies": no close
    with open(w.run_dir / S.ORDERS, "a") as fh:
        fh.write('{"torn"')
    done = recover_run(w.run_dir, datetime.now(UTC))
    assert done.rows == 123 and done.orders == 1
    r = RunReader(w.run_dir)
    assert r.meta["status"] == "aborted" and r.meta["error"] == "writer died"
    assert r.events().num_rows == 123 and not (w.run_dir / S.SEGMENTS).exists()
    assert r.totals()["steps"] == 123
    assert (w.run_dir / S.ORDERS).read_text().count("\n") == 1
    again = recover_run(w.run_dir, datetime.now(UTC))  # idempotent
    assert again.rows == 123


_BAD_CELLS = [None, ("equity", float("nan")), ("drawdown", float("inf")), ("close", -float("inf"))]


@pytest.mark.parametrize("bad", _BAD_CELLS)
def test_a_projected_read_of_our_events_is_cleaned_as_a_whole_read_is(bad: tuple[str, float] | None) -> None:
    """A run page reads its columns only (ours, of the right types: the cleaning check alone); the result must be
    the whole read's, NaN and Infinity nulled and reported the same."""
    from peaktrade.artifacts import legacy
    from peaktrade.artifacts.schema import EVENT_SCHEMA

    rows = [event(i) for i in range(20)]
    if bad is not None:
        rows[7][bad[0]] = bad[1]
    table = pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
    columns = ["ts_bar", "close", "equity", "drawdown", "signal", "risk_reasons"]
    whole_problems: list[str] = []
    projected_problems: list[str] = []
    whole = legacy.normalize(table, whole_problems, "e").select(columns)
    for read in (table.select(columns), table.select(list(reversed(columns)))):  # any column order a file gives
        projected_problems.clear()
        projected = legacy.normalize(read, projected_problems, "e", columns=columns)
        assert projected.column_names == [f.name for f in EVENT_SCHEMA if f.name in columns]
        assert projected.to_pylist() == whole.to_pylist()
        assert projected_problems == whole_problems
    assert (bad is None) == (whole_problems == [])


@pytest.mark.parametrize(
    "header",
    [
        b"step,ts_bar,close,pnl,orders_count,equity,risk_reasons",  # the original system's names
        b'\xef\xbb\xbf"step",ts_bar,close,close,equity,extra',  # a BOM, a quoted name, a column twice
        b'ts_bar,"x\ny",close,equity',  # a line break inside a quoted name
        b"ts_bar,a\rb,close,equity",  # a bare CR: a line break to Arrow, not to Python's csv module
        b"ts_bar," + b"n" * 70_000 + b",close,equity",  # longer than the 64 KiB the header check reads
        b"ts_bar,close\r",  # CRLF
        b"ts_bar,close",
        b"foo,bar",  # no column a run page shows
    ],
)
def test_a_projected_read_of_a_legacy_csv_is_the_whole_read(tmp_path: Path, header: bytes) -> None:
    """A run page converts only the CSV columns it shows: what it gets (rows, problems, or the error) must be what
    the whole read gives."""
    from peaktrade.artifacts import legacy, reader

    width = header.count(b",") + 1
    rows = [",".join([f"2025-01-01T03:0{i}:00"] + [f"{i}.5"] * (width - 1)).encode() for i in range(4)]
    path = tmp_path / "events.csv"
    path.write_bytes(b"\n".join([header, *rows]) + b"\n")
    columns = ["step", "ts_bar", "close", "price", "equity", "realized_pnl", "orders_generated", "risk_reasons"]

    def outcome(projection: list[str] | None) -> object:
        problems: list[str] = []
        try:
            table = reader._read_csv(path, projection)
        except ArtifactError as exc:
            return str(exc)
        return legacy.normalize(table, problems, path, columns=columns).to_pylist(), problems

    assert outcome(columns) == outcome(None)
