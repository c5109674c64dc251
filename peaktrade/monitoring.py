"""The Phase 33 monitoring API on peaktrade's run artifacts.

`load_run_snapshot` and `load_run_tail` cost O(1) in the run's length (meta.json totals + the last segment or
row group); `build_snapshot` (from `peaktrade.snapshot`), `render_summary` and `render_tail` are pure.

A snapshot and a tail shown together are one consistent view: `load_run_view` reads both through one reader, and
`load_run_tail` never returns rows newer than the last snapshot this process loaded for the same run (meta.json
is the commit point; the event files may already hold rows it does not count yet).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from peaktrade import terminal
from peaktrade.artifacts import RunReader, latest_run_dir
from peaktrade.artifacts.legacy import to_rows
from peaktrade.artifacts.summarycache import SummaryCache
from peaktrade.clock import utcnow
from peaktrade.snapshot import LiveRunSnapshot, build_snapshot
from peaktrade.status import stale_after_seconds

__all__ = ["stale_after_seconds"]  # re-exported: part of this API since Phase 33


class Colors:
    """ANSI colour codes used by the renderers."""

    RESET = "\033[0m"
    BOLD = "\033[1m"
    RED = "\033[31m"
    GREEN = "\033[32m"
    YELLOW = "\033[33m"
    BLUE = "\033[34m"
    CYAN = "\033[36m"
    GRAY = "\033[90m"


@dataclass
class LiveMonitoringConfig:
    default_interval_seconds: float = 2.0
    default_tail_rows: int = 15
    use_colors: bool = True
    stale_after_bars: int = 3
    stale_min_seconds: float = 300.0


def load_live_monitoring_config(cfg: Any) -> LiveMonitoringConfig:
    """From peaktrade's `Settings` or any object with a dotted `get(key, default)` (the original system's)."""
    d = LiveMonitoringConfig()
    get = cfg.get
    return LiveMonitoringConfig(
        default_interval_seconds=float(get("live_monitoring.default_interval_seconds", d.default_interval_seconds)),
        default_tail_rows=int(get("live_monitoring.default_tail_rows", d.default_tail_rows)),
        use_colors=bool(get("live_monitoring.use_colors", d.use_colors)),
        stale_after_bars=int(get("live_monitoring.stale_after_bars", d.stale_after_bars)),
        stale_min_seconds=float(get("live_monitoring.stale_min_seconds", d.stale_min_seconds)),
    )


@dataclass
class LiveRunTailRow:
    ts_bar: datetime | None
    equity: float | None
    realized_pnl: float | None
    unrealized_pnl: float | None
    position_size: float | None
    orders_count: int
    risk_allowed: bool
    risk_reasons: str


def load_run_snapshot(
    run_dir: Path,
    *,
    now: datetime | None = None,
    stale_bars: int = 3,
    stale_min_seconds: float = 300.0,
    summaries: SummaryCache | None = None,
) -> LiveRunSnapshot:
    """Snapshot of one run; `FileNotFoundError` if the run directory (or its meta.json) is missing.

    Runs in the original format have their totals derived once per event-file fingerprint (in-process, and
    in `summaries`' state file when given).
    """
    reader = RunReader(Path(run_dir), summary_cache=summaries)
    snapshot = _snapshot(reader, now or utcnow(), stale_bars, stale_min_seconds)
    _remember(run_dir, reader.committed_step)
    return snapshot


def load_run_tail(run_dir: Path, n: int = 15, summaries: SummaryCache | None = None) -> list[LiveRunTailRow]:
    """The last `n` events, oldest first; never newer than a snapshot of this run loaded just before."""
    reader = RunReader(Path(run_dir), upto=_paired_step(run_dir), summary_cache=summaries)
    return tail_rows(to_rows(reader.tail(n)))


def load_run_view(
    run_dir: Path,
    n: int = 15,
    *,
    now: datetime | None = None,
    stale_bars: int = 3,
    stale_min_seconds: float = 300.0,
    summaries: SummaryCache | None = None,
) -> tuple[LiveRunSnapshot, list[LiveRunTailRow]]:
    """Snapshot and last `n` events from one read of meta.json: the tail ends at the snapshot's last step."""
    reader = RunReader(Path(run_dir), summary_cache=summaries)
    snapshot = _snapshot(reader, now or utcnow(), stale_bars, stale_min_seconds)
    _remember(run_dir, reader.committed_step)
    return snapshot, (tail_rows(to_rows(reader.tail(n))) if n > 0 else [])


def _snapshot(reader: RunReader, now: datetime, stale_bars: int, stale_min_seconds: float) -> LiveRunSnapshot:
    meta = dict(reader.meta)
    meta["run_id"] = reader.run_id
    snapshot = build_snapshot(meta, reader.totals(), reader.last_event(), now, stale_bars, stale_min_seconds)
    snapshot.problems = list(reader.problems)
    return snapshot


# Commit point of the last snapshot loaded per run directory, so that the seed's two-call pattern
# (load_run_snapshot, then load_run_tail) shows one consistent view. A tail pairs with a snapshot taken at most
# _PAIR_SECONDS before it (a refresh makes both calls back to back); an older one no longer holds it back.
# Bounded: a monitor watches a few runs.
_COMMITTED: dict[str, tuple[float, int | None]] = {}
_COMMITTED_MAX = 256
_PAIR_SECONDS = 10.0


def _key(run_dir: Path | str) -> str:
    return str(Path(run_dir).absolute())


def _remember(run_dir: Path | str, step: int | None) -> None:
    key = _key(run_dir)
    _COMMITTED.pop(key, None)
    _COMMITTED[key] = (time.monotonic(), step)
    while len(_COMMITTED) > _COMMITTED_MAX:
        _COMMITTED.pop(next(iter(_COMMITTED)))


def _paired_step(run_dir: Path | str) -> int | None:
    taken, step = _COMMITTED.get(_key(run_dir), (float("-inf"), None))
    return step if time.monotonic() - taken <= _PAIR_SECONDS else None


def tail_rows(rows: list[dict[str, Any]]) -> list[LiveRunTailRow]:
    """Event dicts (oldest first) as `LiveRunTailRow`s."""
    return [
        LiveRunTailRow(
            ts_bar=r["ts_bar"],
            equity=r["equity"],
            realized_pnl=r["realized_pnl"],
            unrealized_pnl=r["unrealized_pnl"],
            position_size=r["position_size"],
            orders_count=int(r["orders_generated"] or 0),
            risk_allowed=r["risk_allowed"] is not False,
            risk_reasons=r["risk_reasons"] or "",
        )
        for r in rows
    ]


def get_latest_run_dir(base_dir: Path | str = "live_runs") -> Path | None:
    """Newest run by start time (ties: run id); None if there is none or `base_dir` does not exist."""
    return latest_run_dir(Path(base_dir))


# -- rendering (pure) ---------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:{'+' if sign else ''},.{digits}f}"


def _ts(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def short_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86_400:.0f}d"


def render_summary(snapshot: LiveRunSnapshot, use_colors: bool = True) -> str:
    """The RUN SUMMARY block: PnL green if >= 0 and red below, blocked yellow when > 0."""
    c = Colors if use_colors else NoColors
    s = snapshot
    t = terminal.printable  # artifact text never reaches the terminal with its control characters

    def pnl(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{c.GREEN if value >= 0 else c.RED}{_num(value, sign=True)}{c.RESET}"

    status = t(s.status)
    if s.state == "dead":
        status = (
            f"{c.RED}{status} (DEAD: the writer process is gone, last heartbeat "
            f"{short_age(s.heartbeat_age_seconds)} ago; `peaktrade runs recover` finalizes it){c.RESET}"
        )
    elif s.stale:
        status = f"{c.RED}{status} (STALE: no heartbeat for {short_age(s.heartbeat_age_seconds)}){c.RESET}"
    elif s.status == "running":
        status = f"{c.GREEN}running{c.RESET} (heartbeat {short_age(s.heartbeat_age_seconds)} ago)"
    elif status in ("failed", "aborted"):
        status = f"{c.RED}{status}{c.RESET}"
    blocked = str(s.total_blocked_orders)
    if s.total_blocked_orders > 0:
        blocked = f"{c.YELLOW}{blocked} (Risk-Blocked){c.RESET}"
    dd = "-" if s.drawdown is None else f"{s.drawdown:.2%}"
    if s.max_drawdown is not None:
        dd += f" (max {s.max_drawdown:.2%})"
    lines = [
        f"{c.BOLD}=== RUN SUMMARY ==={c.RESET}",
        f"run_id        : {t(s.run_id)}",
        f"mode          : {t(s.mode.upper())}",
        f"strategy      : {t(s.strategy_name)}",
        f"symbol        : {t(s.symbol)} ({t(s.timeframe or '?')})",
        f"status        : {status}",
        f"started       : {_ts(s.started_at)}" + (f"   ended: {_ts(s.ended_at)}" if s.ended_at else ""),
        f"last bar      : {_ts(s.last_bar_time)}",
        f"last price    : {_num(s.last_price)}",
        f"position      : {_num(s.position_size, 4)}",
        f"cash          : {_num(s.cash)}",
        f"equity        : {_num(s.equity)}",
        f"realized_pnl  : {pnl(s.realized_pnl)}",
        f"unrealized    : {pnl(s.unrealized_pnl)}",
        f"drawdown      : {dd}",
        f"fees          : {_num(s.fees)}",
        f"steps         : {s.total_steps:,}",
        f"orders        : {s.total_orders:,}",
        f"blocked       : {blocked}",
    ]
    if s.error:
        lines.append(f"error         : {c.RED}{t(s.error)}{c.RESET}")
    lines += [f"{c.YELLOW}problem       : {t(p)}{c.RESET}" for p in s.problems]
    return "\n".join(lines)


_TAIL_HEADER = f"{'ts_bar':<19} {'equity':>12} {'r_pnl':>10} {'u_pnl':>10} {'pos':>9} {'ord':>3} {'risk':<5} reasons"


def render_tail(rows: list[LiveRunTailRow], use_colors: bool = True) -> str:
    """The LAST N EVENTS table, oldest first; risk `OK` green, `BLOCK` red; reasons cut to 20 characters."""
    c = Colors if use_colors else NoColors
    lines = [f"{c.BOLD}=== LAST {len(rows)} EVENTS ==={c.RESET}"]
    if not rows:
        lines.append("(no events yet)")
        return "\n".join(lines)
    lines.append(f"{c.GRAY}{_TAIL_HEADER}{c.RESET}")
    for r in rows:
        risk = f"{c.GREEN}OK   {c.RESET}" if r.risk_allowed else f"{c.RED}BLOCK{c.RESET}"
        reasons = r.risk_reasons if len(r.risk_reasons) <= 20 else r.risk_reasons[:19] + "…"
        reasons = terminal.printable(reasons)
        lines.append(
            f"{_ts(r.ts_bar):<19} {_num(r.equity):>12} {_num(r.realized_pnl):>10} {_num(r.unrealized_pnl):>10} "
            f"{_num(r.position_size, 4):>9} {r.orders_count:>3} {risk} {reasons}"
        )
    return "\n".join(lines)


class NoColors:
    """Colors with every code empty: the same renderers without ANSI."""

    RESET = BOLD = RED = GREEN = YELLOW = BLUE = CYAN = GRAY = ""
