"""The hostile-input corpus: each case turns a good workspace into one with a single bad input.

A case is built into a fresh directory by `build(root)` (the good workspace of `tests/sitefixture.py`, then the
case's damage), so no fixture files are kept in the tree. `Case.bad` is the file every reader must name (None
when the input is valid but hostile text, which must only be shown escaped).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from peaktrade import registry_index as ri
from tests.sitefixture import make_workspace

RUN_A = "20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001"  # completed: events.parquet
RUN_B = "20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002"  # running: events.d/ segments
LEGACY = "20250101_030000_legacy_peak_trade_run"  # the original system's format: no schema_version
SESSIONS = (
    "session_20250101_000000_paper_aaaa01",
    "session_20250101_120000_shadow_bbbb02",
    "session_20250101_060000_shadow_cccc03",
)
REG = "reports/experiments/live_sessions"
BAD_RECORD = f"{REG}/20250102T000000_live_session_paper_session_20250102_000000_paper_bad001.json"
BAD_SID = "session_20250102_000000_paper_bad001"

# Markup and terminal escapes: window title (OSC 0), clipboard write (OSC 52), clear screen, a C1 CSI.
XSS = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
TERM = "\x1b]0;pwned\x07\x1b]52;c;cHduZWQ=\x07\x1b[2J\x9b31m\u202e"
PAYLOAD = XSS + TERM


@dataclass(frozen=True)
class Case:
    name: str
    damage: Callable[[Path], None]
    bad: str | None  # relative path of the file readers must name

    def build(self, root: Path) -> None:
        make_workspace(root)
        _legacy_run(root)
        self.damage(root)


# -- helpers ------------------------------------------------------------------------------------------------


def _record(**over: object) -> dict:
    rec = {
        "schema_version": 1,
        "session_id": BAD_SID,
        "run_id": None,
        "run_type": "live_session_paper",
        "mode": "paper",
        "env_name": "hostile",
        "symbol": "BTC/EUR",
        "strategy": "ma_crossover",
        "status": "completed",
        "started_at": "2025-01-02T00:00:00+00:00",
        "finished_at": "2025-01-02T01:00:00+00:00",
        "heartbeat_at": "2025-01-02T01:00:00+00:00",
        "config": {},
        "metrics": {"realized_pnl": 1.0, "max_drawdown": 0.01, "num_orders": 1},
        "cli_args": ["peaktrade", "session", "run"],
        "error": None,
        "notes": None,
        "tags": [],
    }
    rec.update(over)
    return rec


def _write(root: Path, rel: str, data: bytes | str | object) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    elif isinstance(data, str):
        path.write_text(data)
    else:
        path.write_text(json.dumps(data))  # Python writes NaN and Infinity by default: that is the point


def _fifo(root: Path, rel: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _directory(root: Path, rel: str) -> None:
    path = root / rel
    if path.exists():
        path.unlink()
    (path / "inner").mkdir(parents=True)


def _file_for_directory(root: Path, rel: str) -> None:
    shutil.rmtree(root / rel)
    (root / rel).write_text("not a directory\n")


def _meta(root: Path, run: str, **over: object) -> None:
    path = root / "live_runs" / run / "meta.json"
    meta = json.loads(path.read_text())
    meta.update(over)
    path.write_text(json.dumps(meta))


def _summary(root: Path, run: str, totals: dict | None = None, last: dict | None = None) -> None:
    path = root / "live_runs" / run / "meta.json"
    meta = json.loads(path.read_text())
    meta["summary"]["totals"].update(totals or {})
    meta["summary"]["last"].update(last or {})
    path.write_text(json.dumps(meta))


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _legacy_run(root: Path) -> None:
    """A run as the original Peak_Trade system wrote it: meta.json without schema_version, events.csv."""
    run = root / "live_runs" / LEGACY
    run.mkdir(parents=True)
    meta = {
        "run_id": LEGACY,
        "mode": "shadow",
        "strategy_name": "ma_crossover",
        "symbol": "BTC/EUR",
        "timeframe": "1m",
        "started_at": "2025-01-01T03:00:00",
        "ended_at": "2025-01-01T03:05:00",
    }
    (run / "meta.json").write_text(json.dumps(meta))
    rows = ["ts_bar,close,equity,realized_pnl,orders_count,risk_allowed,risk_reasons"]
    rows += [f"2025-01-01T03:0{i}:00,40000.0,{10000 + i}.0,0.0,0,true," for i in range(5)]
    (run / "events.csv").write_text("\n".join(rows) + "\n")


def _legacy_csv(root: Path, text: bytes) -> None:
    (root / "live_runs" / LEGACY / "events.csv").write_bytes(text)


def _segment(root: Path) -> Path:
    return sorted((root / "live_runs" / RUN_B / "events.d").glob("seg-*.arrows"))[-1]


def _replace_segment(root: Path, table: pa.Table) -> None:
    path = _segment(root)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def _parquet(root: Path, table: pa.Table, run: str = RUN_A) -> None:
    pq.write_table(table, root / "live_runs" / run / "events.parquet")


def _orders(root: Path, lines: list[bytes]) -> None:
    (root / "live_runs" / RUN_A / "orders.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


def _outside(root: Path) -> Path:
    """A directory beside the workspace, outside every base directory."""
    out = root.parent / f"{root.name}-outside"
    out.mkdir(exist_ok=True)
    return out


def _symlink_record(root: Path) -> None:
    target = _outside(root) / "secret.json"
    target.write_text(json.dumps(_record(notes="read from outside")))
    (root / BAD_RECORD).parent.mkdir(parents=True, exist_ok=True)
    (root / BAD_RECORD).symlink_to(target)


def _symlink_meta(root: Path) -> None:
    target = _outside(root) / "meta.json"
    shutil.copy(root / "live_runs" / RUN_A / "meta.json", target)
    (root / "live_runs" / RUN_A / "meta.json").unlink()
    (root / "live_runs" / RUN_A / "meta.json").symlink_to(target)


def _symlink_run(root: Path) -> None:
    target = _outside(root) / "run"
    shutil.copytree(root / "live_runs" / RUN_A, target)
    (root / "live_runs" / "20250103_000000_paper_linked_out").symlink_to(target, target_is_directory=True)


def _duplicate(root: Path) -> None:
    src = next((root / REG).glob(f"*{SESSIONS[0]}.json"))
    shutil.copy(src, root / REG / f"20250101T000001_live_session_paper_{SESSIONS[0]}.json")


def _index(root: Path, data: bytes | str | object) -> None:
    _write(root, "state/registry-index.json", data)


def _index_damaged(damage: Callable[[list[bytes]], list[bytes]]) -> Callable[[Path], None]:
    """A real index of settled records (so nothing is parsed again), then `damage` applied to its lines."""

    def build(root: Path) -> None:
        from peaktrade import registry

        old = 1_700_000_000_000_000_000
        for path in [*(root / REG).iterdir(), root / REG]:
            os.utime(path, ns=(old, old), follow_symlinks=False)
        path = root / "state/registry-index.json"
        registry.scan(root / REG, path)
        path.write_bytes(b"\n".join(damage(path.read_bytes().split(b"\n"))))

    return build


def _row(lines: list[bytes], rank: int, change: Callable[[list], object]) -> list[bytes]:
    """Line `rank` of the rows (after the header lines) replaced by what `change` makes of it."""
    row = json.loads(lines[ri.HEAD + rank])
    lines[ri.HEAD + rank] = json.dumps(change(row)).encode()
    return lines


H = ri.HEAD  # the index's first row line


def _set(row: list, i: int, value: object) -> list:
    row[i] = value
    return row


def _scan_cache(root: Path, meta: object) -> None:
    """state/run-scan.json whose entries match every run's files (so they are used) but hold `meta`."""
    from peaktrade.artifacts.scancache import stamp

    runs = {d.name: [stamp(str(d)), meta, []] for d in (root / "live_runs").iterdir()}
    _write(root, "state/run-scan.json", {"version": 1, "runs": runs})


