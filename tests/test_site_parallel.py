"""The parallel page rendering of `site build`: same output as serial, and a build killed with SIGKILL in the
middle of it leaves no worker, no lock and no temp file behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from peaktrade import registry
from tests.conftest import ROOT, T0
from tests.helpers.probes import WORKER, spying_build
from tests.sitefixture import FIXED_EPOCH, make_workspace
from tests.test_summaries import legacy_run

PARALLEL = "[site]\nparallel_min_pages = 1\n"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def build_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "peaktrade", "site", "build", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "SOURCE_DATE_EPOCH": FIXED_EPOCH}


def run_python(code: str, workspace: Path) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter in the workspace: a probe around the real CLI."""
    return subprocess.run([sys.executable, "-c", code], cwd=workspace, env=env(), capture_output=True, text=True)


def _built_then_source_changed(workspace: Path, source: str) -> Path:
    """The fixture built once, then one run's `data_source` changed to `source`; returns that run's page."""
    make_workspace(workspace)
    first = subprocess.run(build_cmd(), cwd=workspace, env=env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    meta_path = workspace / "live_runs/20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001/meta.json"
    meta_path.write_text(meta_path.read_text().replace('"data_source": "synthetic:42"', f'"data_source": "{source}"'))
    return workspace / "site/runs" / f"{meta_path.parent.name}.html"


def add_sessions(workspace: Path, n: int) -> None:
    reg = workspace / "reports/experiments/live_sessions"
    for i in range(n):
        rec = registry.new_record(
            session_id=f"session_bulk_{i:05d}",
            run_id=None,
            mode="paper",
            env_name="fixture",
            symbol="BTC/EUR",
            strategy="momentum",
            started_at=T0 + timedelta(seconds=i),
        )
        rec.update(status="completed", finished_at=(T0 + timedelta(seconds=i + 60)).isoformat())
        registry.write_record(reg, rec)


def with_config(workspace: Path, extra: str) -> Path:
    path = workspace / "config" / "parallel.toml"
    path.write_text((workspace / "config" / "config.toml").read_text() + extra)
    return path


def test_parallel_output_equals_serial_output(workspace: Path) -> None:
    make_workspace(workspace)
    add_sessions(workspace, 30)
    serial = subprocess.run(
        build_cmd("--out", "serial"), cwd=workspace, env=env(), capture_output=True, text=True, timeout=300
    )
    assert serial.returncode == 0, serial.stderr
    assert "worker processes" not in serial.stdout
    config = with_config(workspace, PARALLEL)
    parallel = subprocess.run(
        build_cmd("--config", str(config), "--out", "parallel"),
        cwd=workspace,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert parallel.returncode == 0, parallel.stderr
    assert "2 run pages, 33 session pages re-rendered by" in parallel.stdout
    assert "worker processes" in parallel.stdout
    serial_tree, parallel_tree = tree(workspace / "serial"), tree(workspace / "parallel")
    assert sorted(serial_tree) == sorted(parallel_tree)
    assert [name for name in serial_tree if serial_tree[name] != parallel_tree[name]] == []


def _children(pid: int) -> list[int]:
    """Live processes whose parent is `pid` and that run multiprocessing's spawned worker main."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != b"Z" and b"spawn_main" in cmdline:
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def test_sigkill_during_a_parallel_build_leaves_nothing_behind(workspace: Path) -> None:
    make_workspace(workspace)
    add_sessions(workspace, 400)
    config = with_config(workspace, PARALLEL)
    proc = subprocess.Popen(
        build_cmd("--config", str(config)),
        cwd=workspace,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
        workers = _children(proc.pid)
        time.sleep(0.005)
    assert len(workers) >= 2, "the build never started its worker processes"
    # the workers are still importing or rendering: the build waits for them, so it is still running here
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "worker processes outlived the killed build"
    again = subprocess.run(build_cmd(), cwd=workspace, env=env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr  # not 75: nobody holds the lock any more
    assert [p for p in (workspace / "site").rglob("*.tmp")] == []
    assert (workspace / "site" / "index.html").is_file()
    job = json.loads((workspace / "state" / "jobs" / "site-build.json").read_text())
    assert job["ok"] is True and job["job"] == "site-build"


def test_a_killed_builds_temp_files_are_removed_by_the_next(workspace: Path) -> None:
    make_workspace(workspace)
    site = workspace / "site" / "runs"
    site.mkdir(parents=True)
    (site / ".x.html.4242.tmp").write_text("half a page")
    (workspace / "state").mkdir()
    (workspace / "state" / ".site-manifest.json.4242.tmp").write_text("{")
    (workspace / "state" / ".alerts-gate.json.4242.tmp").write_text("{")  # another job's: not ours to remove
    out = subprocess.run(build_cmd(), cwd=workspace, env=env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "removed 2 temp file(s) an interrupted build left" in out.stderr
    assert list((workspace / "site").rglob("*.tmp")) == []
    assert (workspace / "state" / ".alerts-gate.json.4242.tmp").exists()


def test_a_problem_found_while_rendering_leaves_reaches_every_page_header(workspace: Path) -> None:
    # The session lists are rendered while the workers render the leaves; a problem only a leaf finds (a bad
    # orders.jsonl line) must still show in their header, as on the pages rendered after the leaves.
    make_workspace(workspace)
    add_sessions(workspace, 30)
    run_dir = next(p for p in sorted((workspace / "live_runs").iterdir()) if (p / "orders.jsonl").exists())
    with open(run_dir / "orders.jsonl", "a") as fh:
        fh.write("[1, 2]\n")
    config = with_config(workspace, PARALLEL)
    for out, args in (("serial", ()), ("parallel", ("--config", str(config)))):
        built = subprocess.run(
            build_cmd(*args, "--out", out), cwd=workspace, env=env(), capture_output=True, text=True, timeout=300
        )
        assert built.returncode == 0, built.stderr
        site = workspace / out
        index, sessions = (site / "index.html").read_text(), (site / "sessions/index.html").read_text()
        assert "health: DEGRADED" in index, out
        header = index[index.index('class="badge st-') : index.index("</a>", index.index('class="badge st-'))]
        assert header in sessions, out  # the same badge, problem count included
        assert header in (site / "runs/index.html").read_text(), out  # rendered meanwhile too
        health = json.loads((site / "api/health.json").read_text())
        assert any("orders.jsonl" in p for p in health["problems"]), out


def _build_after_a_change_equals_a_full_build(workspace: Path, change: Callable[[], Path]) -> Path:
    """Build, `change()` one run (returns its directory), build again: the build process imports no pyarrow or
    numpy (the changed run's page is rendered by one worker), and the site equals what a full build writes."""
    first = subprocess.run(build_cmd(), cwd=workspace, env=env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    run_dir = change()
    imported = "sorted(m for m in ('pyarrow', 'numpy', 'pandas') if m in sys.modules)"
    probe = spying_build((*WORKER, "worker"), show=f"len(seen), {imported}")
    out = run_python(probe, workspace)
    assert out.stdout.splitlines()[-1] == "0 1 []", out.stdout + out.stderr  # one worker, no pyarrow here
    assert " 1 run pages, 0 session pages re-rendered" in out.stdout, out.stdout
    full = subprocess.run(
        build_cmd("--full", "--out", "full"), cwd=workspace, env=env(), capture_output=True, text=True, timeout=300
    )
    assert full.returncode == 0, full.stderr
    incremental, rebuilt = tree(workspace / "site"), tree(workspace / "full")
    assert sorted(incremental) == sorted(rebuilt)
    assert [name for name in incremental if incremental[name] != rebuilt[name]] == []
    return workspace / "site/api/runs" / run_dir.name


def test_one_changed_run_is_rendered_by_one_worker_and_the_build_imports_no_pyarrow(workspace: Path) -> None:
    make_workspace(workspace)
    meta_path = workspace / "live_runs/20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001/meta.json"

    def change() -> Path:
        meta = json.loads(meta_path.read_text())
        meta["data_source"] = "kraken-csv:XBTEUR_1.csv"
        meta_path.write_text(json.dumps(meta))
        return meta_path.parent

    _build_after_a_change_equals_a_full_build(workspace, change)
    assert "kraken-csv:XBTEUR_1.csv" in (workspace / "site/runs" / f"{meta_path.parent.name}.html").read_text()


def test_live_track_is_written_after_the_run_pages_whose_sparklines_it_shows(workspace: Path) -> None:
    """The summary pages are rendered while the worker renders the changed run's page; `index.html` shows the
    sparkline that page writes, so it waits for it."""
    make_workspace(workspace)
    run_dir = workspace / "live_runs/20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001"

    def change() -> Path:
        (workspace / "site/api/runs" / run_dir.name / "sparkline.json").unlink()  # written again with its page
        meta = json.loads((run_dir / "meta.json").read_text())
        (run_dir / "meta.json").write_text(json.dumps({**meta, "notes": "changed"}))
        return run_dir

    _build_after_a_change_equals_a_full_build(workspace, change)  # index.html included
    assert '<svg class="spark"' in (workspace / "site/index.html").read_text()


def test_a_run_in_the_original_format_rewritten_is_summarized_by_the_worker(workspace: Path) -> None:
    make_workspace(workspace)
    runs = workspace / "live_runs"
    name = "20250102_000000_paper_ma_crossover_BTC-EUR_1m_cccc0003"
    legacy_run(runs, name, 500)

    def change() -> Path:  # Peak_Trade rewrites its event file: a new file with more rows
        shutil.rmtree(runs / name)
        return legacy_run(runs, name, 800)

    api = _build_after_a_change_equals_a_full_build(workspace, change)
    assert json.loads((api / "snapshot.json").read_text())["total_steps"] == 800


def test_a_worker_starts_early_only_when_a_run_changed_not_for_stray_entries(workspace: Path) -> None:
    """Entries of the runs directory that are no run (a dot-file, a note, an empty directory) stay as they were:
    no build after them starts a worker for them (each would cost a process importing pyarrow)."""
    make_workspace(workspace)
    runs = workspace / "live_runs"
    (runs / ".gitkeep").write_text("")
    (runs / "notes.txt").write_text("ops notes")
    (runs / "empty_run").mkdir()
    probe = spying_build((*WORKER, 1))  # lists a 1 per worker process started

    def build() -> str:
        out = run_python(probe, workspace)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()[-1]

    assert build() == "0 []"  # the first build: few pages, rendered here
    assert build() == "0 []"  # not quiet (a session is running), but no run changed
    meta_path = runs / "20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001/meta.json"
    meta_path.write_text(meta_path.read_text().replace('"notes": "note"', '"notes": "changed"'))
    assert build() == "0 [1]"
    (runs / "notes.txt").write_text("more ops notes")
    assert build() == "0 [1]"  # a stray entry that changed still counts: its stats are all there is


def test_without_working_multiprocessing_a_changed_run_is_rendered_in_process(workspace: Path) -> None:
    """A host without POSIX semaphores (no /dev/shm) cannot start workers: a build after a run changed renders
    its page in the build process instead of failing."""
    page = _built_then_source_changed(workspace, "csv:x")
    probe = (
        "import multiprocessing.synchronize as s\n"
        "def unsupported(*a, **k): raise OSError(38, 'Function not implemented')\n"
        "s.SemLock.__init__ = unsupported\n"
        "from peaktrade.cli import main; print(main(['site', 'build']))"
    )
    out = run_python(probe, workspace)
    assert out.stdout.splitlines()[-1] == "0", out.stdout + out.stderr
    assert "csv:x" in page.read_text()


def test_a_killed_early_worker_costs_only_time(workspace: Path) -> None:
    """The early worker killed with SIGKILL (as the out-of-memory killer would) before it renders: the build renders
    the changed run page itself, says so, and exits 0; the next build is clean."""
    page = _built_then_source_changed(workspace, "csv:y")
    probe = (
        "import os, signal, time\n"
        "from peaktrade.site import render\n"
        "leaves = render.Build._write_leaves\n"
        "def kill_then_render(self, *a):\n"
        "    for pid in list(self._early._processes):\n"
        "        os.kill(pid, signal.SIGKILL)\n"
        "    time.sleep(0.5)\n"
        "    return leaves(self, *a)\n"
        "render.Build._write_leaves = kill_then_render\n"
        "from peaktrade.cli import main; print(main(['site', 'build']))"
    )
    out = run_python(probe, workspace)
    assert out.stdout.splitlines()[-1] == "0", out.stdout + out.stderr
    assert "a worker process of this build died" in out.stdout + out.stderr
    assert "csv:y" in page.read_text()
    again = subprocess.run(build_cmd(), cwd=workspace, env=env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "worker process" not in again.stdout + again.stderr, again.stdout


def test_the_early_worker_starts_before_the_registry_is_read(workspace: Path) -> None:
    """It imports pyarrow for the changed run's page while the build stats the registry's records (10,000 take
    ~0.1 s) and imports the build, instead of after."""
    page = _built_then_source_changed(workspace, "csv:z")
    probe = spying_build((*WORKER, "worker"), ("peaktrade.registry", "listing", "registry"))
    out = run_python(probe, workspace)
    assert out.stdout.splitlines()[-1] == "0 ['worker', 'registry']", out.stdout + out.stderr
    assert "csv:z" in page.read_text()


def test_a_newest_record_that_cannot_be_read_is_said_whether_or_not_a_worker_ran(workspace: Path) -> None:
    """A record among the newest sessions that vanished since the scan: the summaries show that session missing
    and the build says why, both when it renders them after the leaves and while a worker renders a changed run
    (where the problem was once said, and once lost)."""
    make_workspace(workspace)
    settled = time.time_ns() - 10_000_000_000  # written long before: the scan keeps them, the summaries read them
    for path in (workspace / "reports/experiments/live_sessions").iterdir():
        os.utime(path, ns=(settled, settled))
    first = subprocess.run(build_cmd(), cwd=workspace, env=env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    probe = (
        "from peaktrade import registry; from peaktrade.errors import ArtifactError; read = registry.read_record\n"
        "def gone(path, **kw):\n"
        "    if 'session_20250101_120000_shadow_bbbb02' in str(path): raise ArtifactError(f'{path}: vanished here')\n"
        "    return read(path, **kw)\n"
        "registry.read_record = gone\n"
        "from peaktrade.cli import main; print(main(['site', 'build']))"
    )
    meta = workspace / "live_runs/20250101_000000_paper_ma_crossover_BTC-EUR_1m_aaaa0001/meta.json"
    for change in (None, "csv:q"):
        if change:  # a run's page to render: the early worker renders it while the summaries are rendered
            meta.write_text(meta.read_text().replace('"synthetic:42"', f'"{change}"'))
        out = run_python(probe, workspace)
        assert out.stdout.splitlines()[-1] == "0", out.stdout + out.stderr
        assert out.stderr.count("vanished here") == 1, (change, out.stderr)
        sessions = json.loads((workspace / "site/api/live_sessions.json").read_text())
        assert "session_20250101_120000_shadow_bbbb02" not in [s["session_id"] for s in sessions]


def test_a_problem_found_while_rendering_a_run_page_lasts_while_the_run_is_unchanged(workspace: Path) -> None:
    # The second build finds a bad orders.jsonl line while rendering that run's page. Later builds that leave the
    # page as it is (another run changed) still count it, in api/health.json, on every page; fixed, it goes. The
    # third renders every page once: the status from the gathered inputs changed (its HTML badges, without JS).
    make_workspace(workspace)
    add_sessions(workspace, 30)
    config = str(with_config(workspace, PARALLEL))  # leaves in worker processes, the problem sent back from one
    bad, other = _runs_with_orders(workspace)
    orders = (bad / "orders.jsonl").read_bytes()
    build = _builder(workspace, "--config", config)

    assert build()[0] == []
    with open(bad / "orders.jsonl", "ab") as fh:
        fh.write(b"[1, 2]\n")
    found, _ = build()
    assert len(found) == 1 and str(bad.name) in found[0], found
    page = workspace / "site/runs" / f"{bad.name}.html"
    for third in (True, False):  # the fourth does not render the bad run's page again; the problem is still said
        (other / "meta.json").write_text((other / "meta.json").read_text() + " ")
        before = page.stat().st_mtime_ns
        assert build()[0] == found
        assert (page.stat().st_mtime_ns == before) is not third
        assert "health: DEGRADED" in page.read_text()
        assert "health: DEGRADED" in (workspace / "site/runs" / f"{other.name}.html").read_text()
        assert '"status":"degraded"' in (workspace / "site/build-time.js").read_text()
    (bad / "orders.jsonl").write_bytes(orders)
    assert build()[0] == []
    assert '"status":"ok"' in (workspace / "site/build-time.js").read_text()
    build()  # the badge changed back: every page once
    assert "health: OK" in page.read_text()


def test_a_bad_run_that_keeps_changing_keeps_its_problem_without_a_full_build_each_time(workspace: Path) -> None:
    # A live writer with one bad line keeps appending good ones: each build that renders its page finds the
    # problem again, the builds between keep it; no build flips the badge (which would render every page).
    make_workspace(workspace)
    bad, _ = _runs_with_orders(workspace)
    session = workspace / "site/sessions/session_20250101_060000_shadow_cccc03.html"
    orders = bad / "orders.jsonl"
    good = orders.read_bytes().splitlines(keepends=True)[0]
    build = _builder(workspace)
    assert build()[0] == []
    with open(orders, "ab") as fh:
        fh.write(b"[1, 2]\n")
    found, out = build()
    assert len(found) == 1 and out.count("orders.jsonl") == 1, out  # said once
    build()  # the badge changed: every page once
    for change in (True, False, True, False, True):
        if change:
            with open(orders, "ab") as fh:
                fh.write(good)
        before = session.stat().st_mtime_ns
        problems, out = build()
        assert problems == found, out
        assert session.stat().st_mtime_ns == before, out  # not rendered again: no full build
        assert f"{int(change)} run pages, 0 session pages re-rendered" in out, out
        assert "health: DEGRADED" in session.read_text()
    orders.write_bytes(orders.read_bytes().replace(b"[1, 2]\n", b""))
    problems, out = build()  # renders the fixed run's page: the problem is gone at once
    assert problems == [] and "1 run pages, 0 session pages" in out, out
    build()  # the badge changed back: every page once
    assert "health: OK" in session.read_text()


def _runs_with_orders(workspace: Path) -> tuple[Path, Path]:
    runs = sorted(p for p in (workspace / "live_runs").iterdir() if (p / "orders.jsonl").exists())
    return runs[0], runs[-1]


def _builder(workspace: Path, *args: str) -> Callable[[], tuple[list[str], str]]:
    """A `site build` that must succeed; returns the problems in api/health.json naming an orders.jsonl, and what
    the build printed."""

    def build() -> tuple[list[str], str]:
        out = subprocess.run(build_cmd(*args), cwd=workspace, env=env(), capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        health = json.loads((workspace / "site/api/health.json").read_text())
        return [p for p in health["problems"] if "orders.jsonl" in p], out.stdout + out.stderr

    return build
