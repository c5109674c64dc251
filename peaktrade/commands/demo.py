from __future__ import annotations

import time

from peaktrade.commands import few_gc_pauses, settings


def demo(args) -> int:
    from peaktrade.demo import run_demo

    cfg = settings(args)
    started = time.monotonic()
    print("peaktrade demo: trading sessions on built-in synthetic data (no network needed)\n")

    def show(item, result) -> None:
        m = result.metrics
        line = (
            f"{result.status:<9} {item.title}\n          bars {m['steps']:,}  orders {m['num_orders']}  "
            f"blocked {m['num_blocked']}  return {m['return_pct']:+.2f}%  max drawdown {m['max_drawdown']:.2%}"
        )
        if result.error:
            line += f"\n          error: {result.error}"
        print(line + f"\n          run: {result.run_dir}\n", flush=True)

    with few_gc_pauses():
        results = list(run_demo(cfg, show))
    latest = results[-1]
    paths = cfg.paths
    report_files = _reports(cfg, results)
    from peaktrade import site

    built = site.build(cfg)
    print(
        f"done in {time.monotonic() - started:.1f} s: {len(results)} sessions "
        f"({sum(r.status == 'completed' for r in results)} completed, "
        f"{sum(r.status == 'failed' for r in results)} failed on purpose)\n"
    )
    print("where everything is:")
    print(f"  run directories   {paths.runs_dir}/")
    print(f"  session registry  {paths.registry_dir}/")
    print(f"  demo market data  {paths.state_dir}/demo/")
    print(f"  static site       {built.out_dir}/index.html (open it in a browser, or `peaktrade site serve`)")
    for path in report_files:
        print(f"  report            {path}")
    print("\nwhat to run next:")
    print("  peaktrade session list                   # the sessions, newest first")
    print("  peaktrade monitor --list                 # runs with status and age; drop --list to follow one")
    print("  peaktrade runs list                      # the run directories")
    print(f"  peaktrade session show {latest.session_id}")
    print("  peaktrade site serve                     # http://127.0.0.1:8000/ : Live-Track, sessions, runs")
    print("  peaktrade ops health                     # health checks (asks Kraken's public API; bounded)")
    print("  peaktrade alerts run --dry-run           # the alerts cron would send, without sending")
    print("  peaktrade session run --steps 600 --bar-delay 1   # a session you can watch live")
    return 0


def _reports(cfg, results) -> list:
    """The sessions report (Markdown) and a run report with charts for the first demo run."""
    from peaktrade import registry, reports
    from peaktrade.clock import utcnow
    from peaktrade.commands.sessions import registry_index

    now = utcnow()
    records, _ = registry.list_records(cfg.paths.registry_dir, registry.Filters(), None, registry_index(cfg))
    currency = cfg.general.base_currency
    written = reports.write_sessions_reports(
        cfg.paths.reports_dir, records, summary_only=False, fmt="markdown", now=now, filters="none", currency=currency
    )
    first = results[0]
    written.append(
        reports.write_run_report(
            first.run_dir, cfg.paths.reports_dir / "runs" / first.run_id, now=now, currency=currency
        )
    )
    return written