def _scan_cache_lines(root: Path, meta: object, extra: bytes = b"") -> None:
    """state/run-scan.json in the layout a build writes (one run a line, each read alone), entries holding `meta`
    and matching every run's files, plus an `extra` line."""
    from peaktrade.artifacts.scancache import stamp

    lines = [
        json.dumps(d.name).encode() + b":" + json.dumps([stamp(str(d)), meta, []]).encode()
        for d in sorted((root / "live_runs").iterdir())
    ]
    body = b",\n".join([*lines, extra] if extra else lines)
    _write(root, "state/run-scan.json", b'{"version":1,"runs":{\n' + body + b"\n}}\n")


def _manifest(root: Path, data: bytes | str | object) -> None:
    _write(root, "state/site-manifest.json", data)


def _summary_cache(root: Path, totals: object, last: object) -> None:
    """state/run-summaries.json whose entry matches the Peak_Trade run's event file (so it is used) but holds
    `totals` and `last`."""
    run = root / "live_runs" / LEGACY
    st = os.stat(run / "events.csv")
    fp = ["events.csv", st.st_size, st.st_mtime_ns, st.st_ino]
    entry = {"fp": fp, "totals": totals, "last": last, "derived_ns": st.st_mtime_ns + 10**10}
    _write(root, "state/run-summaries.json", {"version": 1, "runs": {str(run.absolute()): entry}})


