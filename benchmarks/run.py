"""peaktrade benchmarks: prints each figure beside its DESIGN.md §8 / issue target. Not a test; rerun any time.

usage: python benchmarks/run.py [--only NAME[,NAME...]] [--quick] [--keep DIR]
names: write, read, legacy-read, consistency, registry, replay, site, legacy-site, alerts, health, help
Every label names what is timed and at what size; "fresh process" figures include no interpreter start-up.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BENCHES: dict[str, object] = {}


def bench(name: str):
    def deco(fn):
        BENCHES[name] = fn
        return fn

    return deco


def report(figure: str, value: str, target: str = "") -> None:
    print(f"  {figure:<58} {value:>16}   {('target ' + target) if target else ''}", flush=True)


def synthetic_row(i: int) -> dict:
    price = 40_000.0 + (i % 1000)
    return {
        "step": i,
        "ts_bar": T0 + timedelta(minutes=i),
        "ts_event": T0 + timedelta(minutes=i),
        "open": price,
        "high": price + 1,
        "low": price - 1,
        "close": price,
        "volume": 1.0,
        "price": price,
        "signal": 1,
        "signal_changed": i % 97 == 0,
        "position_size": 0.1,
        "avg_entry_price": 40_000.0,
        "cash": 6000.0,
        "equity": 10_000.0 + (i % 1000) * 0.1,
        "realized_pnl": 1.0,
        "unrealized_pnl": 2.0,
        "fees_paid": 0.5,
        "drawdown": 0.01,
        "orders_generated": 1 if i % 97 == 0 else 0,
        "orders_filled": 1 if i % 97 == 0 else 0,
        "orders_rejected": 0,
        "orders_blocked": 1 if i % 1000 == 0 else 0,
        "risk_allowed": i % 1000 != 0,
        "risk_reasons": "max_total_exposure_exceeded: limit=500 value=640" if i % 1000 == 0 else "",
        "risk_severity": "ok",
    }


def write_run(runs: Path, n: int, *, close: bool, fsync: bool = True, flush_rows: int = 50):
    from peaktrade.artifacts import RunWriter

    w = RunWriter.create(
        runs,
        mode="shadow",
        strategy_name="ma_crossover",
        symbol="BTC/EUR",
        timeframe="1m",
        flush_rows=flush_rows,
        flush_seconds=1e9,
        fsync=fsync,
    )
    started = time.perf_counter()
    for i in range(n):
        w.append_event(synthetic_row(i))
    w.flush()
    wrote = time.perf_counter() - started
    compact = 0.0
    if close:
        t = time.perf_counter()
        w.close()
        compact = time.perf_counter() - t
    return w, wrote, compact


@bench("write")
def bench_write(args, work: Path) -> None:
    n = 100_000 if args.quick else 1_000_000
    print(f"write: {n:,} events, flush every 50 rows, fsync on")
    w, wrote, compact = write_run(work / "write", n, close=True)
    flushes = sorted(w.flush_seconds_log)
    p99 = flushes[int(len(flushes) * 0.99) - 1] * 1000
    report(f"append_event x {n:,} incl. every flush, wall", f"{wrote:.1f} s", "<= 30 s (1M)")
    report(
        "one flush (50 rows to segment + meta.json), median / p99",
        f"{statistics.median(flushes) * 1000:.2f} / {p99:.2f} ms",
        "p99 <= 10 ms",
    )
    report("close(): compact segments into events.parquet", f"{compact:.2f} s")
    report("events.parquet size on disk", f"{(w.run_dir / 'events.parquet').stat().st_size / 1e6:.1f} MB")


def write_legacy_run(run_dir: Path, n: int, fmt: str) -> Path:
    """A run as the original Peak_Trade system wrote it: meta.json without schema_version or totals, and one
    events.parquet (pandas defaults: a single row group up to 1M rows) or events.csv, ISO-string timestamps."""
    import numpy as np
    import pandas as pd

    run_dir.mkdir(parents=True, exist_ok=True)
    i = np.arange(n)
    ts = pd.Series(pd.date_range(T0, periods=n, freq="min")).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    price = 40_000.0 + (i % 1000)
    df = pd.DataFrame(
        {
            "step": i,
            "ts_bar": ts,
            "ts_event": ts,
            "price": price,
            "open": price,
            "high": price + 1,
            "low": price - 1,
            "close": price,
            "volume": 1.0,
            "position_size": 0.1,
            "cash": 6000.0,
            "equity": 10_000.0 + (i % 1000) * 0.1,
            "realized_pnl": 1.0,
            "unrealized_pnl": 2.0,
            "signal": 1,
            "signal_changed": i % 97 == 0,
            "orders_generated": (i % 97 == 0).astype(int),
            "orders_filled": (i % 97 == 0).astype(int),
            "orders_rejected": 0,
            "orders_blocked": (i % 1000 == 0).astype(int),
            "risk_allowed": i % 1000 != 0,
            "risk_reasons": np.where(i % 1000 == 0, "max_total_exposure_exceeded", ""),
        }
    )
    if fmt == "csv":
        df.to_csv(run_dir / "events.csv", index=False)
    else:
        df.to_parquet(run_dir / "events.parquet", index=False)
    meta = {
        "run_id": run_dir.name,
        "mode": "shadow",
        "strategy_name": "ma_crossover",
        "symbol": "BTC/EUR",
        "timeframe": "1m",
        "started_at": T0.isoformat(),
        "ended_at": (T0 + timedelta(minutes=n)).isoformat(),
        "config_snapshot": {},
        "notes": "",
    }
    (run_dir / "meta.json").write_text(json.dumps(meta))
    return run_dir


def age_files(root: Path, seconds: float = 10.0) -> None:
    """Backdate every file under `root`, as between two cron runs (caches distrust just-written files)."""
    old = time.time_ns() - int(seconds * 1e9)
    for dirpath, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(dirpath, name), ns=(old, old))


_READ_PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
from peaktrade.monitoring import load_run_snapshot, load_run_tail
run_dir = {run_dir!r}
times = []
for _ in range(30):
    t = time.perf_counter()
    load_run_snapshot(run_dir); load_run_tail(run_dir, 15)
    times.append(time.perf_counter() - t)
times.sort()
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({{"median_ms": times[len(times)//2]*1000, "p95_ms": times[int(len(times)*0.95)]*1000,
                   "rss_mb": int(hwm) / 1024}}))
"""


