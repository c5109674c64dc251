"""Links never dangle: every relative link of every page points at a file of the same build, also after
incremental builds in which runs and sessions appear and disappear."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from peaktrade.cli import main
from tests.hostile.cases import REG, RUN_A, RUN_B, SESSIONS
from tests.sitefixture import make_workspace

HREF = re.compile(r'(?:href|src)="([^"#?]+)[^"]*"')


def build(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["site", "build"]) == 0
    return capsys.readouterr().out


def dangling(site: Path) -> list[str]:
    """Every relative link of every page whose target file does not exist."""
    bad = []
    for page in site.rglob("*.html"):
        for target in HREF.findall(page.read_text()):
            if target.startswith(("http:", "https:", "mailto:", "data:", "/")):
                continue
            if not (page.parent / target).exists():
                bad.append(f"{page.relative_to(site)} -> {target}")
    return bad


def test_pages_link_only_to_pages_that_exist(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_workspace(workspace)
    site = workspace / "site"
    run_a = site / "runs" / f"{RUN_A}.html"
    session_b = site / "sessions" / f"{SESSIONS[1]}.html"
    build(capsys)
    assert f'href="../sessions/{SESSIONS[0]}.html"' in run_a.read_text()
    assert f'href="../runs/{RUN_B}.html"' in session_b.read_text()
    assert dangling(site) == []

    # The session of run A disappears: its page goes, and run A's page (otherwise unchanged) drops the link.
    record = next((workspace / REG).glob(f"*{SESSIONS[0]}.json"))
    kept = record.read_bytes()
    record.unlink()
    build(capsys)
    assert not (site / "sessions" / f"{SESSIONS[0]}.html").exists()
    assert f"../sessions/{SESSIONS[0]}.html" not in run_a.read_text()
    assert dangling(site) == []

    # Run B disappears: session B's page (its record unchanged) keeps the id as text, without a link.
    parked = workspace / "parked"
    shutil.move(workspace / "live_runs" / RUN_B, parked)
    build(capsys)
    assert f"../runs/{RUN_B}.html" not in session_b.read_text() and RUN_B in session_b.read_text()
    assert dangling(site) == []

    # Both come back: the links come back too.
    record.write_bytes(kept)
    shutil.move(parked, workspace / "live_runs" / RUN_B)
    build(capsys)
    assert f'href="../sessions/{SESSIONS[0]}.html"' in run_a.read_text()
    assert f'href="../runs/{RUN_B}.html"' in session_b.read_text()
    assert dangling(site) == []


def test_a_corrupt_site_manifest_means_a_full_rebuild_said_once(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_workspace(workspace)
    build(capsys)
    (workspace / "state/site-manifest.json").write_text('{"signature": {}, "runs": 5}')
    assert main(["site", "build"]) == 0
    first = capsys.readouterr()
    assert "site-manifest.json" in first.err and "2 run pages, 3 session pages" in first.out
    assert main(["site", "build"]) == 0
    second = capsys.readouterr()
    assert "site-manifest.json" not in second.err and "0 run pages, 0 session pages" in second.out


@pytest.mark.parametrize(
    "argv",
    [("session", "show", ".."), ("monitor", "--once", "--run-id", ".."), ("report", "run", "..")],
)
def test_dotdot_is_not_a_valid_id(workspace: Path, capsys: pytest.CaptureFixture[str], argv: tuple) -> None:
    make_workspace(workspace)
    assert main(list(argv)) == 2
    assert "no '..'" in capsys.readouterr().err


def test_a_run_whose_events_cannot_be_read_still_has_its_page(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The runs list and the run's session page link to it: its page says what could not be read (found by an
    # attack: the page was left out, and both links dangled).
    make_workspace(workspace)
    (workspace / "live_runs" / RUN_A / "events.parquet").write_bytes(b"PAR1 not parquet at all")
    build(capsys)
    site = workspace / "site"
    page = (site / "runs" / f"{RUN_A}.html").read_text()
    assert "Not shown:" in page and "events.parquet" in page
    assert dangling(site) == []
