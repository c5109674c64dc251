"""peaktrade benchmarks: prints each figure beside its DESIGN.md §8 target. Not a test; rerun any time.

usage: python benchmarks/run.py [--only NAME[,NAME...]] [--quick] [--keep DIR]
names: write, read, registry, replay, site, alerts, help (and more as features land; see --help)
"""

from __future__ import annotations

import argparse
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
    report("total (append + flushes)", f"{wrote:.1f} s", "<= 30 s (1M)")
    report("flush median / p99", f"{statistics.median(flushes) * 1000:.2f} / {p99:.2f} ms", "p99 <= 10 ms")
    report("compaction into events.parquet", f"{compact:.2f} s")
    report("events.parquet size", f"{(w.run_dir / 'events.parquet').stat().st_size / 1e6:.1f} MB")


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
            report(f"{n:>9,} events, {label}", f"{m['median_ms']:.2f} ms {m['rss_mb']:.0f} MB", "<= 10 ms, <= 150 MB")


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

    def timed(fn, reps=5):
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts) * 1000

    report(
        "list(10), no index (parse every file)", f"{timed(lambda: registry.list_records(reg, limit=10), 1):.0f} ms"
    )
    registry.scan(reg, index)
    report(
        "list(10), settled index",
        f"{timed(lambda: registry.list_records(reg, limit=10, index_path=index)):.1f} ms",
        "<= 50 ms",
    )
    from peaktrade import views
    from peaktrade.site.model import sessions_as_records

    def stats():  # what `site build` computes for api/live_sessions/stats.json: the one stats function
        return views.sessions_summary(sessions_as_records(registry.scan(reg, index).entries))

    report("stats, settled index", f"{timed(stats):.1f} ms", "<= 50 ms")
    report(
        "list(10, mode=paper), settled index",
        f"{timed(lambda: registry.list_records(reg, registry.Filters(mode='paper'), 10, index)):.1f} ms",
        "<= 50 ms",
    )
    report(
        "list(10) after a change (stat every file)",
        f"{timed(lambda: registry.scan(reg, index, refresh=True)):.1f} ms",
        "<= 50 ms",
    )


_REPLAY_PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from peaktrade import config, session
from peaktrade.commands import few_gc_pauses  # the CLI's GC tuning around the bar loop, as `session run` does
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
    print(f"replay: {n:,} synthetic bars end to end (strategy, orders, risk, ledger, artifacts, registry)")
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
            f"{strategy} ({m['orders']:,} orders, {m['status']})",
            f"{n / m['seconds'] / 1000:.0f}k bars/s {m['rss_mb']:.0f} MB",
            ">= 100k bars/s",
        )


def ops_workspace(args, work: Path) -> tuple[Path, int, int, int]:
    """1,000 finished runs x 10,000 events + 10,000 session records (shared by the site and alerts benches)."""
    from peaktrade import registry

    n_runs, n_events, n_sessions = (100, 10_000, 1_000) if args.quick else (1_000, 10_000, 10_000)
    root = work / "site_ws"
    if (root / "config/config.toml").exists():
        return root, n_runs, n_events, n_sessions
    runs, reg = root / "live_runs", root / "reports/experiments/live_sessions"
    template, _, _ = write_run(root / "tmp_runs", n_events, close=True, fsync=False, flush_rows=5000)
    with open(template.run_dir / "orders.jsonl", "w") as fh:
        for i in range(0, n_events, 97):
            fh.write(
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
            )
    meta = json.loads((template.run_dir / "meta.json").read_text())
    runs.mkdir(parents=True)
    for i in range(n_runs):
        run_id = f"20250101_000000_shadow_ma_crossover_BTC-EUR_1m_{i:08x}"
        d = runs / run_id
        shutil.copytree(template.run_dir, d)
        meta.update(run_id=run_id, session_id=f"session_{i:06d}", started_at=(T0 + timedelta(hours=i)).isoformat())
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
    old = time.time_ns() - 10_000_000_000
    os.utime(reg, ns=(old, old))
    (root / "config").mkdir()
    (root / "config/config.toml").write_text("[general]\nenv_name = 'bench'\n")
    return root, n_runs, n_events, n_sessions


