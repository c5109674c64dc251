"""The `peaktrade` command: parse, import lazily, call one library function, print.

Only this module and `peaktrade.commands` print. Errors are `PeaktradeError`s caught once in `main`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from peaktrade import __version__
from peaktrade.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, PeaktradeError
from peaktrade.terminal import printable

EPILOG = "exit codes: 0 ok, 1 failure, 2 usage or config error, 75 skipped (lock held)"


def _command(parser: argparse.ArgumentParser, target: str) -> None:
    """Bind a subcommand to `module:function` in peaktrade.commands, imported only when it runs."""
    parser.set_defaults(_target=target)


def _add_config(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a --config given before the subcommand is not overwritten by this one's default.
    p.add_argument(
        "--config", default=argparse.SUPPRESS, help="config file (default: $PEAKTRADE_CONFIG or ./config/config.toml)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peaktrade",
        description="Ops toolkit for shadow, paper and testnet crypto trading sessions.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"peaktrade {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--config", help="config file (also accepted after the subcommand)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # config
    cfg = sub.add_parser("config", help="check or show the configuration")
    cfg_sub = cfg.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = cfg_sub.add_parser("check", help="validate the config file; every problem on its own line")
    _add_config(p)
    _command(p, "config_cmd:check")
    p = cfg_sub.add_parser("show", help="print the effective configuration (secrets redacted) as JSON")
    _add_config(p)
    _command(p, "config_cmd:show")

    # runs
    runs = sub.add_parser("runs", help="run directories: list, recover crashed runs")
    runs_sub = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = runs_sub.add_parser("list", help="runs, newest first, with status and size")
    _add_config(p)
    p.add_argument("--json", action="store_true", help="print JSON only")
    _command(p, "runs:list_runs")
    p = runs_sub.add_parser("recover", help="finalize runs whose writer died (status aborted, events compacted)")
    _add_config(p)
    p.add_argument("--run-id", help="recover only this run (even if its heartbeat is recent, when --force)")
    p.add_argument("--force", action="store_true", help="with --run-id: recover even if the writer looks alive")
    p.add_argument("--stale-seconds", type=float, help="heartbeat age that counts as dead (default from config)")
    _command(p, "runs:recover")

    # session
    session = sub.add_parser("session", help="trading sessions and the session registry")
    s_sub = session.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = s_sub.add_parser("run", help="run a trading session (shadow, paper or testnet) and record it")
    _add_config(p)
    p.add_argument("--mode", choices=("shadow", "paper", "testnet", "live"), help="default: [session].mode")
    p.add_argument("--strategy", "-s", help="default: [session].strategy (see list-strategies)")
    p.add_argument("--symbol", help="BASE/QUOTE, default: from a CSV's file name, else [session].symbol")
    p.add_argument(
        "--timeframe", "-t", help="bar length: 1m 5m 15m 30m 1h 4h 1d 1w (a CSV replay: from its file name)"
    )
    p.add_argument("--steps", type=int, help="stop after N bars (counted after the strategy's warm-up)")
    p.add_argument(
        "--duration",
        type=float,
        metavar="MINUTES",
        help="stop after MINUTES: wall-clock time for a live source, market time for replays and synthetic data",
    )
    p.add_argument(
        "--source", help="synthetic, synthetic:SEED, csv:PATH/<PAIR>_<minutes>.csv or kraken (live closed candles)"
    )
    p.add_argument("--bar-delay", type=float, help="seconds between bars, to watch a replay live (default 0)")
    p.add_argument("--start-balance", type=float)
    p.add_argument("--position-fraction", type=float, help="position size as a fraction of equity")
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan; write nothing")
    p.add_argument("--notes")
    p.add_argument("--tags", nargs="*", default=[], help="free-form labels")
    p.add_argument("--no-registry", action="store_true", help="do not write a session registry record")
    p.add_argument("--list-strategies", action="store_true", help="list the strategies and exit (as list-strategies)")
    _command(p, "session_cmd:run")
    p = s_sub.add_parser("list-strategies", help="strategies with their parameters and defaults")
    _add_config(p)
    _command(p, "session_cmd:list_strategies")
    p = s_sub.add_parser("list", help="registry records, newest first (filters apply before --limit)")
    _add_config(p)
    p.add_argument("--mode")
    p.add_argument("--status")
    p.add_argument("--run-type")
    p.add_argument("--strategy")
    p.add_argument("--symbol")
    p.add_argument("--since", help="only sessions started at or after this ISO time")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="print JSON only")
    _command(p, "sessions:list_sessions")
    p = s_sub.add_parser("show", help="one registry record as JSON")
    _add_config(p)
    p.add_argument("session_id")
    _command(p, "sessions:show")

    # alerts
    alerts = sub.add_parser("alerts", help="alerts through apprise: run the triggers (cron), test the targets")
    a_sub = alerts.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = a_sub.add_parser("test", help="send a test message to every configured target")
    _add_config(p)
    _command(p, "alerts_cmd:test")
    p = a_sub.add_parser(
        "run",
        help="raise alerts from runs, sessions and health; send one batched message per target (cron)",
        epilog="exit codes: 0 ok, 1 a delivery failed (kept in the outbox), 2 config error, 75 another run holds "
        "the lock",
    )
    _add_config(p)
    p.add_argument("--dry-run", action="store_true", help="print what would be sent; send and write nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: print the messages as JSON only")
    _command(p, "alerts_cmd:run")

    # ops (seed Phase 51): orders, portfolio, health
    ops = sub.add_parser("ops", help="operations: orders from signals, portfolio, health checks")
    ops_sub = ops.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = ops_sub.add_parser("orders", help="orders from a forward signals CSV, priced and checked against [live_risk]")
    _add_config(p)
    p.add_argument("signals", nargs="?", help="forward signals CSV (same as --signals)")
    p.add_argument("--signals", dest="signals_opt", metavar="FILE", help="forward signals CSV (signals generate)")
    p.add_argument("--notional", type=float, help="amount per order (default: start_balance x position_fraction)")
    enforce = p.add_mutually_exclusive_group()
    enforce.add_argument("--enforce-live-risk", action="store_true", help="exit 1 if an order breaches a limit")
    enforce.add_argument("--skip-live-risk", action="store_true", help="do not check [live_risk] at all")
    p.add_argument("--offline", action="store_true", help="price from the last bar of local runs, not the ticker")
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.add_argument("--output-dir", help="where <name>_orders.csv goes (default: <reports_dir>/live)")
    _command(p, "ops_cmd:orders")
    p = ops_sub.add_parser("portfolio", help="open positions of running sessions and exchange balances, with risk")
    _add_config(p)
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.add_argument("--no-risk", action="store_true", help="skip the risk evaluation")
    p.add_argument("--starting-cash", type=float, help="base for percentage limits (max_daily_loss_pct)")
    _command(p, "ops_cmd:portfolio")

    # signals
    sig = sub.add_parser("signals", help="forward signals for `ops orders`")
    sig_sub = sig.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sig_sub.add_parser("generate", help="newest signal per symbol over recent closed bars, as a signals CSV")
    _add_config(p)
    p.add_argument("--strategy", "-s", help="default: [session].strategy")
    p.add_argument("--symbol", action="append", help="BASE/QUOTE; repeat for several (default: [session].symbol)")
    p.add_argument("--timeframe", "-t", help="bar length, default: [session].timeframe")
    p.add_argument("--source", help="kraken (default), csv:PATH/<PAIR>_<minutes>.csv or synthetic[:SEED]")
    _command(p, "signals_cmd:generate")
    p = ops_sub.add_parser(
        "health",
        help="run the health checks; exit 0 OK/DEGRADED, 1 FAIL",
        description="Checks config, alerts, risk limits, sessions (dead-man's switch), site freshness, artifacts, "
        "disk and cron jobs; appends the result to the history in [paths].state_dir. See docs/health.md.",
        epilog="exit codes: 0 OK or DEGRADED, 1 FAIL; with --nagios 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
    )
    _add_config(p)
    p.add_argument("--json", action="store_true", help="print JSON only (the seed's keys, overall, checks)")
    p.add_argument("--nagios", action="store_true", help="Nagios exit codes 0/1/2/3 and a status line first")
    _command(p, "ops_cmd:health")

    # monitor
    p = sub.add_parser("monitor", help="follow one run live in the terminal (Phase 33 monitor)")
    _add_config(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--run-dir", help="a run directory")
    which.add_argument("--run-id", help="a run id under [paths].runs_dir")
    which.add_argument("--latest", action="store_true", help="the newest run by start time (the default)")
    which.add_argument("--list", action="store_true", help="list runs, newest first, with mode, status and age")
    p.add_argument("--interval", type=float, help="seconds between refreshes (default [live_monitoring])")
    p.add_argument("--rows", type=int, help="tail rows (default [live_monitoring])")
    p.add_argument("--view", choices=("summary", "tail", "both"), default="both")
    p.add_argument("--no-colors", action="store_true", help="no ANSI colours (also: NO_COLOR, or not a terminal)")
    p.add_argument("--once", action="store_true", help="print one frame and exit (for scripts)")
    p.add_argument("--limit", type=int, default=20, help="with --list: how many runs")
    p.add_argument("--json", action="store_true", help="with --list: JSON only")
    _command(p, "monitor:monitor")

    # site
    site = sub.add_parser("site", help="the static site: build (cron) and serve")
    st_sub = site.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = st_sub.add_parser("build", help="render the site from run directories and the registry")
    _add_config(p)
    p.add_argument("--out", help="output directory (default: [paths].site_dir)")
    p.add_argument("--full", action="store_true", help="re-render every page, not only what changed")
    p.add_argument("--loop", type=float, metavar="SECONDS", help="rebuild every SECONDS until Ctrl+C (no cron)")
    _command(p, "site_cmd:build")
    p = st_sub.add_parser("serve", help="serve the built site over HTTP (read-only)")
    _add_config(p)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default: localhost only)")
    p.add_argument("--dir", help="directory to serve (default: [paths].site_dir)")
    _command(p, "site_cmd:serve")

    # report
    report = sub.add_parser("report", help="Markdown/HTML reports for ops notes")
    r_sub = report.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = r_sub.add_parser("sessions", help="sessions table and summary from the registry")
    _add_config(p)
    p.add_argument("--run-type", help="e.g. live_session_shadow")
    p.add_argument("--status", choices=("started", "completed", "failed", "aborted"))
    p.add_argument("--mode", choices=("shadow", "paper", "testnet", "live"))
    p.add_argument("--limit", type=int, help="newest N sessions (after the filters)")
    p.add_argument("--summary-only", action="store_true", help="only the summary (it respects every filter)")
    p.add_argument("--output-format", choices=("markdown", "html", "both"), default="markdown")
    p.add_argument("--stdout", action="store_true", help="print instead of writing files")
    p.add_argument("--output-dir", help="default: [paths].reports_dir")
    _command(p, "report:sessions")
    p = r_sub.add_parser("run", help="one run as Markdown with equity and drawdown PNG charts beside it")
    _add_config(p)
    p.add_argument("run_id")
    p.add_argument("--output-dir", help="default: <reports_dir>/runs/<run_id>")
    _command(p, "report:run")

    # demo
    p = sub.add_parser("demo", help="run demo sessions on synthetic data, then say where everything is")
    _add_config(p)
    _command(p, "demo:demo")
    return parser


def run() -> None:
    """The program (`peaktrade`, `python -m peaktrade`): `main`, then exit. What is still alive then is freed with
    the process, so the cyclic GC's last pass over it at exit is skipped (`gc.freeze`; 30 ms after a site build)."""
    code = main()
    gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    target = getattr(args, "_target", None)
    if target is None:
        parser.print_help()
        return EXIT_USAGE
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(f"peaktrade.commands.{module_name}")
        return int(getattr(module, func_name)(args) or EXIT_OK)
    except PeaktradeError as exc:
        if args.verbose:
            import traceback

            traceback.print_exc()
        print(f"peaktrade: error: {printable(exc, keep_newlines=True)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("peaktrade: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug: say so in one line, traceback only with -v
        if args.verbose:
            raise
        print(
            f"peaktrade: unexpected error: {exc.__class__.__name__}: {printable(exc)} (rerun with -v)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