@bench("read")
def bench_read(args, work: Path) -> None:
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    print("read: one monitor refresh = load_run_snapshot + load_run_tail(15); fresh process, median of 30")
    for n in sizes:
        live, _, _ = write_run(work / f"read{n}", n, close=False, fsync=False, flush_rows=500)
        done, _, _ = write_run(work / f"read{n}", n, close=True, fsync=False, flush_rows=500)
        for label, w in (("running (segments)", live), ("finished (events.parquet)", done)):
            out = subprocess.run(
                [sys.executable, "-c", _READ_PROBE.format(root=str(ROOT), run_dir=str(w.run_dir))],
                capture_output=True,
                text=True,
                check=True,
            )
            m = json.loads(out.stdout)
            report(
                f"{n:>9,} events, {label}: refresh median, peak RSS",
                f"{m['median_ms']:.2f} ms {m['rss_mb']:.0f} MB",
                "<= 10 ms, <= 150 MB",
            )


_LEGACY_PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from peaktrade.artifacts.summarycache import SummaryCache
from peaktrade.terminal import MonitorOptions, loader
opts = MonitorOptions(Path({run_dir!r}), 2.0, 15, "both", False, state_dir=Path({state!r}))
load = loader(opts)
t = time.perf_counter(); load(); first = time.perf_counter() - t
times = []
for _ in range(30):
    t = time.perf_counter()
    snapshot, tail = load()
    times.append(time.perf_counter() - t)
