"""Incremental indicators, O(1) (amortized) per value."""

from __future__ import annotations

from collections import deque


class RollingMean:
    """Mean of the last `n` values; `value` is None until `n` values were seen."""

    __slots__ = ("buf", "n", "total")

    def __init__(self, n: int):
        self.n = n
        self.buf: deque[float] = deque()
        self.total = 0.0

    def push(self, x: float) -> float | None:
        buf = self.buf
        buf.append(x)
        self.total += x
        if len(buf) > self.n:
            self.total -= buf.popleft()
        return self.total / self.n if len(buf) == self.n else None


class RollingExtreme:
    """Max (or min) of the last `n` values via a monotonic deque."""

    __slots__ = ("i", "items", "n", "sign")

    def __init__(self, n: int, *, maximum: bool):
        self.n = n
        self.sign = 1.0 if maximum else -1.0
        self.items: deque[tuple[int, float]] = deque()
        self.i = 0

    def push(self, x: float) -> None:
        v = x * self.sign
        items = self.items
        while items and items[-1][1] <= v:
            items.pop()
        items.append((self.i, v))
        self.i += 1
        if items[0][0] <= self.i - 1 - self.n:
            items.popleft()

    @property
    def ready(self) -> bool:
        return self.i >= self.n

    @property
    def value(self) -> float:
        return self.items[0][1] * self.sign


class WilderRSI:
    """RSI with Wilder's smoothing; None until `n` changes were seen."""

    __slots__ = ("avg_gain", "avg_loss", "count", "n", "prev")

    def __init__(self, n: int):
        self.n = n
        self.prev: float | None = None
        self.avg_gain = 0.0
        self.avg_loss = 0.0
        self.count = 0

    def push(self, x: float) -> float | None:
        prev, self.prev = self.prev, x
        if prev is None:
            return None
        change = x - prev
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        n = self.n
        if self.count < n:
            self.count += 1
            self.avg_gain += gain / n
            self.avg_loss += loss / n
            if self.count < n:
                return None
        else:
            self.avg_gain = (self.avg_gain * (n - 1) + gain) / n
            self.avg_loss = (self.avg_loss * (n - 1) + loss) / n
        if self.avg_loss == 0:
            return 100.0 if self.avg_gain > 0 else 50.0
        return 100.0 - 100.0 / (1.0 + self.avg_gain / self.avg_loss)
