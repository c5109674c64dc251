"""Forward signals: the original system's CSV format (owned here), and `signals generate`.

Columns, in this order: generated_at, as_of, strategy_key, run_name, symbol, direction, size_hint, comment,
extra_json. Required: symbol, direction (-1, 0 or +1), as_of, strategy_key, run_name. `signals generate` runs a
strategy over recent closed bars and writes the newest signal per symbol to
`<reports_dir>/forward/<name>_signals.csv`, which `ops orders` reads.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from peaktrade.atomic import write_text
from peaktrade.clock import iso, parse_ts
from peaktrade.config import Settings
from peaktrade.errors import UsageError
from peaktrade.models import Bar, timeframe_seconds
from peaktrade.safeio import UnreadableFile, read_bytes
from peaktrade.strategies import get as get_strategy

COLUMNS = (
    "generated_at",
    "as_of",
    "strategy_key",
    "run_name",
    "symbol",
    "direction",
    "size_hint",
    "comment",
    "extra_json",
)
REQUIRED = ("symbol", "direction", "as_of", "strategy_key", "run_name")
MAX_SIGNALS_BYTES = 16 * 1024 * 1024
SYNTHETIC_BARS = 500


class SignalsError(UsageError):
    """A signals file that cannot be used: names the file, row and column, and the fix (exit 2)."""


@dataclass(frozen=True)
class Signal:
    symbol: str
    direction: int
    as_of: str
    strategy_key: str
    run_name: str
    generated_at: str = ""
    size_hint: float | None = None
    comment: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    row: int = 0  # 1-based data row in the file it came from (header is row 1, so data starts at 2)

    def as_row(self) -> dict[str, str]:
        return {
            "generated_at": self.generated_at,
            "as_of": self.as_of,
            "strategy_key": self.strategy_key,
            "run_name": self.run_name,
            "symbol": self.symbol,
            "direction": str(self.direction),
            "size_hint": "" if self.size_hint is None else f"{self.size_hint:g}",
            "comment": self.comment,
            "extra_json": json.dumps(self.extra, sort_keys=True) if self.extra else "",
        }


def read_signals(path: Path) -> list[Signal]:
    """Parse a signals CSV; the first problem raises `SignalsError` naming file, row and column."""
    path = Path(path)
    try:
        data = read_bytes(path, MAX_SIGNALS_BYTES)
    except UnreadableFile as exc:
        raise SignalsError(str(exc)) from None
    except FileNotFoundError:
        raise SignalsError(f"{path}: no such signals file; check the path (signals generate writes them)") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SignalsError(f"{path}: not UTF-8 text; save it as UTF-8 CSV") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SignalsError(
            f"{path}: row 1: missing column {missing[0]!r} (required: {', '.join(REQUIRED)}); add it to the header"
        )
    reader.fieldnames = header
    out = []
    for n, raw in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in raw.items() if isinstance(k, str)}
        if not any(row.values()):
            continue
        out.append(_signal(path, n, row))
    if not out:
        raise SignalsError(f"{path}: no signal rows under the header; generate signals first")
    return out


def _signal(path: Path, n: int, row: dict[str, str]) -> Signal:
    def bad(column: str, problem: str) -> SignalsError:
        value = row.get(column, "")
        shown = (value[:40] + "...") if len(value) > 40 else value
        return SignalsError(f"{path}: row {n}, column {column!r}: {problem} (got {shown!r})")

    for column in REQUIRED:
        if not row.get(column):
            raise bad(column, "required value is empty; fill it in")
    direction_text = row["direction"].lstrip("+")
    if direction_text not in ("-1", "0", "1"):
        raise bad("direction", "must be -1 (sell), 0 (flat) or +1 (buy)")
    if "/" not in row["symbol"]:
        raise bad("symbol", "use BASE/QUOTE as the exchange lists it, e.g. BTC/EUR")
    if parse_ts(row["as_of"]) is None:
        raise bad("as_of", "not an ISO 8601 time, e.g. 2025-01-01T12:00:00+00:00")
    size_hint = None
    if row.get("size_hint"):
        try:
            size_hint = float(row["size_hint"])
        except ValueError:
            raise bad("size_hint", "must be a number or empty") from None
        if not math.isfinite(size_hint) or size_hint < 0:
            raise bad("size_hint", "must be a finite number >= 0")
    extra: dict[str, Any] = {}
    if row.get("extra_json"):
        try:
            parsed = json.loads(row["extra_json"])
        except ValueError:
            raise bad("extra_json", 'not valid JSON; use an object like {"close": 1.0} or leave it empty') from None
        if not isinstance(parsed, dict):
            raise bad("extra_json", "must be a JSON object")
        extra = parsed
    return Signal(
        symbol=row["symbol"],
        direction=int(direction_text),
        as_of=row["as_of"],
        strategy_key=row["strategy_key"],
        run_name=row["run_name"],
        generated_at=row.get("generated_at", ""),
        size_hint=size_hint,
        comment=row.get("comment", ""),
        extra=extra,
        row=n,
    )


def to_csv(signals: list[Signal]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for s in signals:
        writer.writerow(s.as_row())
    return buf.getvalue()


def newest_signal(strategy_name: str, params: dict[str, Any], bars: list[Bar]) -> int:
    """The strategy's signal on the newest of `bars` (oldest first), after seeing all of them. Pure."""
    strategy = get_strategy(strategy_name).build(params)
    signal = 0
    for bar in bars:
        signal = strategy.update(bar)
    return signal


