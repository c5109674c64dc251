"""Market data behind one small protocol: an iterable of closed bars.

Sources: `synthetic[:SEED]` (seeded random walk with volatility and trend regimes; offline, the default) and
`csv:PATH` (Kraken OHLCVT replay). A live ccxt poller fits the same protocol: it yields each bar once it has
closed, so strategies never see a bar that can still change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from peaktrade.errors import SessionError, UsageError
from peaktrade.models import TIMEFRAMES, Bar

GAP_POLICIES = ("fill", "skip")
_KRAKEN_NAME = re.compile(r"^(?P<pair>[A-Za-z0-9]+)_(?P<minutes>\d+)\.csv$")


class DataError(SessionError):
    """Bad market data (a malformed CSV row, time going backwards): names the file, line and fix."""


class BarSource(Protocol):
    """Closed bars, oldest first. `timeframe` is the bar length; `describe()` a one-line provenance."""

    timeframe: str

    def __iter__(self) -> Iterator[Bar]: ...

    def describe(self) -> str: ...


@dataclass
class SyntheticSource:
    """A seeded random walk that switches between calm/volatile and up/flat/down regimes, so strategies trade."""

    start: datetime
    timeframe: str = "1m"
    seed: int = 42
    start_price: float = 40_000.0

    def describe(self) -> str:
        return f"synthetic:{self.seed}"

    def __iter__(self) -> Iterator[Bar]:
        import numpy as np  # random numbers drawn in blocks: the per-bar Python cost stays small

        rng = np.random.default_rng(self.seed)
        exp = math.exp
        step = timedelta(seconds=TIMEFRAMES[self.timeframe])
        scale = math.sqrt(TIMEFRAMES[self.timeframe] / 60.0)
        vols = (0.0012 * scale, 0.0035 * scale)
        drifts = (-0.0003 * scale, 0.0, 0.0003 * scale)
        vol, drift = vols[0], drifts[1]
        price, ts = self.start_price, self.start
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


@dataclass
class KrakenCsvSource:
    """Replay of a Kraken OHLCVT file `<PAIR>_<minutes>.csv`: no header; timestamp (unix s), open, high, low,
    close, volume, trades. Kraken leaves out intervals in which nothing traded. Gap policy:

    - `fill` (default): each missing interval becomes a flat bar at the previous close with volume 0, so bar
      counts measure time and indicators keep their meaning;
    - `skip`: only the rows in the file are replayed.
    """

    path: Path
    gap_policy: str = "fill"

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        m = _KRAKEN_NAME.match(self.path.name)
        if not m:
            raise UsageError(
                f"{self.path}: Kraken OHLCVT files are named <PAIR>_<minutes>.csv (e.g. XBTEUR_60.csv); rename it"
            )
        self.pair = m["pair"]
        self.minutes = int(m["minutes"])
        by_seconds = {v: k for k, v in TIMEFRAMES.items()}
        if self.minutes * 60 not in by_seconds:
            raise UsageError(
                f"{self.path}: interval of {self.minutes} minutes is not supported; "
                f"use one of {', '.join(str(v // 60) for v in TIMEFRAMES.values())}"
            )
        self.timeframe = by_seconds[self.minutes * 60]
        if self.gap_policy not in GAP_POLICIES:
            raise UsageError(f"gap policy {self.gap_policy!r}: use one of {', '.join(GAP_POLICIES)}")
        if not self.path.is_file():
            raise UsageError(f"{self.path}: no such file; check the path after csv:")

    def describe(self) -> str:
        return f"csv:{self.path.name} (gaps: {self.gap_policy})"

    def __iter__(self) -> Iterator[Bar]:
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
                    if self.gap_policy == "fill" and prev is not None:
                        t = prev_ts + interval
                        while t < ts_s:
                            c = prev.close
                            yield Bar(datetime.fromtimestamp(t, UTC), c, c, c, c, 0.0)
                            t += interval
                prev, prev_ts = bar, ts_s
                yield bar

    def _parse(self, line: str, lineno: int) -> tuple[int, Bar]:
        parts = line.split(",")
        if len(parts) < 6:
            raise DataError(
                f"{self.path}:{lineno}: expected 7 columns (timestamp,open,high,low,close,volume,trades),"
                f" got {len(parts)}; fix or remove the row"
            )
        try:
            ts_s = int(float(parts[0]))
            o, h, lo, c, v = (float(x) for x in parts[1:6])
        except ValueError:
            raise DataError(f"{self.path}:{lineno}: not a number in {line[:80]!r}; fix or remove the row") from None
        if not all(math.isfinite(x) for x in (o, h, lo, c, v)) or min(o, h, lo, c) <= 0 or v < 0:
            raise DataError(f"{self.path}:{lineno}: prices must be positive and volume >= 0; fix or remove the row")
        return ts_s, Bar(datetime.fromtimestamp(ts_s, UTC), o, max(h, o, c), min(lo, o, c), c, v)


def open_source(spec: str, *, timeframe: str, start: datetime, gap_policy: str = "fill") -> BarSource:
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
        return KrakenCsvSource(Path(arg), gap_policy)
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