times.sort()
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({{"first_s": first, "median_ms": times[15] * 1000, "p95_ms": times[28] * 1000,
                   "rss_mb": int(hwm) / 1024, "steps": snapshot.total_steps, "tail": len(tail)}}))
"""


@bench("legacy-read")
def bench_legacy_read(args, work: Path) -> None:
    n = 100_000 if args.quick else 1_000_000
    print(f"legacy-read: monitor refresh (snapshot + tail 15) of a {n:,}-event run in Peak_Trade's format,")
    print("  fresh process each; 'later' = median of the next 30 refreshes; RSS = the process's peak")
    for fmt in ("parquet", "csv"):
        run_dir = write_legacy_run(work / f"legacy_read_{fmt}" / "20250101_000000_shadow_legacy", n, fmt)
        age_files(run_dir)
        for state in ("no summary cached", "summary cached in state/"):
            code = _LEGACY_PROBE.format(root=str(ROOT), run_dir=str(run_dir), state=str(work / f"lr_state_{fmt}"))
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(out.stderr)
            m = json.loads(out.stdout)
            assert m["steps"] == n and m["tail"] == 15, m
            label = f"events.{fmt}, {state}"
            report(f"{label}: first refresh", f"{m['first_s'] * 1000:.0f} ms")
            report(f"{label}: later refresh, median/p95", f"{m['median_ms']:.2f}/{m['p95_ms']:.2f} ms", "<= 10 ms")
            report(f"{label}: peak RSS", f"{m['rss_mb']:.0f} MB", "<= 150 MB")


_WRITER_PROBE = """
import sys, time
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from pathlib import Path
from run import write_run, synthetic_row
from peaktrade.artifacts import RunWriter
w = RunWriter.create(Path({runs!r}), mode="shadow", strategy_name="ma_crossover", symbol="BTC/EUR", timeframe="1m",
                     flush_rows=50, flush_seconds=1e9, segment_rows=2000, fsync=False)
print(w.run_dir, flush=True)
deadline = time.monotonic() + {seconds}
i = 0
while time.monotonic() < deadline:
    w.append_event(synthetic_row(i))
    i += 1
