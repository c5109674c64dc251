"""Market data behind one small protocol, `BarSource`: closed bars, oldest first, plus a warm-up history.

A source is:

- `timeframe`: the bar length (`1m` ... `1w`);
- `live`: True when bars arrive in real time (a session's `--duration` is then wall-clock time); False for
  replays and synthetic data, whose `--duration` is market time (bars' timestamps);
- `history(n)`: up to `n` closed bars *before* the first bar the iterator yields, for strategies to warm up on
  (a replay takes them from the start of its file, the synthetic walk generates them, a live source fetches them);
- `__iter__()`: the bars to trade on, each yielded once it has closed, so strategies never see a bar that can
  still change;
- `notes`: lines the session records in the run's notes (for example gaps a replay skipped);
- `describe()`: a one-line provenance for meta.json.

Sources here: `synthetic[:SEED]` (seeded random walk with volatility and trend regimes; offline, the default) and
`csv:PATH` (Kraken OHLCVT replay). Data that cannot be right is refused with `DataError` naming file and line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Protocol

from peaktrade.errors import DataError, UsageError
from peaktrade.models import TIMEFRAMES, Bar

__all__ = ["BarSource", "DataError", "KrakenCsvSource", "SyntheticSource", "open_source", "pair_symbol"]

GAP_POLICIES = ("fill", "skip")
_KRAKEN_NAME = re.compile(r"^(?P<pair>[A-Za-z0-9]+)_(?P<minutes>\d+)\.csv$")
# Plausibility bounds. Prices of real pairs span ~1e-10 (SHIB/BTC) to ~1e10 (BTC in weak fiat); beyond that a
# row is corrupt, and 1e308 would turn equity into infinity. Timestamps are unix seconds of this century: a
# value of 0 or a millisecond timestamp is a broken row, not market history.
MIN_PRICE, MAX_PRICE = 1e-12, 1e12
MIN_TS, MAX_TS = 946_684_800, 4_102_444_800  # 2000-01-01 .. 2100-01-01 UTC
_MAX_NOTES = 20


class BarSource(Protocol):
    """Closed bars, oldest first, plus a warm-up history (see the module docstring)."""

    timeframe: str
    live: bool
    notes: list[str]

    def history(self, n: int) -> list[Bar]: ...

    def __iter__(self) -> Iterator[Bar]: ...

    def describe(self) -> str: ...


@dataclass
class SyntheticSource:
    """A seeded random walk that switches between calm/volatile and up/flat/down regimes, so strategies trade.
    `start` is the open time of the first bar the iterator yields; `history(n)` generates the n bars before it."""

    start: datetime
    timeframe: str = "1m"
    seed: int = 42
    start_price: float = 40_000.0
    live: bool = False
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rest: Iterator[Bar] | None = None

    def describe(self) -> str:
        return f"synthetic:{self.seed}"

    def history(self, n: int) -> list[Bar]:
        step = timedelta(seconds=TIMEFRAMES[self.timeframe])
        walk = self._walk(self.start - step * max(n, 0))
        bars = list(islice(walk, max(n, 0)))
        self._rest = walk
        return bars

    def __iter__(self) -> Iterator[Bar]:
        rest, self._rest = self._rest, None
        return rest if rest is not None else self._walk(self.start)

    def _walk(self, start: datetime) -> Iterator[Bar]:
        import numpy as np  # random numbers drawn in blocks: the per-bar Python cost stays small

        rng = np.random.default_rng(self.seed)
        exp = math.exp
        step = timedelta(seconds=TIMEFRAMES[self.timeframe])
        scale = math.sqrt(TIMEFRAMES[self.timeframe] / 60.0)
        vols = (0.0012 * scale, 0.0035 * scale)
        drifts = (-0.0003 * scale, 0.0, 0.0003 * scale)
        vol, drift = vols[0], drifts[1]
        price, ts = self.start_price, start
        while True:
            block = 4096
            normals = rng.standard_normal((block, 2)).tolist()
            uniforms = rng.random((block, 3)).tolist()
            volumes = np.round(rng.lognormal(0.0, 0.6, block), 6).tolist()
            for (z1, z2), (u1, u2, u3), volume in zip(normals, uniforms, volumes):
                if u1 < 0.01:
                    vol = vols[u2 < 0.5]
                if u3 < 0.004:
                    drift = drifts[int(u2 * 3)]
                close = price * exp(drift + vol * z1)
                wiggle = abs(z2) * vol * 0.5
                high = (price if price > close else close) * (1.0 + wiggle)
                low = (price if price < close else close) * (1.0 - wiggle)
                yield Bar(ts, price, high, low, close, volume)
                price, ts = close, ts + step


# Kraken asset codes that differ from the usual symbols (XBT is bitcoin; legacy names carry an X/Z prefix).
_ASSET_ALIASES = {"XBT": "BTC", "XXBT": "BTC", "XDG": "DOGE", "XXDG": "DOGE"}
_LEGACY = {"XETH", "XLTC", "XXRP", "XXLM", "XETC", "XXMR", "XZEC", "XMLN", "XREP", "ZEUR", "ZUSD", "ZGBP", "ZCAD"}
_LEGACY |= {"ZJPY", "ZCHF", "ZAUD"}
_QUOTES = sorted(
    {"EUR", "USD", "GBP", "CAD", "JPY", "CHF", "AUD", "USDT", "USDC", "DAI", "XBT", "ETH", "DOT", "XXBT", "XETH"}
    | {q for q in _LEGACY if q.startswith("Z")},
    key=len,
    reverse=True,
)


def _asset(code: str) -> str:
    if code in _LEGACY:
        code = code[1:]
    return _ASSET_ALIASES.get(code, code)


def pair_symbol(pair: str) -> str | None:
    """`BASE/QUOTE` for a Kraken pair name (`ETHEUR` -> ETH/EUR, `XXBTZEUR` -> BTC/EUR); None if unknown."""
    p = pair.upper()
    for quote in _QUOTES:
        if p.endswith(quote) and len(p) > len(quote):
            return f"{_asset(p[: -len(quote)])}/{_asset(quote)}"
    return None


def csv_name_info(path: Path) -> tuple[str | None, str]:
    """(symbol or None, timeframe) from a Kraken file name `<PAIR>_<minutes>.csv`; UsageError if it is not one."""
    m = _KRAKEN_NAME.match(Path(path).name)
    if not m:
        raise UsageError(
            f"{path}: Kraken OHLCVT files are named <PAIR>_<minutes>.csv (e.g. XBTEUR_60.csv); rename it"
        )
    by_seconds = {v: k for k, v in TIMEFRAMES.items()}
    minutes = int(m["minutes"])
    if minutes * 60 not in by_seconds:
        raise UsageError(
            f"{path}: interval of {minutes} minutes is not supported; "
            f"use one of {', '.join(str(v // 60) for v in TIMEFRAMES.values())}"
        )
    return pair_symbol(m["pair"]), by_seconds[minutes * 60]


@dataclass
class KrakenCsvSource:
    """Replay of a Kraken OHLCVT file `<PAIR>_<minutes>.csv`: no header; timestamp (unix s), open, high, low,
    close, volume, trades. Kraken leaves out intervals in which nothing traded. Gap policy:

    - `fill` (default): each missing interval becomes a flat bar at the previous close with volume 0, so bar
      counts measure time and indicators keep their meaning; a gap of more than `max_gap_bars` intervals is
      refused (one stray row at timestamp 0 would otherwise fill millions of bars);
    - `skip`: only the rows in the file are replayed; a gap of more than `max_gap_bars` is noted in `notes`.

    Rows that cannot be right (non-finite or implausible prices, high < low, timestamps outside 2000..2100,
    time going backwards) raise `DataError` naming the file and line; so does a file without rows.
    """

    path: Path
    gap_policy: str = "fill"
    max_gap_bars: int = 1440
    live: bool = False
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        _, self.timeframe = csv_name_info(self.path)
        self.minutes = TIMEFRAMES[self.timeframe] // 60
        if self.gap_policy not in GAP_POLICIES:
            raise UsageError(f"gap policy {self.gap_policy!r}: use one of {', '.join(GAP_POLICIES)}")
        if not self.path.is_file():
            raise UsageError(f"{self.path}: no such file; check the path after csv:")
        if not self._has_rows():
            raise DataError(
                f"{self.path}:1: the file has no rows; a Kraken OHLCVT file has one bar per line "
                "(timestamp,open,high,low,close,volume,trades): check the download or pick another file"
            )
        self._rest: Iterator[Bar] | None = None
        self._skipped_gaps = 0

    def describe(self) -> str:
        return f"csv:{self.path.name} (gaps: {self.gap_policy})"

    def history(self, n: int) -> list[Bar]:
        bars = self._bars()
        out = list(islice(bars, max(n, 0)))
        self._rest = bars
        return out

    def __iter__(self) -> Iterator[Bar]:
        rest, self._rest = self._rest, None
        return rest if rest is not None else self._bars()

    def _has_rows(self) -> bool:
        with open(self.path, "rb") as fh:
            return any(line.strip() for line in fh)

    def _bars(self) -> Iterator[Bar]:
        interval = self.minutes * 60
        prev: Bar | None = None
        prev_ts = None
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                ts_s, bar = self._parse(line, lineno)
                if prev_ts is not None:
                    if ts_s <= prev_ts:
                        raise DataError(
                            f"{self.path}:{lineno}: timestamp {ts_s} is not after the previous row's "
                            f"{prev_ts}; sort the file by time and remove duplicates"
                        )
                    missing = (ts_s - prev_ts) // interval - 1
                    if missing > self.max_gap_bars:
                        self._long_gap(lineno, prev_ts, ts_s, missing)
                    elif self.gap_policy == "fill" and prev is not None:
                        t = prev_ts + interval
                        while t < ts_s:
                            c = prev.close
                            yield Bar(datetime.fromtimestamp(t, UTC), c, c, c, c, 0.0)
                            t += interval
                prev, prev_ts = bar, ts_s
                yield bar

    def _long_gap(self, lineno: int, prev_ts: int, ts_s: int, missing: int) -> None:
        span = f"{_utc(prev_ts)} to {_utc(ts_s)}"
        if self.gap_policy == "fill":
            raise DataError(
                f"{self.path}:{lineno}: {missing:,} bars missing since the previous row ({span}), more than "
                f"[session].max_gap_bars = {self.max_gap_bars:,}; remove a stray row, split the file, raise "
                'max_gap_bars, or set csv_gap_policy = "skip" to jump over long gaps'
            )
        self._skipped_gaps += 1
        if self._skipped_gaps <= _MAX_NOTES:
            self.notes.append(f"{self.path.name}:{lineno}: skipped a gap of {missing:,} bars ({span})")
        elif self._skipped_gaps == _MAX_NOTES + 1:
            self.notes.append(f"{self.path.name}: more gaps longer than {self.max_gap_bars:,} bars were skipped")

    def _parse(self, line: str, lineno: int) -> tuple[int, Bar]:
        where = f"{self.path}:{lineno}"
        parts = line.split(",")
        if len(parts) < 6:
            raise DataError(
                f"{where}: expected 7 columns (timestamp,open,high,low,close,volume,trades),"
                f" got {len(parts)}; fix or remove the row"
            )
        try:
            ts_f = float(parts[0])
            o, h, lo, c, v = (float(x) for x in parts[1:6])
        except ValueError:
            raise DataError(f"{where}: not a number in {line[:80]!r}; fix or remove the row") from None
        if not math.isfinite(ts_f) or not MIN_TS <= ts_f < MAX_TS:
            hint = " (milliseconds? Kraken OHLCVT files use unix seconds)" if 1e11 < ts_f < 1e14 else ""
            raise DataError(
                f"{where}: timestamp {parts[0].strip()[:30]!r} is not a time between 2000 and 2100 in unix "
                f"seconds{hint}; fix or remove the row"
            )
        for i, (name, price) in enumerate((("open", o), ("high", h), ("low", lo), ("close", c)), 1):
            if not (math.isfinite(price) and MIN_PRICE <= price <= MAX_PRICE):
                raise DataError(
                    f"{where}: {name} {parts[i].strip()[:30]!r} is not a plausible price (finite, between "
                    f"{MIN_PRICE:g} and {MAX_PRICE:g}); fix or remove the row"
                )
        if h < lo:
            raise DataError(f"{where}: high {h:g} is below low {lo:g}; fix or remove the row")
        if not math.isfinite(v) or v < 0:
            raise DataError(f"{where}: volume {parts[5].strip()[:30]!r} must be a finite number >= 0; fix the row")
        ts_s = int(ts_f)
        return ts_s, Bar(datetime.fromtimestamp(ts_s, UTC), o, max(h, o, c), min(lo, o, c), c, v)


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def open_source(
    spec: str, *, timeframe: str, start: datetime, gap_policy: str = "fill", max_gap_bars: int = 1440
) -> BarSource:
    """Build a source from `--source`: `synthetic`, `synthetic:SEED` or `csv:PATH`."""
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        seed = 42
        if arg:
            try:
                seed = int(arg)
            except ValueError:
                raise UsageError(f"--source {spec!r}: the seed after synthetic: must be a whole number") from None
        return SyntheticSource(start=start, timeframe=timeframe, seed=seed)
    if kind == "csv" and arg:
        return KrakenCsvSource(Path(arg), gap_policy, max_gap_bars)
    raise UsageError(f"--source {spec!r}: use synthetic, synthetic:SEED or csv:PATH/TO/<PAIR>_<minutes>.csv")


def write_kraken_csv(path: Path, bars: list[Bar], *, drop_every: int = 0) -> None:
    """Write bars in Kraken's OHLCVT format (used by the demo to replay a file); `drop_every` leaves gaps."""
    lines = []
    for i, b in enumerate(bars):
        if drop_every and i % drop_every == drop_every - 1:
            continue  # nothing traded in this interval: Kraken writes no row
        volume = f"{b.volume:.1E}" if i % 10 == 0 else f"{b.volume:.8f}"  # Kraken writes some volumes like 1E+1
        lines.append(
            f"{int(b.ts.timestamp())},{b.open:.2f},{b.high:.2f},{b.low:.2f},{b.close:.2f},{volume},{i % 17 + 1}"
        )
    path.write_text("\n".join(lines) + "\n")