def _built_then(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """A site built once, then its manifest (still matching this build's code and settings) changed by `change`,
    and one run's meta.json edited, so the next build compares the two."""

    def damage(root: Path) -> None:
        from peaktrade import config, site

        site.build(config.load(None))
        path = root / "state/site-manifest.json"
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))
        meta = root / "live_runs" / RUN_A / "meta.json"
        meta.write_text(meta.read_text().replace('"notes": "note"', '"notes": "edited"'))

    return damage


def _hostile_fingerprints(manifest: dict) -> None:
    junk = (5, None, ["x"], {"a": 1}, "junk|", "")
    manifest["runs"] = {name: junk[i % len(junk)] for i, name in enumerate(manifest["runs"])}
    manifest["unrendered"] = {"notes.txt": [1], RUN_A: 5}


def _hostile_run_problems(manifest: dict) -> None:
    """Problems kept for runs (those of unchanged runs are said again) that carry markup and escapes; entries of
    no run."""
    manifest["run_problems"] = {name: [PAYLOAD] for name in manifest["runs"]}
    manifest["run_problems"].update({"../x": [PAYLOAD], "": [PAYLOAD], "none": 5})


def _hostile_sessions_view(manifest: dict) -> None:
    """A kept view of all sessions (`manifest.sessions_view`) of the wrong shape, with markup and escapes in its
    records and counts: never used (its key is no registry's, and its shape is checked)."""
    record = {"session_id": PAYLOAD, "started_at": PAYLOAD, "status": "completed", "env_name": PAYLOAD}
    manifest["sessions_view"] = {
        "key": PAYLOAD,
        "total": float("nan"),
        "by_status": {PAYLOAD: -1},
        "stats": {"by_mode": PAYLOAD},
        "newest_time": PAYLOAD,
        "records": [record, PAYLOAD, None],
    }


def _run_problems_wrong_shapes(manifest: dict) -> None:
    junk = ([1, None], "x", [], [PAYLOAD, {"a": 1}], [["nested"]], None)
    manifest["run_problems"] = {name: junk[i % len(junk)] for i, name in enumerate(sorted(manifest["runs"]))}


def _nan_events() -> pa.Table:
    from peaktrade.artifacts.schema import EVENT_SCHEMA
    from tests.conftest import event

    rows = [event(i) for i in range(10)]
    rows[3]["equity"] = float("nan")
    rows[4]["equity"] = float("inf")
    rows[5]["drawdown"] = float("-inf")
    rows[6]["close"] = 1e308
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def _wrong_type_events() -> pa.Table:
    n = 6
    return pa.table(
        {
            "step": pa.array(["one", "2", "x", None, "5", "6"]),
            "ts_bar": pa.array([9_000_000_000_000_000_000, 0, -9_000_000_000_000_000_000, 1, 2, 3], pa.int64()),
            "equity": pa.array(["10000", "x", "1e400", "nan", PAYLOAD, "10005"]),
            "orders_generated": pa.array([1.5, 1e300, -1e300, None, 2, 3]),
            "risk_allowed": pa.array(["yes", "no", "maybe", "1", "0", PAYLOAD]),
            "risk_reasons": pa.array([PAYLOAD] * n),
        }
    )


# -- the corpus ---------------------------------------------------------------------------------------------