w.close()
"""


@bench("consistency")
def bench_consistency(args, work: Path) -> None:
    """Item 5: the monitor's snapshot and tail come from one view; a tail row newer than the snapshot's
    total_steps is an inconsistent poll."""
    from peaktrade.terminal import MonitorOptions, loader

    seconds = 3 if args.quick else 10
    print(f"consistency: monitor refreshes (snapshot + tail 15) while a writer process appends for {seconds} s")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WRITER_PROBE.format(
                root=str(ROOT), bench=str(ROOT / "benchmarks"), runs=str(work / "cons_runs"), seconds=seconds
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    run_dir = Path(proc.stdout.readline().strip())
    load = loader(MonitorOptions(run_dir, 1.0, 15, "both", False))
    polls = ahead = 0
    times = []
    while proc.poll() is None:
        t = time.perf_counter()
        snapshot, tail = load()
        times.append(time.perf_counter() - t)
        polls += 1
        newest = max((r.ts_bar for r in tail if r.ts_bar is not None), default=None)
        if newest is not None and snapshot.last_bar_time is not None and newest > snapshot.last_bar_time:
            ahead += 1
    proc.wait()
    times.sort()
    report(f"polls with a tail row newer than the snapshot (of {polls})", f"{ahead}", "0")
    report(
        "refresh during appends, median/p95",
        f"{times[len(times) // 2] * 1000:.2f}/{times[int(len(times) * 0.95)] * 1000:.2f} ms",
        "<= 10 ms",
    )


@bench("registry")
def bench_registry(args, work: Path) -> None:
    from peaktrade import registry

    reg, index = work / "registry", work / "state" / "registry-index.json"
    n = 10_000
    for i in range(n):
        rec = registry.new_record(
            session_id=f"session_{i:06d}",
            run_id=f"run_{i}",
            mode=("shadow", "paper", "testnet")[i % 3],
            env_name="bench",
            symbol="BTC/EUR",
            strategy="ma_crossover",
            started_at=T0 + timedelta(minutes=i),
            config={"position_fraction": 0.1, "fee_rate": 0.001},
            cli_args=["peaktrade", "session", "run"],
        )
        rec.update(status="completed", metrics={"realized_pnl": i * 0.01, "max_drawdown": 0.02})
        registry.write_record(reg, rec)
    old = time.time_ns() - 10_000_000_000
    os.utime(reg, ns=(old, old))  # the directory settled a while ago, as between cron runs
    print(f"registry: {n:,} session records")

    def timed(fn, reps=5) -> str:
        """Median wall time and, in brackets, this process's CPU time (the honest figure on a busy machine)."""
        ws, cs = [], []
        for _ in range(reps):
            t, c = time.perf_counter(), time.process_time()
            fn()
            ws.append(time.perf_counter() - t)
            cs.append(time.process_time() - c)
        return f"{statistics.median(ws) * 1000:.1f} ms (cpu {statistics.median(cs) * 1000:.1f})"

    print(f"  wall time, cpu time in brackets; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    report("list(10), no index (parse every file)", timed(lambda: registry.list_records(reg, limit=10), 1))
    report("scan building the index (parse every file, write the index)", timed(lambda: registry.scan(reg, index), 1))
    for path in reg.iterdir():
        os.utime(path, ns=(old, old))  # every record settled, as between cron runs
    registry.scan(reg, index, refresh=True)
    report(
        "list(10), settled index",
        timed(lambda: registry.list_records(reg, limit=10, index_path=index)),
        "<= 50 ms",
    )
    from peaktrade.site import model

    def stats():  # what `site build` computes for api/live_sessions/stats.json: the one stats function
        return model.stats_json(registry.scan(reg, index).entries)

    report("stats (scan + site.model.stats_json), settled index", timed(stats), "<= 50 ms")
    report(
        "list(10, mode=paper), settled index",
        timed(lambda: registry.list_records(reg, registry.Filters(mode="paper"), 10, index)),
        "<= 50 ms",
    )
    files = sorted(reg.iterdir())

    def edit_then_list(k: int) -> tuple[float, float]:
        # One record edited in place (same file, as an operator's editor does), then the first list.
        path = files[k * 997 % len(files)]
        data = json.loads(path.read_text())
        data["notes"] = f"edited {k}"
        path.write_text(json.dumps(data))
        t, c = time.perf_counter(), time.process_time()
        records, _ = registry.list_records(reg, limit=10, index_path=index)
        assert records, "list after an edit came back empty"
        return time.perf_counter() - t, time.process_time() - c

    after = [edit_then_list(k) for k in range(5)]
    wall, cpu = statistics.median(a[0] for a in after), statistics.median(a[1] for a in after)
    report(
        "list(10), first call after one record edited in place",
        f"{wall * 1000:.1f} ms (cpu {cpu * 1000:.1f})",
        "<= 50 ms",
    )
    report(
        "list(10), second call after that edit",
        timed(lambda: registry.list_records(reg, limit=10, index_path=index)),
        "<= 50 ms",
    )

    def add_then_list(k: int) -> tuple[float, float]:
        # A new session's record appears (the index's columns and order are laid out again), then the first list.
        rec = registry.new_record(
            session_id=f"session_new_{k}",
            run_id=None,
            mode="paper",
            env_name="bench",
            symbol="BTC/EUR",
            strategy="ma_crossover",
            started_at=T0 + timedelta(minutes=n + k),
        )
        registry.write_record(reg, rec)
        t, c = time.perf_counter(), time.process_time()
        records, _ = registry.list_records(reg, limit=10, index_path=index)
        assert records[0]["session_id"] == f"session_new_{k}"
        return time.perf_counter() - t, time.process_time() - c

    after = [add_then_list(k) for k in range(5)]
    wall, cpu = statistics.median(a[0] for a in after), statistics.median(a[1] for a in after)
    report("list(10), first call after one record added", f"{wall * 1000:.1f} ms (cpu {cpu * 1000:.1f})")


_REPLAY_PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from peaktrade import config, session
from peaktrade.commands import few_gc_pauses  # what `peaktrade session run` wraps the session in
settings = config.from_dict({{"paths": {{"runs_dir": {runs!r}, "registry_dir": {reg!r}, "state_dir": {state!r}}}}})
plan = session.make_plan(settings, strategy={strategy!r}, steps={n}, source="synthetic:42")
t = time.perf_counter()
with few_gc_pauses():
    result = session.run(plan, settings)
elapsed = time.perf_counter() - t
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({{"seconds": elapsed, "rss_mb": int(hwm) / 1024, "orders": result.metrics["num_orders"],
                   "status": result.status}}))
