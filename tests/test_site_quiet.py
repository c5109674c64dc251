"""The quiet path of `site build`: nothing changed and nothing depends on the clock, so only the freshness stamps
are rewritten; any change, a clock deadline or a running session means a real build."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from peaktrade.site import quiet
from tests.conftest import ROOT, run_cli
from tests.helpers.probes import WORKER, spying_build
from tests.sitefixture import FIXED_EPOCH, make_workspace

QUIET = "no input changed since the last build"
REGISTRY = "reports/experiments/live_sessions"
RUNNING_RUN = "live_runs/20250101_120000_shadow_breakout_ETH-EUR_1m_bbbb0002"


def build(workspace: Path, epoch: int = int(FIXED_EPOCH), *args: str):
    out = run_cli("site", "build", *args, cwd=workspace, env={"SOURCE_DATE_EPOCH": str(epoch)})
    assert out.returncode == 0, out.stderr
    return out


def run_cli_python(code: str, workspace: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SOURCE_DATE_EPOCH": FIXED_EPOCH}
    env.pop("PEAKTRADE_CONFIG", None)
    return subprocess.run([sys.executable, "-c", code], cwd=workspace, env=env, capture_output=True, text=True)


def finished_workspace(workspace: Path) -> None:
    """The fixture with its running session finished: nothing on the site depends on the clock."""
    make_workspace(workspace)
    meta_path = workspace / RUNNING_RUN / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(status="completed", ended_at="2025-01-01T13:00:00+00:00")
    meta_path.write_text(json.dumps(meta))
    for path in (workspace / REGISTRY).glob("*.json"):
        rec = json.loads(path.read_text())
        if rec["status"] == "started":
            rec.update(status="completed", finished_at="2025-01-01T13:00:00+00:00")
            path.write_text(json.dumps(rec))


OK_TITLE = "ops health: never ran · build: 0 problem(s), 0 stale run(s)"


def stamp(data: bytes) -> dict:
    """`build-time.js` as the page's script sees it."""
    text = data.decode()
    assert text.startswith("window.PEAKTRADE_BUILD=") and text.endswith(";\n")
    return json.loads(text.removeprefix("window.PEAKTRADE_BUILD=").removesuffix(";\n"))


def pages(workspace: Path) -> dict[str, bytes]:
    site = workspace / "site"
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


def test_a_build_that_finds_nothing_changed_rewrites_only_the_freshness_stamps(workspace: Path) -> None:
    finished_workspace(workspace)
    first = build(workspace)
    assert QUIET not in first.stdout and (workspace / "state/site-quiet.json").is_file()
    before = pages(workspace)
    second = build(workspace, int(FIXED_EPOCH) + 600)
    assert QUIET in second.stdout
    after = pages(workspace)
    changed = {name for name in before if before[name] != after[name]}
    stamps = {"build-time.js", "metrics.prom", "api/health.json", "api/live/status/snapshot.json"}
    assert changed == stamps and set(after) == set(before)
    assert f'"built":{int(FIXED_EPOCH) + 600}' in after["build-time.js"].decode()
    stamp_before, stamp_after = (stamp(pages["build-time.js"]) for pages in (before, after))
    assert stamp_after["health"] == stamp_before["health"] == {"status": "ok", "title": OK_TITLE}
    metrics = after["metrics.prom"].decode()
    assert metrics.endswith(f"peaktrade_site_generated_timestamp_seconds {int(FIXED_EPOCH) + 600}\n")
    assert metrics.replace(str(int(FIXED_EPOCH) + 600), FIXED_EPOCH) == before["metrics.prom"].decode()
    job = json.loads((workspace / "state/jobs/site-build.json").read_text())
    assert job["ok"] and job["detail"].startswith("nothing changed")


def test_an_in_place_edit_of_a_record_is_seen(workspace: Path) -> None:
    finished_workspace(workspace)
    build(workspace)
    record = next((workspace / REGISTRY).glob("*_paper_aaaa01.json"))
    text = record.read_text()
    with record.open("r+") as fh:  # in place, same size: the directory's mtime does not change
        fh.write(text.replace('"mode": "paper"', '"mode": "shdow"'))
    out = build(workspace)
    assert QUIET not in out.stdout and "1 session pages" in out.stdout
    assert "shdow" in (workspace / "site/sessions/session_20250101_000000_paper_aaaa01.html").read_text()
    assert QUIET in build(workspace).stdout  # and settled again