CASES: list[Case] = [
    # registry records
    Case(
        "record_nan_infinity_metrics",
        lambda r: _write(
            r,
            BAD_RECORD,
            _record(
                metrics={"realized_pnl": float("nan"), "max_drawdown": float("inf"), "num_orders": float("-inf")}
            ),
        ),
        None,
    ),
    Case("record_metrics_text", lambda r: _write(r, BAD_RECORD, _record(metrics="x")), BAD_RECORD),
    Case("record_cli_args_number", lambda r: _write(r, BAD_RECORD, _record(cli_args=5)), BAD_RECORD),
    Case("record_run_id_list", lambda r: _write(r, BAD_RECORD, _record(run_id=[1])), BAD_RECORD),
    Case("record_started_1e308", lambda r: _write(r, BAD_RECORD, _record(started_at=1e308)), BAD_RECORD),
    Case(
        "record_started_year_1",
        lambda r: _write(r, BAD_RECORD, _record(started_at="0001-01-01T00:00:00+05:00")),
        BAD_RECORD,
    ),
    Case(
        "record_finished_year_9999_negative_offset",
        lambda r: _write(r, BAD_RECORD, _record(finished_at="9999-12-31T23:59:59-05:00", heartbeat_at=1e308)),
        BAD_RECORD,
    ),
    Case(
        "record_nested_too_deep_to_parse",
        lambda r: _write(
            r, BAD_RECORD, '{"session_id": "x", "started_at": "2025-01-01", "config": ' + _deep(100_000) + "}"
        ),
        BAD_RECORD,
    ),
    Case(
        "record_nested_deep",
        lambda r: _write(r, BAD_RECORD, json.dumps(_record())[:-1] + ', "config": {"a": ' + _deep(500) + "}}"),
        BAD_RECORD,
    ),
    Case(
        "record_not_utf8", lambda r: _write(r, BAD_RECORD, b'{"session_id": "\xff\xfe", "started_at": 1}'), BAD_RECORD
    ),
    Case("record_is_fifo", lambda r: _fifo(r, BAD_RECORD), BAD_RECORD),
    Case("record_is_directory", lambda r: _directory(r, BAD_RECORD), BAD_RECORD),
    Case("record_id_dotdot", lambda r: _write(r, BAD_RECORD, _record(session_id="..")), BAD_RECORD),
    Case("record_id_with_slash", lambda r: _write(r, BAD_RECORD, _record(session_id="../../etc/passwd")), BAD_RECORD),
    Case("record_duplicate_session_id", _duplicate, f"{REG}/20250101T000001_live_session_paper_{SESSIONS[0]}.json"),
    Case("record_symlink_out_of_registry", _symlink_record, BAD_RECORD),
    Case("record_top_level_array", lambda r: _write(r, BAD_RECORD, [1, 2]), BAD_RECORD),
    Case("record_empty_file", lambda r: _write(r, BAD_RECORD, b""), BAD_RECORD),
    Case("record_truncated", lambda r: _write(r, BAD_RECORD, '{"session_id": "x", "sta'), BAD_RECORD),
    Case(
        "record_every_field_wrong_type",
        lambda r: _write(
            r,
            BAD_RECORD,
            _record(
                mode=5,
                status=[1],
                strategy={},
                symbol=1.5,
                env_name=True,
                tags="x",
                config=[],
                error=7,
                notes=[None],
                finished_at="garbage",
                created_at=True,
                pid="x",
            ),
        ),
        BAD_RECORD,
    ),
    Case(
        "record_huge_numbers",
        lambda r: _write(
            r, BAD_RECORD, _record(metrics={"realized_pnl": 1e308, "max_drawdown": -1e308, "num_orders": 1e308})
        ),
        None,
    ),
    Case(
        "record_integers_past_the_float_range",
        lambda r: _write(r, BAD_RECORD, _record(metrics={"realized_pnl": 10**400, "num_orders": -(10**400)})),
        None,
    ),
    Case(
        "record_hostile_text_everywhere",
        lambda r: _write(
            r,
            BAD_RECORD,
            _record(
                run_type=PAYLOAD,
                mode=PAYLOAD,
                env_name=PAYLOAD,
                symbol=PAYLOAD,
                strategy=PAYLOAD,
                status=PAYLOAD,
                error=PAYLOAD,
                notes=PAYLOAD,
                tags=[PAYLOAD],
                cli_args=[PAYLOAD],
                config={PAYLOAD: PAYLOAD},
                metrics={PAYLOAD: PAYLOAD},
            ),
        ),
        None,
    ),
    # meta.json
    Case(
        "meta_nan_infinity",
        lambda r: _summary(
            r, RUN_A, {"max_drawdown": float("inf")}, {"equity": float("nan"), "close": float("-inf")}
        ),
        None,  # NaN and Infinity are read as missing (safeio), nothing to report
    ),
    Case("meta_totals_steps_text", lambda r: _summary(r, RUN_A, {"steps": "x"}), f"live_runs/{RUN_A}/meta.json"),
    Case(
        "meta_started_1e308",
        lambda r: _meta(r, RUN_A, started_at=1e308, heartbeat_at=-1e308),
        f"live_runs/{RUN_A}/meta.json",
    ),
    Case(
        "meta_started_year_1",
        lambda r: _meta(r, RUN_B, started_at="0001-01-01T00:00:00+05:00"),
        f"live_runs/{RUN_B}/meta.json",
    ),
    Case(
        "meta_nested_too_deep_to_parse",
        lambda r: _write(r, f"live_runs/{RUN_A}/meta.json", '{"run_id": ' + _deep(100_000) + "}"),
        f"live_runs/{RUN_A}/meta.json",
    ),
    Case(
        "meta_not_utf8",
        lambda r: _write(r, f"live_runs/{RUN_B}/meta.json", b'{"mode": "\xc3\x28"}'),
        f"live_runs/{RUN_B}/meta.json",
    ),
    Case("meta_is_fifo", lambda r: _fifo(r, f"live_runs/{RUN_A}/meta.json"), f"live_runs/{RUN_A}/meta.json"),
    Case(
        "meta_is_directory", lambda r: _directory(r, f"live_runs/{RUN_B}/meta.json"), f"live_runs/{RUN_B}/meta.json"
    ),
    Case(
        "meta_every_field_wrong_type",
        lambda r: _meta(
            r,
            RUN_A,
            run_id=[1],
            mode=5,
            strategy_name={},
            symbol=[],
            timeframe=60,
            status=3,
            error=[PAYLOAD],
            strategy_params="x",
            pid="x",
            rows="many",
            tags=5,
            session_id=["x"],
            summary="x",
        ),
        f"live_runs/{RUN_A}/meta.json",
    ),
    Case(
        "meta_last_event_wrong_types",
        lambda r: _summary(
            r,
            RUN_B,
            last={"ts_bar": 1e308, "equity": "x", "risk_allowed": "no", "ts_event": "0001-01-01T00:00+01:00"},
        ),
        f"live_runs/{RUN_B}/meta.json",
    ),
    Case(  # valid JSON escapes of lone surrogates: text Python holds but UTF-8 cannot encode
        "meta_lone_surrogates",
        lambda r: _meta(r, RUN_A, notes="bad \ud800 text", strategy_params={"\udfff": "\ud83d"}),
        None,
    ),
    Case(
        "meta_top_level_array",
        lambda r: _write(r, f"live_runs/{RUN_A}/meta.json", "[]"),
        f"live_runs/{RUN_A}/meta.json",
    ),
    Case(
        "meta_hostile_text_everywhere",
        lambda r: _meta(
            r,
            RUN_B,
            mode=PAYLOAD,
            strategy_name=PAYLOAD,
            symbol=PAYLOAD,
            timeframe=PAYLOAD,
            status=PAYLOAD,
            error=PAYLOAD,
            data_source=PAYLOAD,
            notes=PAYLOAD,
            strategy_params={PAYLOAD: PAYLOAD},
        ),
        None,
    ),
    Case("meta_symlink_out_of_run", _symlink_meta, f"live_runs/{RUN_A}/meta.json"),
    Case("run_dir_symlink_out_of_runs_dir", _symlink_run, "live_runs/20250103_000000_paper_linked_out"),
    # orders.jsonl
    Case(
        "orders_without_ts_and_wrong_types",
        lambda r: _orders(
            r,
            [
                b'{"step": 5, "side": "buy", "qty": "x", "status": "filled", "reasons": 5}',
                b'{"side": ["buy"], "status": {"a": 1}, "fee": "free", "notional": 1e999}',
            ],
        ),
        f"live_runs/{RUN_A}/orders.jsonl",
    ),
    Case(
        "orders_garbage_lines",
        lambda r: _orders(
            r, [b"not json", b"\xff\xfe\x00", b"[1, 2]", b'{"ts": NaN, "qty": Infinity}', b"[" * 100_000]
        ),
        f"live_runs/{RUN_A}/orders.jsonl",
    ),
    Case(
        "orders_integers_past_the_float_range",  # JSON ints are unbounded; formatting one as a float overflows
        lambda r: _orders(
            r,
            [
                b'{"ts": "2025-01-01T00:05:00+00:00", "step": 5, "side": "buy", "status": "filled", "qty": 1'
                + b"0" * 400
                + b', "fee": -1'
                + b"0" * 400
                + b"}"
            ],
        ),
        f"live_runs/{RUN_A}/orders.jsonl",
    ),
    Case("orders_is_fifo", lambda r: _fifo(r, f"live_runs/{RUN_A}/orders.jsonl"), f"live_runs/{RUN_A}/orders.jsonl"),
    Case(
        "orders_is_directory",
        lambda r: _directory(r, f"live_runs/{RUN_B}/orders.jsonl"),
        f"live_runs/{RUN_B}/orders.jsonl",
    ),
    Case(
        "orders_hostile_text",
        lambda r: _orders(
            r,
            [
                json.dumps(
                    {
                        "ts": "2025-01-01T00:05:00+00:00",
                        "side": PAYLOAD,
                        "status": PAYLOAD,
                        "reasons": [PAYLOAD],
                        "qty": 1.0,
                    }
                ).encode()
            ],
        ),
        None,
    ),
    # events: segments, events.parquet, legacy events.csv
    Case(
        "segment_garbage_bytes",
        lambda r: _segment(r).write_bytes(b"\x00garbage" * 100),
        f"live_runs/{RUN_B}/events.d",
    ),
    Case("segment_is_fifo", lambda r: _fifo(r, str(_segment(r).relative_to(r))), f"live_runs/{RUN_B}/events.d"),
    Case(
        "segment_wrong_column_types",
        lambda r: _replace_segment(r, _wrong_type_events()),
        f"live_runs/{RUN_B}/events.d",
    ),
    Case(
        "parquet_garbage_bytes",
        lambda r: _write(r, f"live_runs/{RUN_A}/events.parquet", b"PAR1garbagePAR1"),
        f"live_runs/{RUN_A}/events.parquet",
    ),
    Case(
        "parquet_wrong_column_types", lambda r: _parquet(r, _wrong_type_events()), f"live_runs/{RUN_A}/events.parquet"
    ),
    Case("parquet_nan_infinity_huge", lambda r: _parquet(r, _nan_events()), f"live_runs/{RUN_A}/events.parquet"),
    Case(
        "parquet_is_directory",
        lambda r: _directory(r, f"live_runs/{RUN_A}/events.parquet"),
        f"live_runs/{RUN_A}/events.parquet",
    ),
    Case(
        "legacy_csv_non_numeric_cells",
        lambda r: _legacy_csv(
            r,
            (
                "ts_bar,close,equity,realized_pnl,orders_count,risk_allowed,risk_reasons\n"
                "2025-01-01T03:00:00,40000,10000,0,0,true,\n"
                "not a time,forty,ten thousand,x,one,maybe," + PAYLOAD.replace(",", ";") + "\n"
                "99999-01-01T00:00:00,1e999,-1e999,nan,1e300,false,\n"
            ).encode(),
        ),
        f"live_runs/{LEGACY}/events.csv",
    ),
    Case(
        "legacy_csv_not_utf8",
        lambda r: _legacy_csv(r, b"ts_bar,close\n\xff\xfe,\xc3\x28\n"),
        f"live_runs/{LEGACY}/events.csv",
    ),
    Case(
        "legacy_csv_column_twice",  # KeyError in every reader once; a run page reads the first, as they all do now
        lambda r: _legacy_csv(
            r,
            b"ts_bar,close,close,equity,equity\n2025-01-01T03:00:00,40000.0,1.0,10000.0,2.0\n"
            b"2025-01-01T03:01:00,40001.0,1.0,10001.0,2.0\n",
        ),
        f"live_runs/{LEGACY}/events.csv",
    ),
    Case(
        "legacy_csv_is_fifo", lambda r: _fifo(r, f"live_runs/{LEGACY}/events.csv"), f"live_runs/{LEGACY}/events.csv"
    ),
    Case(
        "legacy_parquet_timestamps_out_of_range",
        lambda r: _parquet(
            r,
            pa.table(
                {
                    "ts_bar": ["99999-01-01T00:00:00", "0000-00-00", "2025-01-01T03:00:00"],
                    "close": [1.0, 2.0, 3.0],
                    "equity": [1.0, 2.0, 3.0],
                }
            ),
            LEGACY,
        ),
        f"live_runs/{LEGACY}/events.parquet",
    ),
    # state/ caches
    Case("index_version_3_without_rows", lambda r: _index(r, {"version": 3}), "state/registry-index.json"),
    Case(
        "index_version_4_rows",
        lambda r: _index(r, {"version": 4, "columns": [], "rows": []}),
        "state/registry-index.json",
    ),
    Case(
        "index_current_version_garbage",
        lambda r: _index(r, f'{{"version": {ri.VERSION}, "count": "x"}}\n[5]' + "\n" * ri.HEAD),
        "state/registry-index.json",
    ),
    Case("index_not_json", lambda r: _index(r, b"\xff{{{"), "state/registry-index.json"),
    Case(
        "index_rows_malformed",
        _index_damaged(lambda ls: _row(_row(ls, 0, lambda row: _set(row, 1, "not a time")), 1, lambda row: {"a": 1})),
        "state/registry-index.json",
    ),
    Case(
        "index_row_lines_garbage",
        _index_damaged(lambda ls: ls[: ri.HEAD] + [b"\xff{{{" for _ in ls[ri.HEAD : -1]] + [b""]),
        "state/registry-index.json",
    ),
    Case("index_row_line_missing", _index_damaged(lambda ls: [*ls[:-2], b""]), "state/registry-index.json"),
    Case(
        "index_row_line_extra",  # as many bytes as before, one line more
        _index_damaged(lambda ls: [*ls[:H], ls[H][: len(ls[H]) // 2], ls[H][len(ls[H]) // 2 + 1 :], *ls[H + 1 :]]),
        "state/registry-index.json",
    ),
    Case(
        "index_truncated",
        lambda r: (_index_damaged(lambda ls: ls)(r), _index(r, (r / "state/registry-index.json").read_bytes()[:-40])),
        "state/registry-index.json",
    ),
    Case(
        "index_column_nan_and_huge",
        _index_damaged(lambda ls: [ls[0], ls[1], b"[NaN, 1e999, " + b"9" * 5000 + b"]", *ls[3:]]),
        "state/registry-index.json",
    ),
    Case(
        "index_row_huge_numbers",
        _index_damaged(lambda ls: _row(ls, 0, lambda row: _set(_set(row, 14, 1e999), 15, 10**30))),
        "state/registry-index.json",
    ),
    Case(
        "index_row_deep_nesting",
        _index_damaged(lambda ls: [*ls[:H], b"[" * 100_000 + b"]" * 100_000, *ls[H + 1 :]]),
        "state/registry-index.json",
    ),
    Case(
        "index_wrong_types",
        _index_damaged(lambda ls: [ls[0], b'{"files": 1}', *ls[2 : ri._ORDER], b"[99999999]", *ls[ri._ORDER + 1 :]]),
        "state/registry-index.json",
    ),
    Case(
        "index_sort_columns_garbage",  # read only by whole-registry readers and after a change
        _index_damaged(lambda ls: [*ls[: ri._SESSIONS], b'["x", 5]', *ls[ri._SESSIONS + 1 :]]),
        "state/registry-index.json",
    ),
    Case(
        "index_rows_swapped",
        _index_damaged(lambda ls: [*ls[:H], ls[H + 1], ls[H], *ls[H + 2 :]]),
        "state/registry-index.json",
    ),
    Case("index_is_fifo", lambda r: _fifo(r, "state/registry-index.json"), "state/registry-index.json"),
    Case("manifest_garbage", lambda r: _manifest(r, b"\x00\x01garbage"), "state/site-manifest.json"),
    Case(
        "manifest_wrong_structure", lambda r: _manifest(r, {"signature": {}, "runs": 5}), "state/site-manifest.json"
    ),
    Case("manifest_is_directory", lambda r: _directory(r, "state/site-manifest.json"), "state/site-manifest.json"),
    # a manifest of this very build, its fingerprints then replaced: only pages are re-rendered, nothing to name
    Case("manifest_hostile_fingerprints", _built_then(_hostile_fingerprints), None),
    Case("manifest_unrendered_not_a_map", _built_then(lambda m: m.update(unrendered="x")), None),
    Case("manifest_run_problems_hostile", _built_then(_hostile_run_problems), None),
    Case("manifest_run_problems_wrong_shapes", _built_then(_run_problems_wrong_shapes), None),
    Case("manifest_run_problems_not_a_map", _built_then(lambda m: m.update(run_problems=[PAYLOAD])), None),
    Case("manifest_sessions_view_hostile", _built_then(_hostile_sessions_view), None),
    Case(
        "summary_cache_garbage", lambda r: _write(r, "state/run-summaries.json", b"\xff{"), "state/run-summaries.json"
    ),
    Case(
        "summary_cache_wrong_structure",
        lambda r: _write(r, "state/run-summaries.json", {"version": 1, "runs": {"x": {"fp": 5}}}),
        None,  # entries that are not summaries are dropped as they are read
    ),
    Case(
        "summary_cache_tampered_entry",
        lambda r: _summary_cache(
            r, {"steps": "x", "orders": [1], "max_drawdown": 1e400}, {"ts_bar": 5, "equity": "x"}
        ),
        None,
    ),
    Case("scan_cache_is_directory", lambda r: _directory(r, "state/run-scan.json"), "state/run-scan.json"),
    Case("quiet_record_is_directory", lambda r: _directory(r, "state/site-quiet.json"), "state/site-quiet.json"),
    Case("scan_cache_garbage", lambda r: _write(r, "state/run-scan.json", b"{\x00"), "state/run-scan.json"),
    Case(
        "scan_cache_wrong_structure",
        lambda r: _write(r, "state/run-scan.json", {"version": 1, "runs": {"x": [1, 2]}}),
        "state/run-scan.json",
    ),
    Case(
        "scan_cache_tampered_entry",
        lambda r: _scan_cache(r, {"run_id": [1], "started_at": 1e308, "summary": {"totals": {"steps": "x"}}}),
        "state/run-scan.json",
    ),
    Case("scan_cache_entry_not_an_object", lambda r: _scan_cache(r, 5), "state/run-scan.json"),
    Case(
        "scan_cache_lines_tampered",
        lambda r: _scan_cache_lines(r, {"run_id": [1], "started_at": 1e308, "summary": {"last": {"step": "x"}}}),
        "state/run-scan.json",
    ),
    Case(
        "scan_cache_lines_deep_and_nan",
        lambda r: _scan_cache_lines(r, {"notes": float("nan")}, b'"x":' + b"[" * 100_000 + b"]" * 100_000),
        "state/run-scan.json",
    ),
    # the marker of a finished build is never reported: anything odd there only makes the next build look for
    # temp files everywhere (it must not block on a FIFO or crash on a directory)
    Case("finished_marker_is_fifo", lambda r: _fifo(r, "state/site-build.finished"), None),
    Case("finished_marker_is_directory", lambda r: _directory(r, "state/site-build.finished"), None),
    # a file where a base directory should be: every reader names it and goes on with no runs or no sessions
    Case("registry_dir_is_a_file", lambda r: _file_for_directory(r, REG), REG),
    Case("runs_dir_is_a_file", lambda r: _file_for_directory(r, "live_runs"), "live_runs"),
    Case("quiet_record_garbage", lambda r: _write(r, "state/site-quiet.json", b"\xff{"), "state/site-quiet.json"),
    Case(
        "quiet_record_runs_not_text",
        lambda r: _write(
            r,
            "state/site-quiet.json",
            {"version": 2, "signature": "x", "until": None, "problems": [], "site": "x", "runs": [5]},
        ),
        "state/site-quiet.json",
    ),
    Case(
        "quiet_record_wrong_structure",
        lambda r: _write(r, "state/site-quiet.json", {"version": 2, "signature": ["x"], "until": 1e400}),
        "state/site-quiet.json",
    ),
]