"""


@bench("replay")
def bench_replay(args, work: Path) -> None:
    n = 100_000 if args.quick else 1_000_000
    print(
        f"replay: {n:,} synthetic bars end to end (strategy, orders, risk, ledger, artifacts, registry), own process"
    )
    for strategy in ("ma_crossover", "rsi_reversion", "breakout", "momentum"):
        code = _REPLAY_PROBE.format(
            root=str(ROOT),
            runs=str(work / "replay_runs"),
            reg=str(work / "replay_reg"),
            state=str(work / "replay_state"),
            strategy=strategy,
            n=n,
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        m = json.loads(out.stdout)
        report(
            f"session.run {strategy} ({m['orders']:,} orders, {m['status']}): bars/s, peak RSS",
            f"{n / m['seconds'] / 1000:.0f}k bars/s {m['rss_mb']:.0f} MB",
            ">= 100k bars/s",
        )


def _site_workspace(root: Path, fmt: str, n_runs: int, n_events: int, n_sessions: int) -> Path:
    """`n_runs` copies of one run (ours, or Peak_Trade's parquet/csv) + `n_sessions` registry records.
    Returns the run whose files the "one run changed" build rewrites."""
    from peaktrade import registry, registry_index

    runs, reg = root / "live_runs", root / "reports/experiments/live_sessions"
    orders = "".join(
        json.dumps(
            {
                "ts": (T0 + timedelta(minutes=i)).isoformat(),
                "step": i,
                "side": "buy",
                "qty": 0.1,
                "notional": 4000.0,
                "status": "filled",
                "reasons": [],
            }
        )
        + "\n"
        for i in range(0, n_events, 97)
    )
    if fmt == "ours":
        template = write_run(root / "tmp_runs", n_events, close=True, fsync=False, flush_rows=5000)[0].run_dir
        (template / "orders.jsonl").write_text(orders)
    else:
        template = write_legacy_run(root / "tmp_runs" / "legacy", n_events, fmt)
    meta = json.loads((template / "meta.json").read_text())
    runs.mkdir(parents=True)
    for i in range(n_runs):
        run_id = f"20250101_000000_shadow_ma_crossover_BTC-EUR_1m_{i:08x}"
        d = runs / run_id
        shutil.copytree(template, d)
        meta.update(run_id=run_id, started_at=(T0 + timedelta(hours=i)).isoformat())
        if fmt == "ours":
            meta.update(session_id=f"session_{i:06d}")
        (d / "meta.json").write_text(json.dumps(meta))
    for i in range(n_sessions):
        rec = registry.new_record(
            session_id=f"session_{i:06d}",
            run_id=f"20250101_000000_shadow_ma_crossover_BTC-EUR_1m_{i:08x}",
            mode=("shadow", "paper", "testnet")[i % 3],
            env_name="bench",
            symbol=("BTC/EUR", "ETH/EUR")[i % 2],
            strategy=("ma_crossover", "rsi_reversion", "breakout", "momentum")[i % 4],
            started_at=T0 + timedelta(hours=i),
            config={"live_risk": {"max_order_notional": 500.0}},
            cli_args=["peaktrade", "session", "run"],
        )
        rec.update(
            status=("completed", "failed", "aborted")[i % 3],
            finished_at=(T0 + timedelta(hours=i, minutes=5)).isoformat(),
            metrics={"realized_pnl": i * 0.01, "max_drawdown": 0.02, "num_orders": 3},
        )
        registry.write_record(reg, rec)
    age_files(root)
    old = time.time_ns() - 10_000_000_000
    os.utime(reg, ns=(old, old))
    (root / "config").mkdir()
    (root / "config/config.toml").write_text("[general]\nenv_name = 'bench'\n")
    # The inputs were written long before cron builds from them: do not charge the build with writing them back
    # (on this VM a build that starts while ~1 GB is still being flushed pays several times its own I/O).
    os.sync()
    # And their records settled: a build trusts what it read of a record only once it has not changed for
    # `registry_index.RACY_NS` (a record changed within the same clock tick keeps its stats); one written just
    # before a build is read again by the next one, which a cron build of sessions that ended minutes ago is not.
    time.sleep(registry_index.RACY_NS / 1e9)
    return runs / "20250101_000000_shadow_ma_crossover_BTC-EUR_1m_00000007"


def _site_builds(root: Path, fmt: str, changed: Path, sizes: str, quick: bool) -> None:
    def timed_build(label: str, target: str) -> None:
        exe = [sys.executable, "-m", "peaktrade", "site", "build"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        out = subprocess.run(
            exe, cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        elapsed = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        if "no input changed" in out.stdout:
            written = "no input changed: freshness stamps only"
        else:
            written = out.stdout.split("(")[1].split(",")[0] if "(" in out.stdout else "?"
        report(
            f"{fmt}: `site build` {label} ({written})", f"{elapsed:.2f} s (cpu {cpu:.2f})", "" if quick else target
        )

    print(
        f"  {fmt} runs, {sizes}; wall time of the whole command incl. start-up, cpu time of all its processes in"
        f" brackets; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    timed_build("cold: empty site/ and state/", "<= 15 s")
    timed_build("again, nothing changed", "<= 0.5 s")
    if fmt == "ours":
        meta = changed / "meta.json"
        meta.write_text(meta.read_text().replace('"notes": ""', '"notes": "changed"'))
    else:
        events = next(p for p in changed.iterdir() if p.name.startswith("events."))
        shutil.copyfile(events, changed / "tmp")
        os.replace(changed / "tmp", events)  # a new file (new inode), as Peak_Trade's rewrite makes
    timed_build("again, one run's files changed", "<= 1 s")


@bench("site")
def bench_site(args, work: Path) -> None:
    n_runs, n_events, n_sessions = (100, 10_000, 1_000) if args.quick else (1_000, 10_000, 10_000)
    sizes = f"{n_runs:,} runs x {n_events:,} events + {n_sessions:,} sessions"
    print(f"site: {sizes}" + (" (--quick: targets are for 1,000 runs; not shown)" if args.quick else ""))
    root = work / "site_ws"
    changed = _site_workspace(root, "ours", n_runs, n_events, n_sessions)
    _site_builds(root, "ours", changed, sizes, args.quick)


@bench("legacy-site")
def bench_legacy_site(args, work: Path) -> None:
    n_runs, n_events, n_sessions = (100, 10_000, 1_000) if args.quick else (1_000, 10_000, 10_000)
    sizes = f"{n_runs:,} runs x {n_events:,} events + {n_sessions:,} sessions"
    print(f"legacy-site: Peak_Trade-format runs, {sizes}" + (" (--quick: targets not shown)" if args.quick else ""))
    roots = [work / f"legacy_site_{fmt}" for fmt in ("parquet", "csv")]
    for fmt, root in zip(("parquet", "csv"), roots):
        changed = _site_workspace(root, fmt, n_runs, n_events, n_sessions)
        _site_builds(root, fmt, changed, sizes, args.quick)
    # Removed after both, not between: ext4 without a journal (this VM's) gives no new file an inode freed in the
    # last minutes, and walks past each one to find a free inode; a build right after deleting 40,000 files paid
    # ~10 s of system time that a cron build does not pay.
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


def _ops_workspace(args, work: Path) -> tuple[Path, int, int]:
    """Runs in our format + sessions, as the site benchmark's, built once for the alerts and health benches."""
    n_runs, n_events, n_sessions = (100, 10_000, 1_000) if args.quick else (1_000, 10_000, 10_000)
    root = work / "ops_ws"
    if not (root / "config/config.toml").exists():
        _site_workspace(root, "ours", n_runs, n_events, n_sessions)
    return root, n_runs, n_sessions


def _cli(root: Path, *args: str, ok=(0,)) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PEAKTRADE_ALERT_URLS", None)
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "peaktrade", *args]
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t
    if out.returncode not in ok:
        raise SystemExit(out.stderr)
    return elapsed, out