def test_a_new_or_removed_run_file_means_a_build(workspace: Path) -> None:
    finished_workspace(workspace)
    build(workspace)
    orders = workspace / RUNNING_RUN / "orders.jsonl"
    with orders.open("a") as fh:  # appended in place: the directory does not change
        fh.write(json.dumps({"ts": "2025-01-01T12:30:00+00:00", "step": 30, "side": "sell", "qty": 0.1}) + "\n")
    out = build(workspace)
    assert QUIET not in out.stdout and "1 run pages" in out.stdout
    (workspace / "site/index.html").unlink()  # a site someone deleted is built again, whatever the inputs
    out = build(workspace)
    assert QUIET not in out.stdout and (workspace / "site/index.html").is_file()


def test_a_running_session_never_takes_the_quiet_path(workspace: Path) -> None:
    make_workspace(workspace)  # one session still running: its heartbeat age and stale state move with the clock
    build(workspace)
    assert not (workspace / "state/site-quiet.json").exists()
    later = build(workspace, int(FIXED_EPOCH) + 3600)
    assert QUIET not in later.stdout and "STALE" in (workspace / "site/index.html").read_text()


def test_an_ops_health_result_going_late_ends_the_quiet_path(workspace: Path) -> None:
    finished_workspace(workspace)
    now = datetime.fromtimestamp(int(FIXED_EPOCH), UTC)
    health = workspace / "state/health"
    health.mkdir(parents=True)
    latest = {"overall": "OK", "checked_at": (now - timedelta(minutes=1)).isoformat(), "checks": []}
    (health / "latest.json").write_text(json.dumps(latest))
    build(workspace)
    assert "health: OK" in (workspace / "site/index.html").read_text()
    assert QUIET in build(workspace, int(FIXED_EPOCH) + 60).stdout  # still fresh: nothing to re-render
    # [health] interval 300 s x 5 missed intervals: late 25 min after the check
    late = build(workspace, int(FIXED_EPOCH) + 25 * 60)
    assert QUIET not in late.stdout
    page = (workspace / "site/health.html").read_text()
    assert "is cron running <code>peaktrade ops health</code>" in page
    assert "health: DEGRADED" in (workspace / "site/index.html").read_text()
    assert QUIET not in build(workspace, int(FIXED_EPOCH) + 26 * 60).stdout  # late: its age moves with the clock


def test_full_and_a_corrupt_record_mean_a_build(workspace: Path) -> None:
    finished_workspace(workspace)
    build(workspace)
    assert QUIET not in build(workspace, int(FIXED_EPOCH), "--full").stdout
    quiet = workspace / "state/site-quiet.json"
    for bad in (b"\xff{", b'{"version": 2, "signature": 5, "until": null, "problems": [], "site": ""}'):
        quiet.write_bytes(bad)
        out = build(workspace)
        assert QUIET not in out.stdout and "state/site-quiet.json" in out.stderr  # named once
        again = build(workspace)  # a problem said once is not repeated: built in full, and settled
        assert QUIET not in again.stdout and again.stderr == ""
        assert json.loads(quiet.read_text())["version"] == 2
    quiet.write_text(json.dumps({"version": 99}))  # another release's: built in full without a word
    out = build(workspace)
    assert QUIET not in out.stdout and out.stderr == ""


def test_problems_of_the_last_build_are_repeated_and_transient_ones_are_not_settled(workspace: Path) -> None:
    finished_workspace(workspace)
    (workspace / REGISTRY / "broken.json").write_text("{not json")
    (workspace / "state").mkdir(exist_ok=True)
    (workspace / "state/site-manifest.json").write_text("{corrupt")  # said once: "the whole site was rebuilt"
    first = build(workspace)
    assert "site-manifest.json" in first.stderr and "broken.json" in first.stderr
    second = build(workspace)  # the lasting problem only, seen by the first build too: settled
    assert QUIET not in second.stdout and "site-manifest.json" not in second.stderr
    third = build(workspace)
    assert QUIET in third.stdout and "broken.json" in third.stderr and "site-manifest.json" not in third.stderr
    (workspace / REGISTRY / "broken.json").unlink()
    fourth = build(workspace)
    assert QUIET not in fourth.stdout and fourth.stderr == ""
    assert "problem" not in (workspace / "site/api/health.json").read_text().replace('"problems":[]', "")


