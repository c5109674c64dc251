"""The built-in strategies: ma_crossover, rsi_reversion, breakout (Donchian), momentum."""

from __future__ import annotations

from collections import deque

from peaktrade.models import Bar
from peaktrade.strategies.base import Param, StrategySpec
from peaktrade.strategies.indicators import RollingExtreme, RollingMean, WilderRSI


class MaCrossover:
    """Long while the fast SMA is above the slow SMA, short (or flat) while below. Exits on the cross back."""

    def __init__(self, fast_window: int, slow_window: int):
        self.fast = RollingMean(fast_window)
        self.slow = RollingMean(slow_window)

    def update(self, bar: Bar) -> int:
        f = self.fast.push(bar.close)
        s = self.slow.push(bar.close)
        if f is None or s is None or f == s:
            return 0
        return 1 if f > s else -1


class RsiReversion:
    """Long when RSI < lower, short when RSI > upper; exit when RSI crosses back to exit_level."""

    def __init__(self, window: int, lower: float, upper: float, exit_level: float):
        self.rsi = WilderRSI(window)
        self.lower, self.upper, self.exit_level = lower, upper, exit_level
        self.state = 0

    def update(self, bar: Bar) -> int:
        rsi = self.rsi.push(bar.close)
        if rsi is None:
            return 0
        if (self.state == 1 and rsi >= self.exit_level) or (self.state == -1 and rsi <= self.exit_level):
            self.state = 0
        if self.state == 0:
            if rsi < self.lower:
                self.state = 1
            elif rsi > self.upper:
                self.state = -1
        return self.state


class Breakout:
    """Donchian channel: long on a close above the highest high of the previous `window` bars, short below the
    lowest low; exit a long below the lowest low of the previous `exit_window` bars (a short above the high)."""

    def __init__(self, window: int, exit_window: int):
        self.hi = RollingExtreme(window, maximum=True)
        self.lo = RollingExtreme(window, maximum=False)
        self.exit_hi = RollingExtreme(exit_window, maximum=True)
        self.exit_lo = RollingExtreme(exit_window, maximum=False)
        self.state = 0

    def update(self, bar: Bar) -> int:
        c = bar.close
        if self.hi.ready:  # channels of the *previous* bars, so the current bar can break them
            if (self.state == 1 and c < self.exit_lo.value) or (self.state == -1 and c > self.exit_hi.value):
                self.state = 0
            if self.state == 0:
                if c > self.hi.value:
                    self.state = 1
                elif c < self.lo.value:
                    self.state = -1
        self.hi.push(bar.high)
        self.exit_hi.push(bar.high)
        self.lo.push(bar.low)
        self.exit_lo.push(bar.low)
        return self.state


class Momentum:
    """Long when the return over `lookback` bars exceeds `threshold`, short below −threshold, else flat."""

    def __init__(self, lookback: int, threshold: float):
        self.buf: deque[float] = deque(maxlen=lookback + 1)
        self.threshold = threshold

    def update(self, bar: Bar) -> int:
        buf = self.buf
        buf.append(bar.close)
        if len(buf) < buf.maxlen or buf[0] <= 0:
            return 0
        ret = bar.close / buf[0] - 1.0
        if ret > self.threshold:
            return 1
        if ret < -self.threshold:
            return -1
        return 0


SPECS = (
    StrategySpec(
        "ma_crossover",
        "moving-average crossover: fast SMA above slow SMA is long",
        (
            Param("fast_window", int, 10, "bars in the fast SMA", 1),
            Param("slow_window", int, 30, "bars in the slow SMA", 2),
        ),
        MaCrossover,
        ((lambda p: p["fast_window"] < p["slow_window"], "fast_window: must be smaller than slow_window"),),
        warmup=lambda p: p["slow_window"],
    ),
    StrategySpec(
        "rsi_reversion",
        "RSI mean reversion: buy oversold, sell overbought, exit at the middle",
        (
            Param("window", int, 14, "RSI period (Wilder smoothing)", 2),
            Param("lower", float, 30.0, "enter long below this RSI", 0, 100),
            Param("upper", float, 70.0, "enter short above this RSI", 0, 100),
            Param("exit_level", float, 50.0, "leave the position when RSI crosses this level", 0, 100),
        ),
        RsiReversion,
        ((lambda p: p["lower"] < p["exit_level"] < p["upper"], "exit_level: must lie between lower and upper"),),
        warmup=lambda p: p["window"] + 1,
    ),
    StrategySpec(
        "breakout",
        "Donchian channel breakout with a shorter exit channel",
        (
            Param("window", int, 20, "entry channel length in bars", 2),
            Param("exit_window", int, 10, "exit channel length in bars", 1),
        ),
        Breakout,
        warmup=lambda p: max(p["window"], p["exit_window"]),
    ),
    StrategySpec(
        "momentum",
        "time-series momentum: sign of the return over a lookback",
        (
            Param("lookback", int, 20, "bars to measure the return over", 1),
            Param("threshold", float, 0.002, "minimum absolute return to take a position (fraction)", 0),
        ),
        Momentum,
        warmup=lambda p: p["lookback"],
    ),
)
