"""Runs in the original Peak_Trade format: whole-run summaries derived once per event-file fingerprint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from peaktrade import monitoring
from peaktrade.artifacts import RunReader, RunWriter, summaries, summarycache
from peaktrade.artifacts.summarycache import SummaryCache
from peaktrade.errors import ArtifactError
from tests.conftest import run_cli
from tests.test_monitoring import seed_run

T0 = datetime(2025, 12, 4, 18, 0, tzinfo=UTC)
OLD_NS = time.time_ns() - 60_000_000_000  # a file written a minute ago has settled


def legacy_run(runs: Path, name: str, n: int, fmt: str = "parquet", *, with_step: bool = True) -> Path:
    """A Peak_Trade run: meta.json without schema_version or totals, one event file, ISO-string timestamps."""
    d = runs / name
    d.mkdir(parents=True)
    meta = {"run_id": name, "mode": "paper", "strategy_name": "ma_crossover", "symbol": "BTC/EUR"}
    meta.update(timeframe="1m", started_at=T0.isoformat(), ended_at=None, config_snapshot={}, notes="")
    (d / "meta.json").write_text(json.dumps(meta))
    ts = [(T0 + timedelta(minutes=i)).isoformat() for i in range(n)]
    columns = {
        "ts_bar": ts,
        "ts_event": ts,
        "close": [40_000.0 + i for i in range(n)],
        "equity": [10_000.0 + i for i in range(n)],
        "orders_count": [1 if i % 100 == 0 else 0 for i in range(n)],
        "orders_blocked": [1 if i % 1000 == 999 else 0 for i in range(n)],
        "risk_allowed": [i % 1000 != 999 for i in range(n)],
        "risk_reasons": ["max_total_exposure" if i % 1000 == 999 else "" for i in range(n)],
    }
    if with_step:
        columns = {"step": list(range(n)), **columns}
    table = pa.table(columns)
    if fmt == "csv":
        pcsv.write_csv(table, d / "events.csv")
    else:
        pq.write_table(table, d / "events.parquet", row_group_size=1_000_000)  # one group, as pandas writes
    for path in d.iterdir():
        os.utime(path, ns=(OLD_NS, OLD_NS))
    return d


@pytest.fixture(autouse=True)
def _fresh_memory():
    summarycache._MEMORY.clear()  # each test starts as a new process would
    yield
    summarycache._MEMORY.clear()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("with_step", [True, False])
def test_totals_and_tail_span_every_batch(tmp_path: Path, fmt: str, with_step: bool) -> None:
    n = 40_000  # more than two streamed batches
    d = legacy_run(tmp_path, "20251204_180000_paper_old", n, fmt, with_step=with_step)
    snap = monitoring.load_run_snapshot(d, now=T0)
    assert (snap.total_steps, snap.total_orders, snap.total_blocked_orders) == (n, n // 100, n // 1000)
    assert snap.last_bar_time == T0 + timedelta(minutes=n - 1) and snap.equity == 10_000.0 + n - 1
    tail = RunReader(d).tail(15)
    assert tail.column("step").to_pylist() == list(range(n - 15, n))
    rows = monitoring.load_run_tail(d, 15)
    assert [r.ts_bar for r in rows] == [T0 + timedelta(minutes=i) for i in range(n - 15, n)]
    assert rows[-1].risk_allowed is False and rows[-1].risk_reasons == "max_total_exposure"
    # More rows than the cached tail holds: streamed again, still exact.
    assert RunReader(d).tail(250).column("step").to_pylist() == list(range(n - 250, n))


def test_summary_is_kept_in_state_and_reused_while_the_file_is_unchanged(tmp_path: Path) -> None:
    d = legacy_run(tmp_path / "runs", "old", 500)
    state = tmp_path / "state"
    cache = SummaryCache(state)
    assert RunReader(d, summary_cache=cache).totals()["steps"] == 500
    cache.save()
    assert (state / summarycache.FILE_NAME).is_file()
    # Same size, same mtime, same inode, different bytes: only a fingerprint-keyed cache returns the old totals
    # (this is what proves the file is not read again).
    events = d / "events.parquet"
    with open(events, "r+b") as fh:
        fh.write(b"x" * events.stat().st_size)  # read again, this would be an unreadable Parquet file
    os.utime(events, ns=(OLD_NS, OLD_NS))
    summarycache._MEMORY.clear()
    again = SummaryCache(state)
    assert again.problems == []
    assert RunReader(d, summary_cache=again).totals()["steps"] == 500 and not again.dirty


def test_a_changed_event_file_is_summarized_again(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    d = legacy_run(runs, "old", 500)
    cache = SummaryCache(tmp_path / "state")
    assert RunReader(d, summary_cache=cache).totals()["orders"] == 5
    (d / "events.parquet").unlink()
    (d / "meta.json").rename(tmp_path / "meta.json")
    d.rmdir()
    legacy_run(runs, "old", 800)  # rewritten by Peak_Trade: a new file
    assert RunReader(d, summary_cache=cache).totals()["orders"] == 8
    assert monitoring.load_run_snapshot(d, summaries=cache).total_steps == 800


@pytest.mark.parametrize("damage", ["{not json", '{"version": 1, "runs": 5}', "[]", '{"version": 99}', "\x00"])
def test_a_damaged_summary_cache_counts_as_missing_and_is_named_once(tmp_path: Path, damage: str) -> None:
    d = legacy_run(tmp_path / "runs", "old", 300)
    state = tmp_path / "state"
    state.mkdir()
    (state / summarycache.FILE_NAME).write_text(damage)
    cache = SummaryCache(state)
    assert len(cache.problems) == 1 and summarycache.FILE_NAME in cache.problems[0] and "rebuilt" in cache.problems[0]
    assert RunReader(d, summary_cache=cache).totals()["steps"] == 300
    cache.save()
    assert SummaryCache(state).problems == []


def test_an_unreadable_event_file_is_an_artifact_error_naming_it(tmp_path: Path) -> None:
    d = legacy_run(tmp_path, "old", 10)
    (d / "events.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ArtifactError, match=r"events\.parquet"):
        RunReader(d, summary_cache=SummaryCache(None)).totals()


def test_site_build_derives_legacy_runs_once_and_again_when_one_changes(tmp_path: Path) -> None:
    runs = tmp_path / "live_runs"
    for i in range(3):
        legacy_run(runs, f"20251204_18000{i}_paper_old", 200 + i)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text("[general]\nenv_name = 'test'\n")
    first = run_cli("site", "build", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    cached = json.loads((tmp_path / "state" / summarycache.FILE_NAME).read_text())
    assert sorted(e["totals"]["steps"] for e in cached["runs"].values()) == [200, 201, 202]
    second = run_cli("site", "build", cwd=tmp_path)
    assert "0 run pages" in second.stdout
    changed = runs / "20251204_180001_paper_old"
    for p in changed.iterdir():
        p.unlink()
    changed.rmdir()
    legacy_run(runs, changed.name, 999)
    third = run_cli("site", "build", cwd=tmp_path)
    assert "1 run pages" in third.stdout
    snap = json.loads((tmp_path / "site" / "api" / "runs" / changed.name / "snapshot.json").read_text())
    assert snap["total_steps"] == 999 and snap["total_orders"] == 10


_THREAD_PROBE = """
import os, sys
from pathlib import Path
import pyarrow as pa
from peaktrade import monitoring
from peaktrade.artifacts import RunReader, summaries, summarycache

