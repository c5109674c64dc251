"""`peaktrade ops health`: each check's ok/warn/fail with real files and processes, exit codes, JSON, history."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from helpers.kraken_stub import KrakenStub

from peaktrade import healthlog, jobs
from peaktrade.clock import iso, utcnow
from peaktrade.liveness import process_start_ticks

SEED_KEYS = (
    "config_ok",
    "config_errors",
    "exchange_ok",
    "exchange_errors",
    "alerts_enabled",
    "alert_sinks_configured",
    "alert_config_warnings",
    "live_risk_ok",
    "live_risk_warnings",
)
GOOD_RISK = (
    "[live_risk]\nmax_order_notional = 1000.0\nmax_symbol_exposure_notional = 3000.0\n"
    "max_total_exposure_notional = 5000.0\nmax_daily_loss_abs = 200.0\n"
)
ALERT_URL = "json://127.0.0.1:9/hook-secret-token-xyz"


@pytest.fixture(autouse=True)
def kraken(request: pytest.FixtureRequest) -> KrakenStub | None:
    """A Kraken stand-in on 127.0.0.1 behind [exchange] api_url, so the exchange check is real and passes."""
    if "workspace" not in request.fixturenames:
        yield None
        return
    workspace = request.getfixturevalue("workspace")
    with KrakenStub() as stub:
        add_config(workspace, f'[exchange]\napi_url = "{stub.url}"\nrate_limit_ms = 0\n')
        yield stub


def health(workspace: Path, *flags: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli("ops", "health", *flags, cwd=workspace, env=env)


def health_json(workspace: Path, env: dict | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    out = health(workspace, "--json", env=env)
    return json.loads(out.stdout), out


def check(doc: dict, name: str) -> dict:
    return next(c for c in doc["checks"] if c["name"] == name)


def add_config(workspace: Path, text: str) -> None:
    path = workspace / "config/config.toml"
    path.write_text(path.read_text() + text)


def all_green(workspace: Path) -> dict:
    """A workspace where every check is ok: alert target, consistent limits, fresh site, recent jobs."""
    add_config(workspace, GOOD_RISK)
    (workspace / "site").mkdir()
    (workspace / "site/index.html").write_text("<html></html>")
    now = utcnow()
    for name in ("site-build", "runs-recover", "alerts-run"):
        jobs.record(workspace / "state", name, ok=True, started_at=now, finished_at=now)
    return {"PEAKTRADE_ALERT_URLS": ALERT_URL}


def write_run(workspace: Path, run_id: str, **meta) -> Path:
    run_dir = workspace / "live_runs" / run_id
    run_dir.mkdir(parents=True)
    now = iso(utcnow())
    doc = {
        "schema_version": 1,
        "run_id": run_id,
        "mode": "shadow",
        "strategy_name": "ma_crossover",
        "symbol": "BTC/EUR",
        "timeframe": "1m",
        "status": "running",
        "started_at": now,
        "heartbeat_at": now,
        "host": socket.gethostname(),
        **meta,
    }
    (run_dir / "meta.json").write_text(json.dumps(doc))
    return run_dir


def write_session(workspace: Path, session_id: str, run_id: str | None, status: str = "started") -> None:
    reg = workspace / "reports/experiments/live_sessions"
    reg.mkdir(parents=True, exist_ok=True)
    now = iso(utcnow())
    record = {
        "schema_version": 1,
        "session_id": session_id,
        "run_id": run_id,
        "run_type": "live_session_shadow",
        "mode": "shadow",
        "status": status,
        "started_at": now,
        "heartbeat_at": now,
    }
    (reg / f"20250101T000000_live_session_shadow_{session_id}.json").write_text(json.dumps(record))


def dead_pid() -> tuple[int, int | None]:
    """A pid whose process really ran on this host and is gone now (spawned, killed, reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ticks = process_start_ticks(proc.pid)
    proc.kill()
    proc.wait(timeout=10)
    return proc.pid, ticks


# -- output and exit codes --------------------------------------------------------------------------------------


def test_all_ok_exits_0_in_both_schemes(workspace: Path) -> None:
    env = all_green(workspace)
    text = health(workspace, env=env)
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.splitlines()[-1].startswith("overall: OK (all ok)")
    lines = text.stdout.splitlines()
    for name in ("config", "alerts", "risk", "sessions", "site", "artifacts", "disk", "jobs"):
        assert any(line.startswith("OK") and f" {name} " in line for line in lines), name
    nagios = health(workspace, "--nagios", env=env)
    assert nagios.returncode == 0 and nagios.stdout.startswith("PEAKTRADE HEALTH OK")


def test_degraded_exits_0_or_nagios_1_and_names_the_fix(workspace: Path) -> None:
    out = health(workspace)
    assert out.returncode == 0
    assert "overall: DEGRADED" in out.stdout
    site_line = next(line for line in out.stdout.splitlines() if " site " in line)
    assert site_line.startswith("WARN") and "fix: run `peaktrade site build`" in site_line
    nagios = health(workspace, "--nagios")
    assert nagios.returncode == 1 and nagios.stdout.startswith("PEAKTRADE HEALTH WARNING")


def test_broken_config_is_a_critical_fail_without_leaking_the_secret(workspace: Path) -> None:
    add_config(workspace, '[alerts]\nurls = "tgram://123456:SECRETTOKEN/999"\n[live_risk]\nmax_open_positions = -1\n')
    out = health(workspace)
    assert out.returncode == 1 and "overall: FAIL" in out.stdout
    assert "SECRETTOKEN" not in out.stdout + out.stderr
    doc, js = health_json(workspace)
    assert js.returncode == 1 and doc["overall"] == "FAIL" and doc["config_ok"] is False
    assert any("max_open_positions" in e for e in doc["config_errors"]) and len(doc["config_errors"]) == 2
    assert check(doc, "config")["critical"] is True and check(doc, "sessions")["status"] == "skip"
    assert "SECRETTOKEN" not in (workspace / "state/health/history.jsonl").read_text()
    assert health(workspace, "--nagios").returncode == 2


def test_json_prints_only_json_with_the_seed_keys(workspace: Path) -> None:
    out = health(workspace, "--json")
    doc = json.loads(out.stdout)  # nothing else on stdout
    assert set(SEED_KEYS) <= set(doc) and doc["overall"] in ("OK", "DEGRADED", "FAIL") and doc["checked_at"]
    for c in doc["checks"]:
        assert {"name", "status", "message", "fix", "seconds"} <= set(c) and c["status"] in ("ok", "warn", "fail")
    latest, problem = healthlog.latest(workspace / "state")  # what was printed is what was recorded
    assert problem is None and latest == {**doc, "schema_version": 1}


def test_control_characters_from_artifacts_are_escaped(workspace: Path) -> None:
    reg = workspace / "reports/experiments/live_sessions"
    reg.mkdir(parents=True)
    (reg / "bad\x1b[31mname.json").write_text("{not json")
    out = health(workspace)
    assert "\x1b" not in out.stdout and "\\x1b[31mname.json" in out.stdout


# -- checks -----------------------------------------------------------------------------------------------------


def test_alerts_by_scheme_only(workspace: Path) -> None:
    doc, _ = health_json(workspace)
    assert check(doc, "alerts")["status"] == "warn" and doc["alerts_enabled"] is False
    doc, out = health_json(workspace, env={"PEAKTRADE_ALERT_URLS": ALERT_URL})
    assert check(doc, "alerts")["status"] == "ok" and doc["alert_sinks_configured"] == ["json"]
    assert "secret-token" not in out.stdout
    doc, out = health_json(workspace, env={"PEAKTRADE_ALERT_URLS": "nosuchscheme://user:pw-secret@host"})
    alerts = check(doc, "alerts")
    assert alerts["status"] == "fail" and "nosuchscheme://" in alerts["message"] and "pw-secret" not in out.stdout


def test_alerts_config_file_missing_world_readable_private(workspace: Path) -> None:
    conf = workspace / "apprise.txt"
    add_config(workspace, f'[alerts]\nconfig_file = "{conf}"\n')
    doc, _ = health_json(workspace)
    assert check(doc, "alerts")["status"] == "fail" and "does not exist" in check(doc, "alerts")["message"]
    conf.write_text(f"ops={ALERT_URL}\n")
    conf.chmod(0o644)
    doc, out = health_json(workspace)
    alerts = check(doc, "alerts")
    assert alerts["status"] == "warn" and "world-readable" in alerts["message"] and "chmod 600" in alerts["fix"]
    assert "secret-token" not in out.stdout
    conf.chmod(0o600)
    doc, _ = health_json(workspace)
    assert check(doc, "alerts")["status"] == "ok" and doc["alert_sinks_configured"] == ["json"]


def test_risk_limits(workspace: Path) -> None:
    doc, _ = health_json(workspace)
    assert check(doc, "risk")["status"] == "warn" and "every risk limit is off" in doc["live_risk_warnings"][0]
    add_config(workspace, GOOD_RISK)
    doc, _ = health_json(workspace)
    assert check(doc, "risk")["status"] == "ok" and doc["live_risk_ok"] is True
    text = (workspace / "config/config.toml").read_text().replace("= 3000.0", "= 9000.0")
    (workspace / "config/config.toml").write_text(text)
    doc, out = health_json(workspace)
    assert check(doc, "risk")["status"] == "fail" and doc["live_risk_ok"] is False
    assert "max_symbol_exposure_notional" in check(doc, "risk")["message"] and out.returncode == 0  # not critical


def test_a_killed_writer_is_a_critical_fail(workspace: Path) -> None:
    writer = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests/helpers/writer_proc.py"),
            str(workspace / "live_runs"),
            "100",
            "10",
            "50",
            "60",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        writer.stdout.readline()  # the run directory
        assert writer.stdout.readline().startswith("flushed 10")  # durable, then it hangs in its pause
    finally:
        writer.kill()  # SIGKILL: no chance to mark the run finished
        writer.wait(timeout=10)
    doc, out = health_json(workspace)
    sessions = check(doc, "sessions")
    assert out.returncode == 1 and doc["overall"] == "FAIL"
    assert sessions["status"] == "fail" and sessions["critical"] is True and "writer died" in sessions["message"]
    assert "runs recover" in sessions["fix"]
    assert run_cli("runs", "recover", cwd=workspace).returncode == 0  # the runbook's fix works
    doc, out = health_json(workspace)
    assert check(doc, "sessions")["status"] == "ok" and out.returncode == 0


def test_a_live_writer_is_ok(workspace: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        meta = {"pid": proc.pid, "pid_start_ticks": process_start_ticks(proc.pid)}
        write_run(workspace, "20250101_000000_shadow_ma_crossover_BTC-EUR_1m_live01", **meta)
        doc, _ = health_json(workspace)
        assert check(doc, "sessions")["status"] == "ok" and "1 running" in check(doc, "sessions")["message"]
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_stale_and_stuck_sessions_degrade(workspace: Path) -> None:
    old = iso(utcnow() - timedelta(hours=2))
    write_run(
        workspace,
        "20250101_000000_shadow_ma_crossover_BTC-EUR_1m_stal01",
        host="another-host",
        pid=1,
        heartbeat_at=old,
        started_at=old,
    )
    doc, out = health_json(workspace)
    sessions = check(doc, "sessions")
    assert (
        sessions["status"] == "fail"
        and sessions["critical"] is False
        and "no heartbeat for 2 h" in sessions["message"]
    )
    assert out.returncode == 0 and doc["overall"] == "DEGRADED"
    shutil.rmtree(workspace / "live_runs")
    write_run(workspace, "20250101_000000_shadow_ma_crossover_BTC-EUR_1m_done01", status="completed")
    write_session(workspace, "session_stuck", "20250101_000000_shadow_ma_crossover_BTC-EUR_1m_done01")
    doc, _ = health_json(workspace)
    sessions = check(doc, "sessions")
    assert sessions["status"] == "warn" and "registry says started" in sessions["message"]
    assert "says completed" in sessions["message"]


def test_site_freshness(workspace: Path) -> None:
    doc, _ = health_json(workspace)
    assert check(doc, "site")["status"] == "warn" and "never built" in check(doc, "site")["message"]
    (workspace / "site").mkdir()
    index = workspace / "site/index.html"
    index.write_text("x")
    doc, _ = health_json(workspace)
    assert check(doc, "site")["status"] == "ok"
    old = time.time() - 3600
    os.utime(index, (old, old))
    doc, _ = health_json(workspace)
    assert check(doc, "site")["status"] == "fail" and "built 60 min ago" in check(doc, "site")["message"]


def test_unreadable_artifacts_are_named(workspace: Path) -> None:
    doc, _ = health_json(workspace)
    assert check(doc, "artifacts")["status"] == "ok"
    write_session(workspace, "session_fine", None, status="completed")
    bad = workspace / "reports/experiments/live_sessions/20250101T000000_live_session_shadow_broken.json"
    bad.write_text('{"truncated": ')
    run_dir = workspace / "live_runs/20250101_000000_shadow_ma_crossover_BTC-EUR_1m_bad001"
    run_dir.mkdir(parents=True)
    (run_dir / "meta.json").write_bytes(b"\xff\xfe garbage")
    doc, _ = health_json(workspace)
    artifacts = check(doc, "artifacts")
    assert artifacts["status"] == "warn" and "2 unreadable" in artifacts["message"]
    assert any(str(bad.name) in d for d in artifacts["details"]) and any("bad001" in d for d in artifacts["details"])


def test_disk_thresholds(workspace: Path) -> None:
    doc, _ = health_json(workspace)
    assert check(doc, "disk")["status"] in ("ok", "warn") and "free" in check(doc, "disk")["message"]
    add_config(workspace, "[health]\ndisk_warn_free_percent = 100.0\ndisk_warn_free_mb = 0.0\n")
    doc, _ = health_json(workspace)
    assert check(doc, "disk")["status"] == "warn"
    add_config(workspace, "disk_fail_free_percent = 100.0\n")
    doc, out = health_json(workspace)
    assert check(doc, "disk")["status"] == "fail" and out.returncode == 0


def test_jobs_never_ran_late_and_fresh(workspace: Path) -> None:
    doc, _ = health_json(workspace)
    jobs_check = check(doc, "jobs")
    assert jobs_check["status"] == "warn" and "site-build never ran" in jobs_check["message"]
    (workspace / "site").mkdir()
    assert run_cli("site", "build", cwd=workspace).returncode == 0  # records its own run
    assert run_cli("runs", "recover", cwd=workspace).returncode == 0
    long_ago = utcnow() - timedelta(hours=3)
    jobs.record(workspace / "state", "alerts-run", ok=True, started_at=long_ago, finished_at=long_ago)
    doc, _ = health_json(workspace)
    details = check(doc, "jobs")["details"]
    assert "alerts-run last succeeded 3 h ago (expected every 5 min)" in details
    assert any(d.startswith("site-build ok") for d in details) and any(
        d.startswith("runs-recover ok") for d in details
    )
    now = utcnow()
    jobs.record(workspace / "state", "alerts-run", ok=True, started_at=now, finished_at=now)
    doc, _ = health_json(workspace)
    assert check(doc, "jobs")["status"] == "ok"
    assert json.loads((workspace / "state/jobs/ops-health.json").read_text())["ok"] is True


# -- history ----------------------------------------------------------------------------------------------------


def test_history_is_bounded_by_retention(workspace: Path) -> None:
    add_config(workspace, "[health]\nhistory_retention = 3\n")
    for _ in range(5):
        health(workspace)
    history = healthlog.history(workspace / "state")
    assert len(history.results) == 3 and not history.problems


APPENDER = """
import sys
sys.path.insert(0, {root!r})
from peaktrade import healthlog
for i in range(40):
    healthlog.append({state!r}, {{"overall": "OK", "checked_at": f"{{sys.argv[1]}}-{{i}}", "checks": []}}, 1000)
"""


def test_history_survives_concurrent_writers(workspace: Path) -> None:
    script = APPENDER.format(root=str(ROOT), state=str(workspace / "state"))
    procs = [subprocess.Popen([sys.executable, "-c", script, f"w{n}"]) for n in range(4)]
    procs.append(subprocess.Popen([sys.executable, "-m", "peaktrade", "ops", "health"], cwd=workspace, env=_env()))
    assert [p.wait(timeout=120) for p in procs][:4] == [0, 0, 0, 0]
    history = healthlog.history(workspace / "state")
    assert not history.problems and len(history.results) == 4 * 40 + 1
    stamps = [r["checked_at"] for r in history.results]
    assert len(set(stamps)) == len(stamps)
    for n in range(4):  # each writer's results in its own order
        mine = [s for s in stamps if s.startswith(f"w{n}-")]
        assert mine == [f"w{n}-{i}" for i in range(40)]
    latest, problem = healthlog.latest(workspace / "state")
    assert problem is None and latest is not None


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PEAKTRADE_CONFIG", None)
    return env


# -- site -------------------------------------------------------------------------------------------------------


def test_site_shows_latest_timeline_and_badge(workspace: Path) -> None:
    env = all_green(workspace)
    assert health(workspace, env=env).returncode == 0
    assert run_cli("site", "build", cwd=workspace).returncode == 0
    page = (workspace / "site/health.html").read_text()
    assert "Latest <code>ops health</code>" in page and 'class="cell st-ok"' in page
    assert 'class="badge st-ok"' in page and "health: OK" in page
    pid, ticks = dead_pid()
    write_run(workspace, "20250101_000000_shadow_ma_crossover_BTC-EUR_1m_dead02", pid=pid, pid_start_ticks=ticks)
    assert health(workspace, env=env).returncode == 1
    assert run_cli("site", "build", cwd=workspace).returncode == 0
    page = (workspace / "site/health.html").read_text()
    assert 'class="cell st-fail"' in page and "sessions ok &rarr;" in page and "runs recover" in page
    api = json.loads((workspace / "site/api/health.json").read_text())
    assert api["status"] == "fail" and api["latest"]["overall"] == "FAIL"
    history = json.loads((workspace / "site/api/health/history.json").read_text())
    assert [r["overall"] for r in history["results"]] == ["OK", "FAIL"]
    sessions_page = (workspace / "site/sessions/index.html").read_text()  # not re-rendered for its own sake
    assert "health: FAIL" in sessions_page


def test_a_late_result_makes_the_badge_degraded(workspace: Path) -> None:
    env = all_green(workspace)
    assert health(workspace, env=env).returncode == 0
    assert run_cli("site", "build", cwd=workspace).returncode == 0
    later = str(int(time.time()) + 3 * 3600)
    assert run_cli("site", "build", cwd=workspace, env={"SOURCE_DATE_EPOCH": later}).returncode == 0
    api = json.loads((workspace / "site/api/health.json").read_text())
    assert api["ops_health"]["late"] is True and api["status"] == "degraded"


# -- cron -------------------------------------------------------------------------------------------------------


def cron_commands(text: str) -> list[str]:
    """The commands of crontab.example: comment and variable lines dropped, the 5 schedule fields cut."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ("=" in line.split()[0]):
            continue
        out.append(line.split(None, 5)[5])
    return out


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock (util-linux) not installed")
def test_every_crontab_line_works_after_the_demo(tmp_path: Path) -> None:
    home = tmp_path / "project"
    (home / "config").mkdir(parents=True)
    shutil.copy(ROOT / "config/config.toml", home / "config/config.toml")
    venv_bin = home / ".venv/bin"
    venv_bin.mkdir(parents=True)
    wrapper = venv_bin / "peaktrade"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m peaktrade "$@"\n')
    wrapper.chmod(0o755)
    assert run_cli("demo", cwd=home).returncode == 0
    shutil.rmtree(home / "state", ignore_errors=True)  # no line may rely on state/ existing
    commands = cron_commands((ROOT / "crontab.example").read_text())
    assert any("ops health" in c for c in commands) and any("site build" in c for c in commands)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PEAKTRADE_HOME": str(home)}
    for command in commands:
        done = subprocess.run(["bash", "-c", command], env=env, cwd=tmp_path, capture_output=True, timeout=300)
        log = (home / "state/cron.log").read_text() if (home / "state/cron.log").exists() else ""
        assert done.returncode in (0, 75), f"{command}\n{done.stderr.decode()}\n{log}"
    log = (home / "state/cron.log").read_text()
    assert "overall:" in log and "site/index.html" in log


def test_a_hanging_check_is_reported_and_left_behind(workspace: Path) -> None:
    import threading

    from peaktrade import config
    from peaktrade.health import run_checks
    from peaktrade.health.checks import Context, check_disk

    release = threading.Event()

    def hangs(ctx):
        release.wait()  # like a read on a dead NFS mount: never returns on its own

    ctx = Context(settings=config.load(None), now=utcnow())
    try:
        results = run_checks(ctx, [("stuck", hangs), ("disk", check_disk)], budget_seconds=0.2)
    finally:
        release.set()
    stuck = next(r for r in results if r.name == "stuck")
    assert stuck.status == "fail" and "did not finish within the 0.2 s budget" in stuck.message
    assert [(r.name, r.status) for r in results] == [("config", "ok"), ("stuck", "fail"), ("disk", "skip")]


def test_an_exchange_failure_is_critical_only_when_something_needs_the_exchange(workspace: Path) -> None:
    from peaktrade import config
    from peaktrade.health import CheckResult, evaluate
    from peaktrade.health.checks import Context

    def probe(ctx: Context) -> CheckResult:  # how the exchange check reports a failed probe
        return CheckResult("exchange", "fail", "unreachable", critical=ctx.needs_exchange())

    assert evaluate([probe(Context(settings=config.load(None), now=utcnow()))]) == "DEGRADED"
    add_config(workspace, '[session]\nmode = "testnet"\n')
    assert evaluate([probe(Context(settings=config.load(None), now=utcnow()))]) == "FAIL"
    (workspace / "config/config.toml").write_text("")
    run_id = "20250101_000000_shadow_ma_crossover_BTC-EUR_1m_krak01"
    write_run(workspace, run_id, pid=os.getpid(), data_source="kraken")  # a running session on live data
    assert evaluate([probe(Context(settings=config.load(None), now=utcnow()))]) == "FAIL"


# -- exchange: a real public call to a local Kraken stand-in --------------------------------------------------


def test_exchange_up_down_and_needed(workspace: Path, kraken: KrakenStub) -> None:
    env = all_green(workspace)
    doc, out = health_json(workspace, env=env)
    assert check(doc, "exchange")["status"] == "ok" and doc["exchange_ok"] is True and out.returncode == 0
    assert kraken.count("SystemStatus") >= 1

    kraken.down = True  # 503 on every request: unreachable, but nothing needs it -> DEGRADED, exit 0
    doc, out = health_json(workspace, env=env)
    found = check(doc, "exchange")
    assert found["status"] == "fail" and doc["overall"] == "DEGRADED" and out.returncode == 0
    assert doc["exchange_ok"] is False and doc["exchange_errors"] and "nothing running needs it" in found["message"]

    add_config(workspace, '[session]\nsource = "kraken"\n')  # now the config's sessions need it -> FAIL
    out = health(workspace, env=env)
    assert out.returncode == 1 and "overall: FAIL" in out.stdout
    assert health(workspace, "--nagios", env=env).returncode == 2


def test_exchange_refused_or_slow_answers_within_the_probe_deadline(workspace: Path, kraken: KrakenStub) -> None:
    env = all_green(workspace)
    kraken.slow_seconds = 20.0
    kraken.fail("slow", times=5)
    doc, out = health_json(workspace, env=env)  # the probe gives up long before the stub answers
    assert check(doc, "exchange")["status"] == "fail" and out.returncode == 0
    assert all(c["status"] != "skip" for c in doc["checks"])  # the slow probe took no other check's time

    kraken.stop()  # connection refused
    doc, _ = health_json(workspace, env=env)
    assert check(doc, "exchange")["status"] == "fail" and "cannot reach" in check(doc, "exchange")["message"]