def recent_bars(
    settings: Settings, source: str, symbol: str, timeframe: str, now: datetime, client: Any = None
) -> tuple[list[Bar], str]:
    """Recent closed bars of `symbol` from `kraken`, `csv:FILE` or `synthetic[:SEED]`, and the timeframe used."""
    kind, _, arg = source.partition(":")
    if kind == "kraken":
        return client.ohlc(symbol, timeframe).bars, timeframe
    from peaktrade.marketdata import KrakenCsvSource, SyntheticSource

    if kind == "csv" and arg:
        csv_source = KrakenCsvSource(Path(arg), settings.session.csv_gap_policy)
        return list(csv_source), csv_source.timeframe
    if kind == "synthetic":
        tf = timeframe_seconds(timeframe)
        end = datetime.fromtimestamp((int(now.timestamp()) // tf) * tf, now.tzinfo)
        try:
            seed = int(arg) if arg else 42
        except ValueError:
            raise UsageError(f"--source {source!r}: the seed after synthetic: must be a whole number") from None
        start = end - timedelta(seconds=tf * SYNTHETIC_BARS)
        feed = iter(SyntheticSource(start=start, timeframe=timeframe, seed=seed))
        return [next(feed) for _ in range(SYNTHETIC_BARS)], timeframe
    raise UsageError(f"--source {source!r}: use kraken, csv:PATH/<PAIR>_<minutes>.csv or synthetic[:SEED]")


@dataclass(frozen=True)
class Generated:
    path: Path
    signals: list[Signal]


def generate(
    settings: Settings,
    *,
    strategy: str | None,
    symbols: list[str],
    timeframe: str | None,
    source: str,
    now: datetime,
) -> Generated:
    """Run `strategy` over recent closed bars per symbol; write the newest signal per symbol as a signals CSV."""
    name = strategy or settings.session.strategy
    spec = get_strategy(name)
    params = {**spec.defaults(), **settings.strategy.get(name, {})}
    tf = timeframe or settings.session.timeframe
    try:
        timeframe_seconds(tf)
    except ValueError as exc:
        raise UsageError(f"--timeframe: {exc}") from None
    wanted = symbols or [settings.session.symbol]
    for symbol in wanted:
        if "/" not in symbol:
            raise UsageError(f"--symbol {symbol!r}: use BASE/QUOTE, e.g. BTC/EUR")
    if source.startswith("csv:") and len(wanted) > 1:
        raise UsageError("--source csv:FILE holds one symbol: give one --symbol (or one command per file)")
    client = None
    if source == "kraken":
        from peaktrade.exchange import ExchangeClient, credentials

        client = ExchangeClient(settings.exchange, credentials(settings.exchange))
    run_name = f"forward_{name}_{tf}_{now:%Y%m%dT%H%M%SZ}"
    out: list[Signal] = []
    for symbol in wanted:
        bars, used_tf = recent_bars(settings, source, symbol, tf, now, client)
        if not bars:
            raise UsageError(f"--source {source}: no closed bars for {symbol}; check the source")
        direction = newest_signal(name, params, bars)
        last = bars[-1]
        out.append(
            Signal(
                symbol=symbol,
                direction=direction,
                as_of=iso(last.ts) or "",
                strategy_key=name,
                run_name=run_name,
                generated_at=iso(now) or "",
                comment=f"{name} on {len(bars)} closed {used_tf} bars from {source.partition(':')[0]}",
                extra={"close": last.close, "timeframe": used_tf, "bars": len(bars), "params": params},
            )
        )
    path = Path(settings.paths.reports_dir) / "forward" / f"{run_name}_signals.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, to_csv(out))
    return Generated(path, out)
