"""`peaktrade alerts run` end to end against real endpoints on 127.0.0.1: HTTP (json://, form://) and SMTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from peaktrade import healthlog, registry
from peaktrade.artifacts import RunWriter
from peaktrade.clock import iso, utcnow
from tests.alertsinks import HttpSink, SmtpSink, start_http_sink
from tests.conftest import ROOT, event, run_cli

TOKEN = "tok-9f8e7d6c5b4a"  # part of every target URL: must never show up anywhere


@pytest.fixture
def sink():
    sink, server = start_http_sink()
    yield sink
    if sink.hold is not None:
        sink.hold.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp():
    s = SmtpSink()
    yield s
    s.stop()


def configure(ws: Path, sink: HttpSink, smtp: SmtpSink | None = None, extra: str = "") -> None:
    """Targets in an apprise YAML file: json + form tagged `ops`, mail tagged `critical`."""
    urls = [f'  - "json://{sink.host}/ops-{TOKEN}":\n      - tag: ops\n']
    urls.append(f'  - "form://{sink.host}/form-{TOKEN}":\n      - tag: ops\n')
    if smtp is not None:
        urls.append(f'  - "{smtp.url()}&name={TOKEN}":\n      - tag: critical\n')
    (ws / "apprise.yml").write_text("version: 1\nurls:\n" + "".join(urls))
    (ws / "config" / "config.toml").write_text(
        '[shadow_paper_logging]\nfsync = false\n[site]\nbase_url = "https://ops.example.org/pt/"\n'
        f'[alerts]\nconfig_file = "apprise.yml"\n{extra}'
    )


def running_run(ws: Path, run_id: str, **over) -> RunWriter:
    """A run written by this (live) process: its writer counts as alive."""
    w = RunWriter.create(
        ws / "live_runs",
        mode="shadow",
        strategy_name="ma_crossover",
        symbol="BTC/EUR",
        timeframe="1m",
        run_id=run_id,
        session_id=f"s_{run_id}",
        fsync=False,
        flush_rows=1000,
        flush_seconds=1e9,
    )
    for i in range(3):
        w.append_event(event(i, **over))
    w.flush()
    return w


def set_drawdown(w: RunWriter, step: int, drawdown: float) -> None:
    w.append_event(event(step, drawdown=drawdown))
    w.flush()


def failed_session(ws: Path, sid: str, status: str = "failed", ended: datetime | None = None) -> None:
    ended = ended or utcnow()
    rec = registry.new_record(
        session_id=sid,
        run_id=None,
        mode="paper",
        env_name="t",
        symbol="ETH/EUR",
        strategy="breakout",
        started_at=ended - timedelta(minutes=5),
    )
    rec.update(status=status, finished_at=iso(ended), error="DataError: feed closed")
    registry.write_record(ws / "reports/experiments/live_sessions", rec)


def health(ws: Path, overall: str, checks: list[dict], at: datetime | None = None) -> None:
    doc = {"overall": overall, "checked_at": iso(at or utcnow()), "checks": checks}
    healthlog.append(ws / "state", doc, 100)


def alerts_run(ws: Path, *extra: str) -> subprocess.CompletedProcess:
    out = run_cli("alerts", "run", *extra, cwd=ws)
    assert "Traceback" not in out.stderr, out.stderr
    return out


def payloads(sink: HttpSink, path: str = "/ops") -> list[dict]:
    return [p.fields() for p in sink.to(path)]


def test_one_message_per_target_per_run_however_many_alerts(workspace: Path, sink, smtp) -> None:
    configure(workspace, sink, smtp)
    w = running_run(workspace, "run_a")
    for _ in range(5):
        w.append_order({"ts": iso(utcnow()), "status": "blocked", "reasons": ["max_order_notional_exceeded: x"]})
    w.append_order({"ts": iso(utcnow()), "status": "blocked", "reasons": ["max_open_positions_reached: 1"]})
    w.append_order({"ts": iso(utcnow()), "status": "filled", "reasons": []})
    w.flush()
    failed_session(workspace, "sess_f1")
    failed_session(workspace, "sess_f2", "aborted")
    health(workspace, "FAIL", [{"name": "disk", "status": "fail", "message": "2% free", "fix": "free space"}])
    out = alerts_run(workspace)
    assert out.returncode == 0, out.stderr
    assert "3 targets: form, json, mailto" in out.stdout
    ops, form = payloads(sink, "/ops"), payloads(sink, "/form")
    assert len(ops) == 1 and len(form) == 1
    msg = ops[0]
    assert msg["title"] == "[peaktrade] 2 critical, 2 warning"
    assert msg["type"] == "failure"
    assert "max_order_notional_exceeded`: 5" in msg["message"] and "max_open_positions_reached`: 1" in msg["message"]
    assert "sess_f1" in msg["message"] and "DataError: feed closed" in msg["message"]
    assert "https://ops.example.org/pt/runs/run_a.html" in msg["message"]
    assert form[0]["title"] == msg["title"]
    # routed by severity: the mail target (tag critical) gets the critical items only, in one mail
    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["Subject"] == "[peaktrade] 2 critical"
    text = mail.as_string()
    assert "sess_f1" in text and "max_order_notional" not in text
    # a second run with nothing new sends nothing: conditions are held back, the session is announced once
    again = alerts_run(workspace)
    assert again.returncode == 0
    assert len(payloads(sink)) == 1 and len(smtp.messages) == 1
    assert "1 suppressed" in again.stdout and "nothing to send" in again.stdout
    w.close()


def test_escalation_goes_out_at_once_then_one_resolved_message(workspace: Path, sink) -> None:
    configure(workspace, sink, extra="attach_charts = false\n")
    w = running_run(workspace, "run_dd")
    set_drawdown(w, 3, 0.12)
    assert alerts_run(workspace).returncode == 0
    first = payloads(sink)
    assert len(first) == 1 and first[0]["type"] == "warning" and "drawdown 12.0%" in first[0]["title"]
    assert first[0]["attachments"] == []  # attach_charts = false
    assert alerts_run(workspace).returncode == 0  # same level within the cool-down: held back
    assert len(payloads(sink)) == 1
    set_drawdown(w, 4, 0.25)
    assert alerts_run(workspace).returncode == 0
    second = payloads(sink)[-1]
    assert len(payloads(sink)) == 2
    assert second["type"] == "failure" and "drawdown 25.0%" in second["title"]
    assert "Severity rose" in second["message"] and "+1 repeat(s) suppressed" in second["message"]
    set_drawdown(w, 5, 0.0)
    assert alerts_run(workspace).returncode == 0
    third = payloads(sink)[-1]
    assert len(payloads(sink)) == 3
    assert third["type"] == "success" and third["title"] == "[peaktrade] RESOLVED run run_dd: drawdown 25.0%"
    assert alerts_run(workspace).returncode == 0
    assert len(payloads(sink)) == 3  # resolved once
    w.close()


def test_a_target_down_then_up_gets_the_pending_message_once(workspace: Path, sink) -> None:
    configure(workspace, sink)
    failed_session(workspace, "sess_down")
    sink.down = True
    out = alerts_run(workspace)
    assert out.returncode == 1
    assert "0 delivered, 2 failed" in out.stdout and "item(s) pending" in out.stdout
    from peaktrade.alerts import outbox_status

    status = outbox_status(workspace / "state")
    assert status.failing and status.pending_items == 2 and status.failing_targets == ["form", "json"]
    jobs = json.loads((workspace / "state/jobs/alerts-run.json").read_text())
    assert jobs["ok"] is False
    sink.down = False
    out = alerts_run(workspace)
    assert out.returncode == 0 and "2 delivered, 0 failed, 0 item(s) pending" in out.stdout
    msgs = payloads(sink)
    assert len(msgs) == 1 and "sess_down" in msgs[0]["message"]
    assert not outbox_status(workspace / "state").failing
    assert alerts_run(workspace).returncode == 0
    assert len(payloads(sink)) == 1 and len(payloads(sink, "/form")) == 1


def test_two_alert_runs_at_the_same_moment_send_nothing_twice(workspace: Path, sink) -> None:
    configure(workspace, sink)
    failed_session(workspace, "sess_race")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PEAKTRADE_CONFIG", None)
    cmd = [sys.executable, "-m", "peaktrade", "alerts", "run"]
    # Simultaneous start: whoever loses the lock exits 75 or finds nothing new.
    procs = [
        subprocess.Popen(cmd, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in "ab"
    ]
    codes = sorted(p.wait(60) for p in procs)
    assert codes in ([0, 0], [0, 75])
    assert len(payloads(sink)) == 1 and len(payloads(sink, "/form")) == 1
    # Deterministic overlap: the first run is held inside delivery while the second starts.
    import threading

    failed_session(workspace, "sess_race2")
    sink.hold = threading.Event()
    sink.got_one.clear()
    first = subprocess.Popen(cmd, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert sink.got_one.wait(60)
    second = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 75 and "another `alerts-run` is running" in second.stderr
    sink.hold.set()
    assert first.wait(60) == 0
    assert len(payloads(sink)) == 2 and "sess_race2" in payloads(sink)[-1]["message"]


def test_no_url_or_token_in_any_output_or_file(workspace: Path, sink, smtp) -> None:
    configure(workspace, sink, smtp, extra=f'urls = ["json://{sink.host}/inline-{TOKEN}"]\n')
    w = running_run(workspace, "run_sec")
    set_drawdown(w, 3, 0.3)
    failed_session(workspace, "sess_sec")
    outputs = []
    sink.down = True
    outputs.append(alerts_run(workspace))
    outputs.append(alerts_run(workspace, "--dry-run"))
    sink.down = False
    outputs.append(alerts_run(workspace))
    assert len(payloads(sink, "/inline")) == 1
    outputs.append(run_cli("alerts", "test", cwd=workspace))
    outputs.append(run_cli("config", "show", cwd=workspace))
    outputs.append(run_cli("site", "build", cwd=workspace))
    assert outputs[-1].returncode == 0, outputs[-1].stderr
    assert "4 targets: form, json x2, mailto" in outputs[0].stdout
    for out in outputs:
        assert TOKEN not in out.stdout + out.stderr and sink.host not in out.stdout + out.stderr
    for folder in ("state", "site", "live_runs", "reports"):
        for path in (workspace / folder).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert TOKEN.encode() not in data and sink.host.encode() not in data, path
    w.close()


def test_drawdown_alert_attaches_the_equity_chart(workspace: Path, sink) -> None:
    configure(workspace, sink)
    w = running_run(workspace, "run_png")
    set_drawdown(w, 3, 0.15)
    assert alerts_run(workspace).returncode == 0
    (msg,) = payloads(sink)
    (att,) = msg["attachments"]
    assert att["filename"] == "run_png.png" and att["mimetype"] == "image/png"
    (form,) = payloads(sink, "/form")
    (filename, ctype, data) = form["files"][0]
    assert filename == "run_png.png" and ctype == "image/png" and data.startswith(b"\x89PNG")
    w.close()


def test_blocked_orders_are_counted_from_where_the_last_run_stopped(workspace: Path, sink) -> None:
    configure(workspace, sink, extra="cooldown_seconds = 0.0\n")
    w = running_run(workspace, "run_blk")
    w.append_order({"status": "blocked", "reasons": ["max_order_notional_exceeded: a", "max_x_warning: b"]})
    w.flush()
    assert alerts_run(workspace).returncode == 0
    assert "max_order_notional_exceeded`: 1" in payloads(sink)[-1]["message"]
    for _ in range(3):
        w.append_order({"status": "blocked", "reasons": ["min_order_notional_below_limit: a"]})
    w.flush()
    assert alerts_run(workspace).returncode == 0
    last = payloads(sink)[-1]["message"]
    assert "3 new order(s) blocked" in last and "min_order_notional_below_limit`: 3" in last
    assert "max_order_notional_exceeded" not in last
    assert alerts_run(workspace).returncode == 0
    assert len(payloads(sink)) == 2
    w.close()


def test_dead_writer_and_exchange_down_from_the_health_history(workspace: Path, sink) -> None:
    configure(workspace, sink)
    w = running_run(workspace, "run_dead")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    meta_path = workspace / "live_runs/run_dead/meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(pid=int(gone.stdout), pid_start_ticks=1)
    meta_path.write_text(json.dumps(meta))
    now = utcnow()
    fail = {"name": "exchange", "status": "fail", "message": "kraken: connection refused", "fix": "check network"}
    health(workspace, "OK", [{**fail, "status": "ok"}], now - timedelta(minutes=30))
    health(workspace, "DEGRADED", [fail], now - timedelta(minutes=20))
    health(workspace, "DEGRADED", [fail], now - timedelta(minutes=1))
    out = alerts_run(workspace, "--dry-run")
    assert out.returncode == 0
    assert "writer dead" in out.stdout and "peaktrade runs recover --run-id run_dead" in out.stdout
    assert "exchange unreachable for 20 min" in out.stdout and "kraken: connection refused" in out.stdout
    assert "health DEGRADED" in out.stdout
    assert not (workspace / "state/alerts").exists() and payloads(sink) == []  # dry run: nothing sent or written
    w.closed = True  # the "dead" writer must not finalize the run


def test_alerts_pages_and_json(workspace: Path, sink) -> None:
    configure(workspace, sink)
    w = running_run(workspace, "run_page")
    set_drawdown(w, 3, 0.5)
    failed_session(workspace, "sess_page")
    assert alerts_run(workspace).returncode == 0
    out = run_cli("site", "build", cwd=workspace)
    assert out.returncode == 0, out.stderr
    site = workspace / "site"
    records = json.loads((site / "api/alerts.json").read_text())
    assert {r["event"] for r in records} >= {"raised", "sent", "delivered"}
    assert records == sorted(records, key=lambda r: r["at"], reverse=True)
    per_run = json.loads((site / "api/runs/run_page/alerts.json").read_text())
    assert per_run and all(r["run_id"] == "run_page" for r in per_run)
    page = (site / "alerts.html").read_text()
    assert 'href="runs/run_page.html"' in page and 'href="sessions/sess_page.html"' in page
    assert 'data-severity="critical"' in page
    run_page = (site / "runs/run_page.html").read_text()
    assert "drawdown 50.0%" in run_page
    assert 'href="alerts.html"' in (site / "index.html").read_text()
    w.close()


def test_gather_uses_the_artifact_file_names() -> None:
    from peaktrade.alerts import gather
    from peaktrade.artifacts import schema

    assert (gather.META, gather.ORDERS, gather.FINAL) == (schema.META, schema.ORDERS, schema.FINAL_STATUSES)


def test_daily_loss_counts_from_the_last_equity_before_midnight(workspace: Path, sink) -> None:
    configure(workspace, sink)
    w = RunWriter.create(
        workspace / "live_runs",
        mode="paper",
        strategy_name="breakout",
        symbol="ETH/EUR",
        timeframe="1m",
        run_id="run_day",
        fsync=False,
        flush_rows=1000,
        flush_seconds=1e9,
    )
    midnight = datetime(2025, 1, 2, tzinfo=UTC)
    for i, equity in enumerate([12_000.0, 10_000.0, 9_800.0, 9_600.0]):  # the last bar before midnight: 10,000
        w.append_event(event(i, ts_bar=midnight + timedelta(minutes=i - 2), equity=equity))
    w.flush()
    out = alerts_run(workspace, "--dry-run")
    assert "run run_day: daily loss 4.0%" in out.stdout
    assert "lost **400.00** (4.00%) on 2025-01-02 UTC, from 10,000.00 to 9,600.00" in out.stdout
    assert "daily_loss_warning_pct" in out.stdout
    w.close()


def test_text_config_file_routes_by_tag(workspace: Path, sink) -> None:
    (workspace / "apprise.txt").write_text(
        f"# TEXT format: tags=url\ncritical=json://{sink.host}/phone-{TOKEN}\nops=form://{sink.host}/chat-{TOKEN}\n"
    )
    (workspace / "config" / "config.toml").write_text(
        '[alerts]\nconfig_file = "apprise.txt"\nroute_warning = ["ops"]\nroute_critical = ["critical"]\n'
    )
    w = running_run(workspace, "run_txt")
    w.append_order({"status": "blocked", "reasons": ["max_open_positions_reached: 1"]})
    w.flush()
    out = alerts_run(workspace)
    assert out.returncode == 0 and "2 targets: form, json" in out.stdout
    assert len(payloads(sink, "/chat")) == 1 and payloads(sink, "/phone") == []  # a warning: chat only
    failed_session(workspace, "sess_txt")
    assert alerts_run(workspace).returncode == 0
    assert len(payloads(sink, "/phone")) == 1 and len(payloads(sink, "/chat")) == 1  # critical: phone only
    w.close()