@bench("alerts")
def bench_alerts(args, work: Path) -> None:
    root, n_runs, n_sessions = _ops_workspace(args, work)
    print(f"alerts: `alerts run` as a fresh process over {n_runs:,} runs + {n_sessions:,} sessions")
    report("first run (reads every run's orders offset)", f"{_cli(root, 'alerts', 'run')[0]:.2f} s")
    times = [_cli(root, "alerts", "run")[0] for _ in range(5)]
    report("nothing new (median of 5)", f"{statistics.median(times):.2f} s", "<= 1 s")


@bench("health")
def bench_health(args, work: Path) -> None:
    root, n_runs, n_sessions = _ops_workspace(args, work)
    print(f"health: `ops health --json` as a fresh process over {n_runs:,} runs + {n_sessions:,} sessions")
    config = root / "config/config.toml"
    text = config.read_text()
    # the exchange unreachable: a port on this machine where nothing listens (connection refused)
    config.write_text(text + '\n[exchange]\napi_url = "http://127.0.0.1:9"\n')
    try:
        times = []
        for _ in range(3):
            elapsed, out = _cli(root, "ops", "health", "--json", ok=(0, 1))
            times.append(elapsed)
        overall = json.loads(out.stdout)["overall"]
        report(f"exchange unreachable, median of 3 ({overall})", f"{statistics.median(times):.2f} s", "<= 3 s")
    finally:
        config.write_text(text)


@bench("help")
def bench_help(args, work: Path) -> None:
    exe = shutil.which("peaktrade") or ""
    cmd = [exe, "--help"] if exe else [sys.executable, "-m", "peaktrade", "--help"]
    ts = []
    for _ in range(10):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, cwd=work, env={**os.environ, "PYTHONPATH": str(ROOT)})
        ts.append(time.perf_counter() - t)
    print("cli:")
    report("`peaktrade --help` wall time (median of 10)", f"{statistics.median(ts) * 1000:.0f} ms", "<= 150 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHES)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--keep", help="work directory to keep (default: a temp dir, removed)")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHES)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="peaktrade-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"peaktrade benchmarks on {os.cpu_count()} cores; work dir {work}")
    # As an installed peaktrade runs: with its bytecode compiled (pip compiles at install). Without this, a
    # machine with PYTHONDONTWRITEBYTECODE set compiles every changed module again in every timed command.
    compileall.compile_dir(ROOT / "peaktrade", quiet=1)
    try:
        for name in names:
            BENCHES[name](args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