def test_the_site_check_of_ops_health_sees_a_quiet_build(workspace: Path) -> None:
    finished_workspace(workspace)
    build(workspace)
    old = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    for name in ("index.html", "build-time.js"):
        os.utime(workspace / "site" / name, (old, old))
    record = json.loads((workspace / "state/site-quiet.json").read_text())  # as if built two hours ago
    record["site"] = quiet.site_signature(workspace / "site")
    (workspace / "state/site-quiet.json").write_text(json.dumps(record))
    out = run_cli("site", "build", cwd=workspace)  # the real clock: the fixture's times are long past
    assert QUIET in out.stdout
    health = run_cli("ops", "health", "--json", cwd=workspace)
    site = next(c for c in json.loads(health.stdout)["checks"] if c["name"] == "site")
    assert site["status"] == "ok", site


def test_the_quiet_path_imports_no_pyarrow(workspace: Path) -> None:
    finished_workspace(workspace)
    build(workspace)
    probe = (
        "import sys; from peaktrade.cli import main; rc = main(['site', 'build']); "
        "print(rc, sorted(m for m in ('pyarrow', 'numpy', 'jinja2', 'pandas') if m in sys.modules))"
    )
    out = run_cli_python(probe, workspace)
    assert out.stdout.splitlines()[-1] == "0 []" and QUIET in out.stdout, out.stdout + out.stderr


def test_the_quiet_path_reads_no_manifest_and_starts_no_worker(workspace: Path) -> None:
    """The manifest (1 MB at 10,000 sessions) is read early only when a run's stats changed since the last full
    build, to start the worker for its page; a quiet build reads stats only."""
    finished_workspace(workspace)
    build(workspace)
    probe = spying_build(("peaktrade.site.manifest", "load", "manifest"), (*WORKER, "worker"))
    out = run_cli_python(probe, workspace)
    assert out.stdout.splitlines()[-1] == "0 []" and QUIET in out.stdout, out.stdout + out.stderr
    meta = workspace / RUNNING_RUN / "meta.json"
    meta.write_text(meta.read_text().replace('"notes": "note"', '"notes": "changed"'))
    out = run_cli_python(probe, workspace)  # a run changed: read once, early, and its page rendered by a worker
    assert out.stdout.splitlines()[-1] == "0 ['manifest', 'worker']", out.stdout + out.stderr


def test_other_code_renders_every_page_again(workspace: Path) -> None:
    """Pages are rendered by Python too (badges, numbers, charts): after an upgrade, pages whose inputs did not
    change are rendered again, not kept as the old code left them."""
    make_workspace(workspace)
    build(workspace)
    assert " 0 run pages, 0 session pages re-rendered" in build(workspace).stdout  # a session runs: not quiet
    probe = (
        "from peaktrade.site import manifest; manifest.code_digest = lambda: b'another release'\n"
        "from peaktrade.cli import main; main(['site', 'build'])"
    )
    out = run_cli_python(probe, workspace)
    assert " 2 run pages, 3 session pages re-rendered" in out.stdout, out.stdout + out.stderr


def test_an_in_place_edit_of_a_symlinked_records_target_is_seen(workspace: Path) -> None:
    finished_workspace(workspace)
    registry = workspace / REGISTRY
    record = next(registry.glob("*_paper_aaaa01.json"))
    (registry / "kept").mkdir()
    target = registry / "kept/aaaa01.json"
    record.rename(target)
    record.symlink_to("kept/aaaa01.json")  # inside the registry: the registry reads its target
    build(workspace)
    assert QUIET in build(workspace).stdout
    text = target.read_text()
    with target.open("r+") as fh:  # in place: neither the link nor a directory changes
        fh.write(text.replace('"mode": "paper"', '"mode": "shdow"'))
    out = build(workspace)
    assert QUIET not in out.stdout
    assert "shdow" in (workspace / "site/sessions/session_20250101_000000_paper_aaaa01.html").read_text()


def test_pages_deleted_or_edited_by_hand_are_written_again(workspace: Path) -> None:
    finished_workspace(workspace)
    build(workspace)
    site = workspace / "site"
    full = pages(workspace)
    for damage in (
        lambda: (site / "static/freshness.js").unlink(),  # every page's freshness header needs it
        lambda: (site / "api/health.json").unlink(),
        lambda: (site / "health.html").write_text("defaced"),
        lambda: (site / "metrics.prom").write_bytes(full["metrics.prom"].replace(b"peaktrade_run_equity{", b"x{")),
    ):
        assert QUIET in build(workspace).stdout
        damage()
        out = build(workspace)
        assert QUIET not in out.stdout
        assert pages(workspace) == full