def threads():
    return len(os.listdir("/proc/self/task"))

pa.set_io_thread_count(1)  # reading a file may start one IO thread; any other new thread is a CPU-pool thread
baseline = threads()
for run in map(Path, sys.argv[1:]):
    reader = RunReader(run)
    reader.events()
    reader.totals()
    monitoring.load_run_view(run, 15)
    if (run / "events.parquet").exists() and "schema_version" not in (run / "meta.json").read_text():
        summaries.derive(summarycache.event_file(run))
print(baseline, threads())
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_readers_start_no_arrow_cpu_threads_so_a_process_exits_cleanly(tmp_path: Path) -> None:
    # Arrow's CPU thread pool, once its threads have read through a Python file, aborts the process now and then
    # when it is torn down at exit ("terminate called without an active exception", SIGABRT; about 1 exit in 200
    # on this machine): a monitor stopped with Ctrl+C, or a cron job that did its work, would exit 134. Our
    # readers of Parquet never start that pool. (Arrow's CSV streaming reader starts it whatever it is told: it is
    # given the file as an Arrow-native stream, so those threads never call into Python.)
    ours = seed_run(tmp_path / "ours", n=3000)
    runs = [legacy_run(tmp_path, "run_parquet", 30_000), ours]
    done = subprocess.run(
        [sys.executable, "-c", _THREAD_PROBE, *map(str, runs)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    baseline, after = map(int, done.stdout.split())
    assert after <= baseline + 1, f"{after - baseline} threads started by our readers (one IO thread allowed)"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_where_the_event_file_was_is_named_and_never_blocks(tmp_path: Path) -> None:
    # `event_file` saw a regular file; a FIFO took its place before the open (which would block forever)
    fifo = tmp_path / "events.csv"
    os.mkfifo(fifo)
    probe = (
        "import sys\nfrom pathlib import Path\nfrom peaktrade.artifacts import summaries\n"
        "from peaktrade.errors import ArtifactError\n"
        "try:\n    summaries.derive(Path(sys.argv[1]))\n"
        "except ArtifactError as exc:\n    print(type(exc).__name__, exc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(fifo)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        timeout=60,
    )
    assert done.stdout.startswith("UnreadableFile") and str(fifo) in done.stdout, done.stdout + done.stderr


def test_derive_does_not_follow_an_event_file_swapped_for_a_symlink_out_of_its_run(tmp_path: Path) -> None:
    # The site derives summaries in worker processes from paths an earlier scan found: the check is on open.
    run = legacy_run(tmp_path / "runs", "r1", 50)
    path = summarycache.event_file(run)
    outside = tmp_path / "outside.parquet"
    os.replace(path, outside)
    path.symlink_to(outside)
    with pytest.raises(ArtifactError, match="symlink leading out of"):
        summaries.derive(path)


_GLANCE_PROBE = """
import json, sys
from pathlib import Path
from peaktrade.artifacts import runmeta
from peaktrade.artifacts.summarycache import SummaryCache
cache = SummaryCache(Path(sys.argv[1]))
out = {}
for run in map(Path, sys.argv[2:]):
    meta, _ = runmeta.read_meta(run / "meta.json")
    totals, last, problems = runmeta.glance(run, meta, cache)
    out[run.name] = [totals, last, problems]
print(json.dumps(out, default=lambda v: v.isoformat()))
print("pyarrow" in sys.modules)
"""


def test_glance_gives_what_the_reader_gives_and_reads_no_event_for_runs_it_knows(tmp_path: Path) -> None:
    """`runmeta.glance` (the site build's gather) gives a run's totals and newest event as `RunReader` does, and
    imports no pyarrow for our runs (with events, or with none committed) and for runs in the original format
    whose summary is kept in state/."""
    ours = seed_run(tmp_path / "ours", n=30)
    w = RunWriter.create(tmp_path / "empty", mode="paper", strategy_name="s", symbol="BTC/EUR", timeframe="1m")
    w.close()
    old = legacy_run(tmp_path / "old", "20251204_180000_paper_old", 500)
    state = tmp_path / "state"
    cache = SummaryCache(state)
    expected = {}
    for run in (ours, w.run_dir, old):
        reader = RunReader(run, summary_cache=cache)
        expected[run.name] = [reader.totals(), reader.last_event(), reader.problems]
    cache.save()
    done = subprocess.run(
        [sys.executable, "-c", _GLANCE_PROBE, str(state), str(ours), str(w.run_dir), str(old)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    glanced, imported = done.stdout.splitlines()
    assert json.loads(glanced) == json.loads(json.dumps(expected, default=lambda v: v.isoformat()))
    assert imported == "False"
