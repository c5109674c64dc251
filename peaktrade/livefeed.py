"""Live closed candles from Kraken (`--source kraken`), behind the same protocol as `marketdata`'s sources.

- `history(n)`: the newest n committed candles, for the strategy's warm-up; the live bars start after them.
- Iterating polls every `poll_seconds` with `since` = the newest candle already delivered, so every candle that
  was committed between two polls (or during an outage) arrives, exactly once and in order.
- Kraken's OHLC answer always ends with the current, uncommitted candle; `ExchangeClient.ohlc` drops it (by
  position and by Kraken's `last`). The local clock never decides that a candle is closed.
- Missing intervals between two committed candles (nothing traded, or more than Kraken's 720-candle window
  missed during an outage) follow the gap policy: `fill` adds flat bars at the previous close with volume 0,
  `skip` leaves them out. Either way the gap is reported through `on_status`.
- While waiting it calls `on_wait()` at least every `heartbeat_seconds` (the session refreshes its heartbeat),
  and reports the exchange's state through `on_status(message)`: a line when polls start failing (the session
  keeps running) and one when the exchange is back and the missed candles are caught up.
- A set `stop` event ends the iteration at once (Ctrl+C, SIGTERM). A request the exchange refuses (unknown
  symbol) raises `FeedError`: the session ends `failed` with the reason instead of polling forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from peaktrade.errors import SessionError
from peaktrade.exchange import ExchangeClient, ExchangeRejected, ExchangeUnavailable
from peaktrade.models import Bar, timeframe_seconds


class FeedError(SessionError):
    """The exchange refuses the candle request itself (e.g. an unknown symbol): refused at the warm-up, before a
    run exists; later the session ends `failed`."""


def _ignore(*_args: object) -> None:
    return None


@dataclass
class KrakenLiveSource:
    """Committed Kraken candles of one symbol, as they are committed."""

    client: ExchangeClient
    symbol: str
    timeframe: str
    poll_seconds: float
    gap_policy: str = "fill"
    heartbeat_seconds: float = 5.0
    stop: threading.Event = field(default_factory=threading.Event)
    on_wait: Callable[[], None] = _ignore
    on_status: Callable[[str], None] = _ignore
    live: bool = True
    notes: list[str] = field(default_factory=list)
    _last_ts: int | None = field(default=None, init=False)  # the newest candle delivered (unix seconds)
    _last_close: float | None = field(default=None, init=False)
    _failing_since: datetime | None = field(default=None, init=False)
    _failed_polls: int = field(default=0, init=False)

    def describe(self) -> str:
        return f"kraken:{self.symbol} (closed candles, poll {self.poll_seconds:g} s, gaps: {self.gap_policy})"

    def bind(self, stop: threading.Event, on_wait: Callable[[], None], on_status: Callable[[str], None]) -> None:
        """Attach the session's stop event, heartbeat and status line (called once the run exists)."""
        self.stop = stop
        self.client.stop = stop  # a retry wait also ends at once on Ctrl+C
        self.on_wait = on_wait
        self.on_status = on_status

    def history(self, n: int) -> list[Bar]:
        """The newest `n` committed candles (warm-up); [] if the exchange cannot be reached now (the live part
        then starts at the first committed candle it sees)."""
        answer = self._poll(None)
        if answer is None or not answer:
            return []
        bars = answer[-n:]
        self._last_ts = int(bars[-1].ts.timestamp())
        self._last_close = bars[-1].close
        return bars

    def __iter__(self) -> Iterator[Bar]:
        tf = timeframe_seconds(self.timeframe)
        next_poll = time.monotonic()
        while not self.stop.is_set():
            self._wait_until(next_poll)
            if self.stop.is_set():
                return
            next_poll = time.monotonic() + self.poll_seconds
            bars = self._poll(self._last_ts)
            if bars is None:
                continue
            if self._last_ts is None and bars:
                bars = bars[-1:]  # no warm-up: start at the newest committed candle, not 720 candles back
            for bar in self._new(bars, tf):
                if self.stop.is_set():
                    return
                yield bar

    # -- internals ------------------------------------------------------------------------------------------

    def _poll(self, since: int | None) -> list[Bar] | None:
        try:
            answer = self.client.ohlc(self.symbol, self.timeframe, since)
        except ExchangeUnavailable as exc:
            self._failed_polls += 1
            if self._failing_since is None:
                self._failing_since = datetime.now(UTC)
                self.on_status(
                    f"exchange unreachable since {self._failing_since:%Y-%m-%dT%H:%M:%SZ}: {exc}; "
                    f"the session keeps running and polls every {self.poll_seconds:g} s"
                )
            return None
        except ExchangeRejected as exc:
            # The exchange answered and said no (unknown pair, ...): asking again will not help.
            raise FeedError(f"{exc} (--symbol {self.symbol}, --timeframe {self.timeframe})") from None
        if self._failing_since is not None:
            behind = sum(1 for b in answer.bars if self._last_ts is None or b.ts.timestamp() > self._last_ts)
            self.on_status(
                f"exchange reachable again after {self._failed_polls} failed polls since "
                f"{self._failing_since:%Y-%m-%dT%H:%M:%SZ}; catching up {behind} closed candles"
            )
            self._failing_since = None
            self._failed_polls = 0
        return answer.bars

    def _new(self, bars: list[Bar], tf: int) -> Iterator[Bar]:
        """Bars after the last one delivered, in order, each once; gaps per policy."""
        for bar in sorted(bars, key=lambda b: b.ts):
            ts = int(bar.ts.timestamp())
            if self._last_ts is not None and ts <= self._last_ts:
                continue  # already delivered (Kraken's `since` may include it): never twice
            if self._last_ts is not None and ts - self._last_ts > tf:
                missing = (ts - self._last_ts) // tf - 1
                if self.gap_policy == "fill" and self._last_close is not None:
                    c = self._last_close
                    for k in range(1, missing + 1):
                        t = datetime.fromtimestamp(self._last_ts, UTC) + timedelta(seconds=k * tf)
                        yield Bar(t, c, c, c, c, 0.0)
                self.on_status(
                    f"{missing} interval(s) without a candle before {bar.ts:%Y-%m-%dT%H:%M:%SZ} "
                    f"({'filled with flat bars' if self.gap_policy == 'fill' else 'skipped'}, csv_gap_policy)"
                )
            self._last_ts, self._last_close = ts, bar.close
            yield bar

    def _wait_until(self, when: float) -> None:
        """Sleep until `when`, waking for the stop event at once and for a heartbeat every few seconds."""
        while not self.stop.is_set():
            left = when - time.monotonic()
            if left <= 0:
                return
            self.stop.wait(min(left, self.heartbeat_seconds))
            self.on_wait()