def test_the_clock_in_the_json_api_is_the_builds(workspace: Path) -> None:
    finished_workspace(workspace)
    now = datetime.fromtimestamp(int(FIXED_EPOCH), UTC)
    (workspace / "state/health").mkdir(parents=True)
    latest = {"overall": "OK", "checked_at": (now - timedelta(minutes=1)).isoformat(), "checks": []}
    (workspace / "state/health/latest.json").write_text(json.dumps(latest))
    build(workspace)
    later = int(FIXED_EPOCH) + 20 * 60  # the result is 21 min old, not yet late (25 min)
    assert QUIET in build(workspace, later).stdout
    stamped = ("api/health.json", "api/live/status/snapshot.json")
    quiet = {name: pages(workspace)[name] for name in stamped}
    assert json.loads(quiet["api/health.json"])["ops_health"]["age"] == "21 min"
    assert QUIET in build(workspace, later).stdout  # the stamps rewritten are no edit by hand
    build(workspace, later, "--full")
    assert quiet == {name: pages(workspace)[name] for name in stamped}


def test_a_quiet_record_half_written_by_a_killed_build_is_removed(workspace: Path) -> None:
    finished_workspace(workspace)
    build(workspace)
    left = workspace / "state/.site-quiet.json.4242.tmp"  # what write_json leaves when killed mid-write
    for args in ((), ("--full",)):
        left.write_text('{"version"')
        out = build(workspace, int(FIXED_EPOCH), *args)
        assert (QUIET in out.stdout) == (not args) and not left.exists()


def test_a_loop_started_before_an_upgrade_does_not_vouch_for_the_new_code(workspace: Path, tmp_path: Path) -> None:
    finished_workspace(workspace)
    tree = tmp_path / "tree"  # a copy of this code, "upgraded" while a `site build --loop` runs it
    for name in ("peaktrade", "templates"):
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tree), "NO_COLOR": "1", "SOURCE_DATE_EPOCH": FIXED_EPOCH}
    env.pop("PEAKTRADE_CONFIG", None)
    cmd = [sys.executable, "-m", "peaktrade", "site", "build"]
    assert subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, timeout=120).returncode == 0
    # unbuffered: `select` sees every line the loop prints
    loop = subprocess.Popen([*cmd, "--loop", "1"], cwd=workspace, env=env, stdout=subprocess.PIPE, bufsize=0)
    try:
        assert QUIET in _next_line(loop)
        views = tree / "peaktrade/views.py"
        views.write_text(views.read_text().replace('"completed": "OK"', '"completed": "DONE"'))
        _next_line(loop)
        _next_line(loop)  # at least one build of the loop began after the upgrade
    finally:
        loop.kill()
        loop.wait(timeout=60)
    out = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    assert QUIET not in out.stdout and ">DONE<" in (workspace / "site/index.html").read_text()


def _next_line(proc: subprocess.Popen) -> str:
    """The next line `proc` prints; fails after 60 s without one."""
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    assert ready, "no output from `site build --loop` within 60 s"
    return proc.stdout.readline().decode()


def test_a_fifo_in_place_of_a_stamped_file_does_not_hang_the_build(workspace: Path) -> None:
    finished_workspace(workspace)
    build(workspace)
    for name in ("metrics.prom", "api/health.json"):
        path = workspace / "site" / name
        path.unlink()
        os.mkfifo(path)  # read, it would block forever, with the build's lock held
        out = build(workspace)
        assert QUIET not in out.stdout and path.is_file()


def test_temp_files_of_a_quiet_build_killed_while_writing_the_stamps_are_removed(workspace: Path) -> None:
    finished_workspace(workspace)
    build(workspace)
    # what write_bytes leaves in the directories of the stamped files when the quiet build is killed mid-write
    left = [
        workspace / "site" / name for name in ("api/.health.json.4242.tmp", "api/live/status/.snapshot.json.4242.tmp")
    ]
    for args in ((), ("--full",)):
        for path in left:
            path.write_text("{")
        out = build(workspace, int(FIXED_EPOCH), *args)
        assert (QUIET in out.stdout) == (not args) and not [p for p in left if p.exists()]


def test_state_caches_half_written_by_a_killed_build_are_removed(workspace: Path) -> None:
    make_workspace(workspace)
    build(workspace)
    # a build killed while saving its caches: it consumed the marker of the build before and wrote none
    (workspace / "state/site-build.finished").unlink()
    left = [workspace / "state" / f".{name}.4242.tmp" for name in ("run-scan.json", "run-summaries.json")]
    for path in left:
        path.write_text('{"version"')
    out = build(workspace)
    assert not [p for p in left if p.exists()] and "removed 2 temp file(s)" in out.stderr


