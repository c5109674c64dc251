"""Every reader over every case of the hostile-input corpus (tests/hostile/cases.py).

For each case: no command ends in "unexpected error", the bad file is named, no page carries live markup,
no terminal output carries a raw control character, and every JSON file of the site parses strictly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from peaktrade import monitoring
from peaktrade.cli import main
from peaktrade.errors import PeaktradeError
from tests.conftest import run_cli
from tests.hostile.cases import BAD_SID, CASES, REG, RUN_A, RUN_B, SESSIONS, Case
from tests.test_links import dangling

RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e]")
LIVE_MARKUP = ("<script>alert", "<img src=x")


def _strict(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


class Runner:
    """Runs the real CLI in-process and checks what reaches the terminal."""

    def __init__(self, capsys: pytest.CaptureFixture[str], case: Case):
        self.capsys = capsys
        self.case = case
        self.transcript: list[str] = []

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        rc = main(list(argv))
        out, err = self.capsys.readouterr()
        where = f"{self.case.name}: peaktrade {' '.join(argv)}"
        assert "unexpected error" not in err and "Traceback" not in err, f"{where}\n{err}"
        assert rc in (0, 1, 2), f"{where}: exit {rc}\n{err}"
        for stream in (out, err):
            found = RAW_CONTROL.search(stream)
            assert found is None, f"{where}: raw control character {found.group()!r} reached the terminal"
        self.transcript.append(out + err)
        return rc, out, err


def _named(bad: str, text: str) -> bool:
    """Is `bad` named in `text`? Messages carry the path as configured (relative) or resolved."""
    parts = Path(bad).parts
    return "/".join(parts[-2:]) in text


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_reader_survives_every_hostile_input(
    case: Case, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case.build(workspace)
    cli = Runner(capsys, case)

    rc, out, err = cli("site", "build")
    assert rc == 0, err
    if case.bad:
        assert _named(case.bad, err), f"{case.name}: site build did not name {case.bad}:\n{err}"
        health = _strict((workspace / "site/api/health.json").read_text())
        assert any(_named(case.bad, p) for p in health["problems"]), health["problems"]
    assert dangling(workspace / "site") == [], f"{case.name}: links to pages that were not written"
    for path in (workspace / "site").rglob("*"):
        if path.suffix == ".html":
            text = path.read_text()
            assert not any(m in text for m in LIVE_MARKUP), f"{case.name}: live markup in {path}"
        elif path.suffix == ".json":
            _strict(path.read_text())

    _, _, err = cli("session", "list")
    if case.bad and case.bad.startswith(REG):
        assert _named(case.bad, err), f"{case.name}: session list did not name {case.bad}:\n{err}"
    rc, out, _ = cli("session", "list", "--json", "--limit", "100")
    assert rc == 0
    for record in _strict(out):
        assert record["session_id"] not in ("..", "../../etc/passwd")
    for sid in (*SESSIONS, BAD_SID):
        rc, out, _ = cli("session", "show", sid)
        if rc == 0:
            _strict(out)

    rc, out, err = cli("runs", "list")
    if case.bad and case.bad.endswith("meta.json"):
        assert _named(case.bad, err), f"{case.name}: runs list did not name {case.bad}:\n{err}"
    rc, out, _ = cli("runs", "list", "--json")
    assert rc == 0
    _strict(out)

    reports = workspace / "reports/out"
    rc, out, _ = cli("report", "sessions", "--stdout")
    assert rc == 0
    rc, _, _ = cli("report", "sessions", "--output-format", "both", "--output-dir", str(reports))
    assert rc == 0
    for run_id in (RUN_A, RUN_B):
        cli("report", "run", run_id, "--output-dir", str(reports / run_id))
    for path in reports.rglob("*.html"):
        assert not any(m in path.read_text() for m in LIVE_MARKUP), f"{case.name}: live markup in {path}"

    cli("monitor", "--once", "--no-colors")
    for run_id in (RUN_A, RUN_B):
        cli("monitor", "--once", "--run-id", run_id)
    cli("monitor", "--list")
    rc, out, _ = cli("monitor", "--list", "--json")
    assert rc == 0
    _strict(out)

    runs_dir = workspace / "live_runs"
    for run_dir in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        for api in (monitoring.load_run_snapshot, lambda d: monitoring.load_run_tail(d, 20)):
            try:
                api(run_dir)
            except PeaktradeError as exc:  # ArtifactError / RunNotFound: reported, named
                assert run_dir.name in str(exc) or (case.bad and _named(case.bad, str(exc))), str(exc)
    monitoring.get_latest_run_dir(runs_dir)

    cli("runs", "recover")  # last: it finalizes the running run
    cli("site", "build")  # and the incremental build after it


def test_a_corrupt_cache_is_rebuilt_and_reported_once(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = next(c for c in CASES if c.name == "index_version_3_without_rows")
    case.build(workspace)
    cli = Runner(capsys, case)
    _, _, first = cli("session", "list")
    _, _, second = cli("session", "list")
    assert "registry-index.json" in first and "rebuilt" in first
    assert "registry-index.json" not in second


def test_terminal_payloads_are_shown_escaped(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = next(c for c in CASES if c.name == "record_hostile_text_everywhere")
    case.build(workspace)
    _, out, _ = Runner(capsys, case)("session", "list")
    assert "\\x1b]0;pwned\\x07" in out and "\\x9b31m" in out
    meta_case = next(c for c in CASES if c.name == "meta_hostile_text_everywhere")
    meta_case.build(workspace / "second")
    _, frame, _ = Runner(capsys, meta_case)(
        "monitor", "--once", "--run-dir", str(workspace / "second/live_runs" / RUN_B)
    )
    assert "\\x1b]52;c;cHduZWQ=\\x07" in frame and "\\x1b[2J" in frame


def test_real_processes_over_hostile_inputs(workspace: Path) -> None:
    names = ("record_every_field_wrong_type", "index_version_3_without_rows", "meta_is_fifo", "orders_garbage_lines")
    cases = [next(c for c in CASES if c.name == name) for name in names]
    cases[0].build(workspace)
    for case in cases[1:]:
        case.damage(workspace)
    for argv in (("site", "build"), ("session", "list"), ("monitor", "--once"), ("runs", "list")):
        done = run_cli(*argv, cwd=workspace, timeout=60)
        assert done.returncode in (0, 1, 2) and "unexpected error" not in done.stderr, (argv, done.stderr)
        assert RAW_CONTROL.search(done.stdout + done.stderr) is None