@bench("site")
def bench_site(args, work: Path) -> None:
    root, n_runs, n_events, n_sessions = ops_workspace(args, work)
    runs = root / "live_runs"
    print(f"site: {n_runs:,} runs x {n_events:,} events + {n_sessions:,} sessions")

    def timed_build(label: str, target: str) -> None:
        exe = [sys.executable, "-m", "peaktrade", "site", "build"]
        t = time.perf_counter()
        out = subprocess.run(
            exe, cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        elapsed = time.perf_counter() - t
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        report(f"{label} ({out.stdout.split('(')[1].split(',')[0]})", f"{elapsed:.2f} s", target)

    timed_build("cold build", "<= 20 s")
    timed_build("no change", "<= 1 s")
    changed = runs / "20250101_000000_shadow_ma_crossover_BTC-EUR_1m_00000007" / "meta.json"
    changed.write_text(changed.read_text().replace('"notes": ""', '"notes": "changed"'))
    timed_build("one run changed", "<= 2 s")
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "peaktrade", "ops", "health", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    elapsed = time.perf_counter() - t
    if out.returncode not in (0, 1):
        raise SystemExit(out.stderr)
    report(f"`ops health` over the same ({json.loads(out.stdout)['overall']})", f"{elapsed:.2f} s", "<= 3 s")


@bench("alerts")
def bench_alerts(args, work: Path) -> None:
    root, n_runs, _, n_sessions = ops_workspace(args, work)
    print(f"alerts: `alerts run` over {n_runs:,} runs + {n_sessions:,} sessions")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PEAKTRADE_ALERT_URLS", None)
    exe = [sys.executable, "-m", "peaktrade", "alerts", "run"]

    def timed_run() -> float:
        t = time.perf_counter()
        out = subprocess.run(exe, cwd=root, capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - t
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        return elapsed

    report("first run (reads every run's orders offset)", f"{timed_run():.2f} s")
    report("nothing new (median of 5)", f"{statistics.median(timed_run() for _ in range(5)):.2f} s", "<= 1 s")


_APPENDER = """
import sys, time
sys.path.insert(0, {root!r})
from benchmarks.run import synthetic_row
from peaktrade.artifacts import RunWriter
w = RunWriter.create({runs!r}, mode="shadow", strategy_name="m", symbol="BTC/EUR", timeframe="1m",
                     flush_rows=500, flush_seconds=3600, segment_rows=10_000, fsync=False)
print(w.run_dir, flush=True)
for i in range({rows}):
    w.append_event(synthetic_row(i))
    if (i + 1) % 500 == 0:
        time.sleep(0.002)
w.close()
"""


@bench("consistency")
def bench_consistency(args, work: Path) -> None:
    """Item 5 of issue 8: a tail shown with a snapshot is never newer than it, while a writer process appends."""
    from peaktrade import monitoring

    rows = 100_000 if args.quick else 300_000
    print(f"consistency: poll every 10 ms while another process appends {rows:,} events (500 per flush)")
    for label in ("load_run_snapshot + load_run_tail(15)", "load_run_view(15)"):
        proc = subprocess.Popen(
            [sys.executable, "-c", _APPENDER.format(root=str(ROOT), runs=str(work / "consistency"), rows=rows)],
            stdout=subprocess.PIPE,
            text=True,
        )
        run_dir = Path(proc.stdout.readline().strip())
        polls = ahead = worst = 0
        while proc.poll() is None:
            if label.startswith("load_run_view"):
                snap, tail = monitoring.load_run_view(run_dir, 15)
            else:
                snap = monitoring.load_run_snapshot(run_dir)
                tail = monitoring.load_run_tail(run_dir, 15)
            polls += 1
            if tail and snap.last_bar_time and tail[-1].ts_bar > snap.last_bar_time:
                ahead += 1
                worst = max(worst, int((tail[-1].ts_bar - snap.last_bar_time).total_seconds() // 60))
            time.sleep(0.01)
        report(f"polls with tail rows newer than the snapshot, {label}", f"{ahead}/{polls} (max {worst} rows)", "0")


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
    try:
        for name in names:
            BENCHES[name](args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