def test_file_names_that_are_not_utf8_are_named_and_do_not_crash_the_build(workspace: Path) -> None:
    finished_workspace(workspace)
    os.mkdir(os.fsencode(workspace / "live_runs") + b"/run\xff")  # bytes no UTF-8 decoder takes (surrogateescape)
    (workspace / REGISTRY).joinpath(os.fsdecode(b"record\xfe.json")).write_text("{")
    for epoch in (int(FIXED_EPOCH), int(FIXED_EPOCH) + 60, int(FIXED_EPOCH) + 120):  # the second settles
        out = run_cli("site", "build", cwd=workspace, env={"SOURCE_DATE_EPOCH": str(epoch)})
        assert out.returncode == 0 and "run\\udcff" in out.stderr and "record\\udcfe.json" in out.stderr, out.stderr
    assert QUIET in out.stdout
    health = json.loads((workspace / "site/api/health.json").read_text())
    assert any("run\\udcff" in p.encode(errors="backslashreplace").decode() for p in health["problems"])
    # its result (state/health/) names the run dir too; its output is read as text here
    checked = run_cli("ops", "health", cwd=workspace, env={"PYTHONIOENCODING": "utf-8:backslashreplace"})
    assert "unexpected error" not in checked.stderr and "run\\udcff" in checked.stdout + checked.stderr


def test_a_directory_in_place_of_the_quiet_record_is_named_and_does_not_crash_the_build(workspace: Path) -> None:
    finished_workspace(workspace)
    (workspace / "state/site-quiet.json/inner").mkdir(parents=True)
    for args in ((), ("--full",), ()):
        out = run_cli("site", "build", *args, cwd=workspace, env={"SOURCE_DATE_EPOCH": FIXED_EPOCH})
        assert out.returncode == 0 and QUIET not in out.stdout, out.stderr
    assert "state/site-quiet.json" in out.stderr


def test_a_lasting_cache_problem_is_repeated_only_until_it_is_fixed(workspace: Path) -> None:
    finished_workspace(workspace)
    cache = workspace / "state/run-scan.json"
    (cache / "inner").mkdir(parents=True)  # cannot be rebuilt: each full build names it again
    for _ in range(2):  # the second settles: it saw the problem of the first
        build(workspace, int(FIXED_EPOCH), "--full")
    assert QUIET in (out := build(workspace)).stdout and "run-scan.json" in out.stderr  # a lasting problem
    shutil.rmtree(cache)  # the fix the problem names
    out = build(workspace)
    assert QUIET not in out.stdout and "run-scan.json" not in out.stderr and cache.is_file()


def test_the_stamp_carries_a_badge_whatever_api_health_json_holds() -> None:
    # the quiet path reads the badge back from api/health.json, which a person may have edited
    now = datetime.fromtimestamp(int(FIXED_EPOCH), UTC)
    odd = [{}, {"status": ["ok"], "ops_health": "x", "problems": "x"}, {"status": "</script>", "stale_runs": {}}]
    for health in odd:
        assert stamp(quiet.build_stamp(now, 60, health))["health"] == {"status": "degraded", "title": OK_TITLE}
    late = {"status": "fail", "ops_health": {"overall": "<b>", "late": True, "age": "2 h"}, "problems": ["a", "b"]}
    text = quiet.build_stamp(now, 60, late).decode()
    assert "<" not in text and text.isascii()
    assert stamp(text.encode())["health"] == {
        "status": "fail",
        "title": "ops health: <b> (result 2 h old) · build: 2 problem(s), 0 stale run(s)",
    }


def test_a_problem_that_went_away_is_no_reason_for_a_quiet_build_before_every_page_says_so(workspace: Path) -> None:
    # A bad orders.jsonl line found while rendering a run page is kept; when it is fixed, the build that renders
    # the page finds it gone, but pages it left alone were rendered DEGRADED. The next build renders them all
    # again (badge back to OK) instead of taking the quiet path; then it is quiet again.
    finished_workspace(workspace)
    orders = workspace / RUNNING_RUN / "orders.jsonl"
    good = orders.read_bytes()
    orders.write_bytes(good + b"[1, 2]\n")
    build(workspace)
    build(workspace)  # the problem is expected now: every page DEGRADED
    sessions = workspace / "site/sessions/index.html"
    assert "health: DEGRADED" in sessions.read_text()
    orders.write_bytes(good)
    assert "1 run pages" in build(workspace).stdout
    again = build(workspace)
    assert QUIET not in again.stdout and "health: OK" in sessions.read_text()
    assert QUIET in build(workspace).stdout
