"""What an operator sees: live Kraken sessions, testnet, `ops orders|portfolio`, `signals generate`.

Every test runs the real CLI in a subprocess against the Kraken stub on 127.0.0.1 (tests/helpers/kraken_stub.py).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, event, run_cli
from helpers.kraken_stub import T0, UNCOMMITTED_VOLUME, KrakenStub, candle

from peaktrade.artifacts import RunWriter

SECRET = base64.b64encode(b"do-not-leak-this-secret-9f8e7d6c5b4a").decode()
KEY = "PKLIVEKEY-never-print-me-42"
CREDS = {"KRAKEN_API_KEY": KEY, "KRAKEN_API_SECRET": SECRET}


@pytest.fixture
def stub():
    with KrakenStub(committed=300) as s:
        yield s


def write_config(workspace: Path, stub: KrakenStub, extra: str = "") -> None:
    (workspace / "config" / "config.toml").write_text(
        "[shadow_paper_logging]\nfsync = false\n"
        "[exchange]\n"
        f'api_url = "{stub.url}"\n'
        "poll_seconds = 0.05\nrate_limit_ms = 0\nbackoff_seconds = 0.01\nmax_retries = 1\n"
        "breaker_failures = 1000\ntimeout_seconds = 2.0\n" + extra
    )


def start_cli(workspace: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", **(env or {})}
    full_env.pop("PEAKTRADE_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "peaktrade", *args],
        cwd=workspace,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def one_run(workspace: Path) -> Path:
    (run,) = (workspace / "live_runs").iterdir()
    return run


def no_secret_anywhere(workspace: Path, *outputs: str) -> None:
    for text in outputs:
        assert SECRET not in text and KEY not in text
    for path in workspace.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and KEY.encode() not in data, path


def test_live_shadow_session_rides_out_an_outage_and_ends_on_sigterm(workspace: Path, stub: KrakenStub) -> None:
    write_config(workspace, stub)
    proc = start_cli(workspace, "session", "run", "--source", "kraken", "--symbol", "BTC/EUR")
    try:
        assert stub.wait_for(lambda s: s.count("/OHLC") >= 2, 60)
        for step in range(5):
            n = stub.count("/OHLC")
            assert stub.wait_for(lambda s, n=n: s.count("/OHLC") >= n + 2)
            if step == 2:
                stub.down = True
                n = stub.count("/OHLC")
                assert stub.wait_for(lambda s, n=n: s.count("/OHLC") >= n + 3)
                stub.commit(3)
                n = stub.count("/OHLC")
                assert stub.wait_for(lambda s, n=n: s.count("/OHLC") >= n + 3)
                stub.down = False
            else:
                stub.commit(1)
        n = stub.count("/OHLC")
        assert stub.wait_for(lambda s, n=n: s.count("/OHLC") >= n + 3)  # the last commit has been seen
        meta_path = one_run(workspace) / "meta.json"
        meta = json.loads(meta_path.read_text())
        assert meta["status"] == "running" and "exchange reachable again" in meta["feed_status"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err  # aborted sessions exit 1, as before
    assert "status      aborted (SIGTERM)" in out
    assert "feed: exchange unreachable since" in err and "catching up 3 closed candles" in err
    run = one_run(workspace)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "aborted" and meta["error"] == "SIGTERM"
    assert "warm-up on 200 closed candles" in meta["notes"] and "exchange unreachable since" in meta["notes"]
    rows = pq.read_table(run / "events.parquet", columns=["ts_bar", "volume"], use_threads=False).to_pylist()
    times = [int(r["ts_bar"].timestamp()) for r in rows]
    assert times == [T0 + (300 + i) * 60 for i in range(7)]  # every committed candle once, in order
    assert all(r["volume"] != UNCOMMITTED_VOLUME for r in rows)


def test_testnet_validates_every_order_and_records_the_verdict(workspace: Path, stub: KrakenStub) -> None:
    write_config(workspace, stub, "[strategy.ma_crossover]\nfast_window = 2\nslow_window = 3\n")
    proc = start_cli(
        workspace, "session", "run", "--mode", "testnet", "--source", "kraken", "--steps", "40", env=CREDS
    )
    while proc.poll() is None:
        n = stub.count("/OHLC")
        if not stub.wait_for(lambda s, n=n: s.count("/OHLC") >= n + 1 or s.count("/AddOrder") >= 3, 30):
            break
        if stub.count("/AddOrder") >= 1:
            stub.reject_orders = "EOrder:Insufficient funds"  # the first order was accepted, later ones are not
        stub.commit(1)
        if stub.count("/AddOrder") >= 3:
            stub.commit(40)
            break
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    bodies = [b for p, _q, b in stub.requests if p.endswith("/AddOrder")]
    assert len(bodies) >= 3 and all(b["validate"] == "true" for b in bodies)
    assert stub.unvalidated_orders == []
    orders = [json.loads(line) for line in (one_run(workspace) / "orders.jsonl").read_text().splitlines()]
    judged = [o for o in orders if "exchange_verdict" in o]
    assert len(judged) == len(bodies)
    assert judged[0]["exchange_verdict"].startswith("accepted (validate=true)") and judged[0]["status"] == "filled"
    rejected = [o for o in judged if o["status"] == "rejected"]
    assert rejected and all(o["reasons"][-1] == "exchange_rejected: EOrder:Insufficient funds" for o in rejected)
    no_secret_anywhere(workspace, out, err)


def test_live_session_on_an_unknown_symbol_is_refused_before_a_run_exists(workspace: Path, stub: KrakenStub) -> None:
    write_config(workspace, stub)
    out = run_cli("session", "run", "--source", "kraken", "--symbol", "DOGE/EUR", "--steps", "3", cwd=workspace)
    assert out.returncode == 1
    assert "unknown symbol 'DOGE/EUR'" in out.stderr  # refused during the warm-up: no half-made run
    assert not (workspace / "live_runs").exists() or not any((workspace / "live_runs").iterdir())


def test_testnet_without_credentials_names_both_variables(workspace: Path) -> None:
    out = run_cli(
        "session", "run", "--mode", "testnet", "--source", "kraken", cwd=workspace, env={"KRAKEN_API_SECRET": ""}
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "peaktrade: error: --mode testnet (every order is validated by Kraken) needs Kraken API credentials: set the "
        "environment variables KRAKEN_API_KEY and KRAKEN_API_SECRET (names configurable in [exchange] "
        "api_key_env/api_secret_env; never in the TOML)"
    ]


SIGNALS_HEADER = "generated_at,as_of,strategy_key,run_name,symbol,direction,size_hint,comment,extra_json\n"


def signals_file(workspace: Path, body: str, header: str = SIGNALS_HEADER) -> Path:
    path = workspace / "forward_test_signals.csv"
    path.write_text(header + body)
    return path


GOOD = (
    "2025-01-01T00:00:00Z,2025-01-01T00:00:00Z,ma_crossover,fwd1,BTC/EUR,1,,,\n"
    "2025-01-01T00:00:00Z,2025-01-01T00:00:00Z,ma_crossover,fwd1,ETH/EUR,-1,,,\n"
)


@pytest.mark.parametrize(
    ("body", "header", "says"),
    [
        (GOOD, SIGNALS_HEADER.replace("direction,", ""), "row 1: missing column 'direction'"),
        (GOOD.replace(",-1,", ",2,"), SIGNALS_HEADER, "row 3, column 'direction': must be -1 (sell), 0 (flat) or +1"),
        (GOOD.replace("ETH/EUR", "DOGE/EUR"), SIGNALS_HEADER, "row 3, column 'symbol': unknown symbol 'DOGE/EUR'"),
        (GOOD.replace(",fwd1,BTC", ",,BTC"), SIGNALS_HEADER, "row 2, column 'run_name': required value is empty"),
    ],
)
def test_ops_orders_bad_csv_is_one_line_with_file_row_column(
    workspace: Path, stub: KrakenStub, body: str, header: str, says: str
) -> None:
    write_config(workspace, stub)
    path = signals_file(workspace, body, header)
    out = run_cli("ops", "orders", str(path), cwd=workspace)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert str(path) in line and says in line
    assert not (workspace / "reports" / "live").exists()


def test_ops_orders_prices_from_ticker_checks_risk_and_writes_csv(workspace: Path, stub: KrakenStub) -> None:
    write_config(workspace, stub, "[live_risk]\nmax_order_notional = 400\n")
    path = signals_file(workspace, GOOD)
    warned = run_cli("ops", "orders", "--signals", str(path), "--notional", "500", cwd=workspace)
    assert warned.returncode == 0
    assert "max_order_notional_exceeded: limit=400 value=500" in warned.stdout
    assert "2 order(s) breach [live_risk] limits" in warned.stderr
    written = workspace / "reports" / "live" / "forward_test_orders.csv"
    lines = written.read_text().splitlines()
    assert lines[0].startswith("row,symbol,direction,side,qty,price,notional,price_source,risk,reasons")
    assert len(lines) == 3 and ",buy," in lines[1] and ",sell," in lines[2] and "kraken ticker" in lines[1]
    enforced = run_cli("ops", "orders", str(path), "--notional", "500", "--enforce-live-risk", cwd=workspace)
    assert enforced.returncode == 1 and "--enforce-live-risk" in enforced.stderr
    as_json = run_cli("ops", "orders", str(path), "--notional", "300", "--json", "--output-dir", "x", cwd=workspace)
    assert as_json.returncode == 0 and as_json.stderr == ""
    doc = json.loads(as_json.stdout)
    (btc, eth) = doc["orders"]
    assert btc["price"] == float(candle("XXBTZEUR", 299)[4])  # the stub's ticker: its newest committed close
    assert btc["side"] == "buy" and btc["notional"] == pytest.approx(300) and btc["risk"] == "ok"
    assert eth["side"] == "sell" and doc["output"] == "x/forward_test_orders.csv"
    skipped = run_cli("ops", "orders", str(path), "--skip-live-risk", "--enforce-live-risk", cwd=workspace)
    assert skipped.returncode == 2 and "not allowed with argument" in skipped.stderr


def test_ops_orders_exchange_down_says_what_to_do_and_offline_uses_local_runs(workspace: Path) -> None:
    with KrakenStub() as down:
        write_config(workspace, down)
        down.down = True
        path = signals_file(workspace, GOOD.splitlines()[0] + "\n")
        out = run_cli("ops", "orders", str(path), cwd=workspace)
        assert out.returncode == 1
        (line,) = out.stderr.strip().splitlines()
        assert "kraken AssetPairs: exchange unavailable" in line and "--offline" in line
        assert run_cli("session", "run", "--steps", "30", "--symbol", "BTC/EUR", cwd=workspace).returncode == 0
        offline = run_cli("ops", "orders", str(path), "--offline", "--json", cwd=workspace)
        assert offline.returncode == 0, offline.stderr
        (order,) = json.loads(offline.stdout)["orders"]
        assert order["price_source"].startswith("last bar of run ") and order["side"] == "buy"


def test_signals_generate_from_kraken_feeds_ops_orders(workspace: Path, stub: KrakenStub) -> None:
    write_config(workspace, stub)
    gen = run_cli(
        "signals", "generate", "--source", "kraken", "--symbol", "BTC/EUR", "--symbol", "ETH/EUR", cwd=workspace
    )
    assert gen.returncode == 0, gen.stderr
    (path,) = (workspace / "reports" / "forward").glob("forward_ma_crossover_1m_*_signals.csv")
    rows = path.read_text().splitlines()
    assert rows[0] == SIGNALS_HEADER.strip() and len(rows) == 3
    assert ",BTC/EUR," in rows[1] and ",ETH/EUR," in rows[2]
    assert ",2025-01-01T04:59:00+00:00," in rows[1]  # as_of: the newest committed candle, not the live one
    orders = run_cli("ops", "orders", "--signals", str(path), "--json", cwd=workspace)
    assert orders.returncode == 0, orders.stderr
    assert [o["symbol"] for o in json.loads(orders.stdout)["orders"]] == ["BTC/EUR", "ETH/EUR"]


def running_paper_run(workspace: Path) -> Path:
    """A run whose writer is this (live) test process: `running` with a fresh heartbeat, long BTC."""
    writer = RunWriter.create(
        workspace / "live_runs",
        mode="paper",
        strategy_name="ma_crossover",
        symbol="BTC/EUR",
        timeframe="1m",
        fsync=False,
    )
    for i in range(10):
        writer.append_event(event(i, position_size=0.1, close=39_000.0, equity=10_000.0 - 20 * i))
    writer.flush()
    return writer.run_dir


def test_ops_portfolio_joins_sessions_and_balances_with_risk(workspace: Path, stub: KrakenStub) -> None:
    write_config(workspace, stub, "[live_risk]\nmax_total_exposure_notional = 5000\nmax_daily_loss_pct = 1\n")
    running_paper_run(workspace)
    out = run_cli("ops", "portfolio", "--json", "--starting-cash", "10000", cwd=workspace, env=CREDS)
    assert out.returncode == 0, out.stderr
    snap = json.loads(out.stdout)
    by_source = {p["source"].split(" ")[0]: p for p in snap["positions"]}
    assert by_source["session"]["qty"] == 0.1 and by_source["session"]["price_from"] == "ticker"
    assert by_source["exchange"]["symbol"] == "BTC/EUR" and by_source["exchange"]["qty"] == 0.05
    assert snap["cash"] == {"EUR": 1500.0}
    risk = snap["risk"]
    assert risk["open_positions"] == 1 and risk["total_exposure"] == pytest.approx(
        0.15 * by_source["session"]["price"]
    )
    assert {c["name"] for c in risk["checks"]} == {"max_total_exposure_notional", "max_daily_loss_pct"}
    assert risk["daily_loss"] == pytest.approx(180.0)
    text = run_cli("ops", "portfolio", "--no-risk", cwd=workspace, env=CREDS)
    assert text.returncode == 0 and "risk:" not in text.stdout and "BTC/EUR" in text.stdout
    no_secret_anywhere(workspace, out.stdout, out.stderr, text.stdout, text.stderr)


def test_ops_portfolio_marks_at_last_bar_when_the_exchange_is_down(workspace: Path, stub: KrakenStub) -> None:
    write_config(workspace, stub)
    running_paper_run(workspace)
    stub.down = True
    out = run_cli("ops", "portfolio", "--json", cwd=workspace, env=CREDS)
    assert out.returncode == 0, out.stderr
    snap = json.loads(out.stdout)
    (pos,) = snap["positions"]
    assert pos["price"] == 39_000.0 and pos["price_from"].startswith("last bar of run ")
    assert any(n.startswith("exchange balances unavailable: kraken") for n in snap["notes"])
    assert any(n.startswith("exchange unreachable, marked at the last bar instead") for n in snap["notes"])
