from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from peaktrade import registry
from peaktrade.artifacts import scan_runs
from tests.conftest import T0, run_cli

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def add(reg: Path, i: int, *, mode: str, status: str, pnl: float, dd: float, error: str | None = None) -> None:
    rec = registry.new_record(
        session_id=f"session_{i:03d}",
        run_id=f"run_{i}",
        mode=mode,
        env_name="env",
        symbol="BTC/EUR",
        strategy="ma_crossover",
        started_at=T0 + timedelta(hours=i),
    )
    rec.update(
        status=status,
        error=error,
        finished_at=(T0 + timedelta(hours=i, minutes=30)).isoformat(),
        metrics={"realized_pnl": pnl, "max_drawdown": dd, "num_orders": 4},
    )
    registry.write_record(reg, rec)


def workspace_with_sessions(workspace: Path) -> Path:
    reg = workspace / "reports/experiments/live_sessions"
    add(reg, 1, mode="shadow", status="completed", pnl=100.0, dd=0.02)
    add(reg, 2, mode="paper", status="failed", pnl=-40.0, dd=0.08, error=XSS)
    add(reg, 3, mode="paper", status="completed", pnl=60.0, dd=0.05)
    add(reg, 4, mode="shadow", status="completed", pnl=-0.5, dd=0.01)
    return reg


def test_sessions_report_table_and_per_mode_summary(workspace: Path) -> None:
    workspace_with_sessions(workspace)
    out = run_cli("report", "sessions", "--stdout", cwd=workspace)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.index("session_004") < text.index("session_001")  # newest first
    assert "| Realized PnL (paper, EUR) | +20.00 |" in text and "| Realized PnL (shadow, EUR) | +99.50 |" in text
    assert "| Sessions | 4 |" in text and "| Average max drawdown | 4.00% |" in text
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_summary_only_respects_status_and_limit(workspace: Path) -> None:
    workspace_with_sessions(workspace)
    out = run_cli(
        "report", "sessions", "--stdout", "--summary-only", "--status", "completed", "--limit", "1", cwd=workspace
    )
    assert "| Sessions | 1 |" in out.stdout and "| Status completed | 1 |" in out.stdout
    assert "| Realized PnL (shadow, EUR) | -0.50 |" in out.stdout and "Realized PnL (paper" not in out.stdout


def test_files_in_both_formats_and_html_is_escaped(workspace: Path) -> None:
    workspace_with_sessions(workspace)
    out = run_cli("report", "sessions", "--output-format", "both", "--mode", "paper", cwd=workspace)
    paths = [Path(workspace / p) for p in out.stdout.split()]
    assert sorted(p.name.split("_", 1)[1] for p in paths) == [
        "sessions_report.html",
        "sessions_report.md",
        "sessions_summary.html",
        "sessions_summary.md",
    ]
    html_text = next(p for p in paths if p.name.endswith("report.html")).read_text()
    assert "<table>" in html_text and "<script>" not in html_text and "<img" not in html_text
    assert "&lt;script&gt;" in html_text
    assert "session_001" not in html_text  # --mode paper
    both_stdout = run_cli("report", "sessions", "--stdout", "--output-format", "both", cwd=workspace)
    assert both_stdout.returncode == 2


def test_empty_registry_gives_an_empty_report(workspace: Path) -> None:
    out = run_cli("report", "sessions", "--stdout", cwd=workspace)
    assert out.returncode == 0 and "No live sessions found" in out.stdout and "| Sessions | 0 |" in out.stdout


def test_run_report_with_png_charts(workspace: Path) -> None:
    assert run_cli("session", "run", "--steps", "1500", "--strategy", "momentum", cwd=workspace).returncode == 0
    [entry] = scan_runs(workspace / "live_runs").runs
    out = run_cli("report", "run", entry.run_id, cwd=workspace)
    assert out.returncode == 0, out.stderr
    report = Path(workspace / out.stdout.strip())
    assert report == workspace / "reports/runs" / entry.run_id / "report.md"
    for png in ("equity.png", "drawdown.png"):
        assert (report.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = report.read_text()
    [rec] = [json.loads(p.read_text()) for p in (workspace / "reports/experiments/live_sessions").glob("*.json")]
    m = rec["metrics"]
    assert f"| Realized PnL (net of fees) | {m['realized_pnl']:+,.2f} |" in text
    assert f"| Bars | {m['steps']} |" in text and "![equity](equity.png)" in text
    assert run_cli("report", "run", "nope", cwd=workspace).returncode == 1
