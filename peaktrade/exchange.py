"""The one resilient client for everything that talks to an exchange (Kraken through ccxt).

API (for sessions, `ops`, `signals` and the health check):

- ``ExchangeClient(cfg, credentials=None, *, stop=None)``: builds the ccxt exchange lazily (ccxt is imported on
  the first call, never on the CLI start path); with ``cfg.api_url`` set, ccxt's public and private base URLs
  point there. Calls: ``markets()``, ``has_symbol(symbol)``, ``ohlc(symbol, timeframe, since=None)`` ->
  ``OhlcAnswer`` (committed candles only), ``ticker_price(symbol)``, ``balances()``, ``system_status()`` and
  ``validate_order(symbol, side, qty)``, the only function in peaktrade that sends an order: it always sends
  Kraken's ``validate=true``, so the order is checked by the exchange and never executed.
- Every call retries ``ccxt.NetworkError`` (timeouts, 5xx, rate limits, DDoS protection) and empty or unparsable
  answers with exponential backoff and jitter (``backoff_seconds`` doubling; rate limits wait
  ``rate_limit_backoff_seconds``), at most ``max_retries`` times; ``ccxt.ExchangeError`` (bad symbol, bad key,
  order rejected) is never retried and raises ``ExchangeRejected`` (``.code`` is Kraken's error, e.g.
  ``EOrder:Insufficient funds``). A call that still fails raises ``ExchangeUnavailable``. Both carry one line:
  what failed, on which endpoint, and what to do; no key, secret or signed payload is ever in it.
- ``client.breaker``: a ``CircuitBreaker`` per client. It opens after ``breaker_failures`` consecutive failed
  calls; while open, calls fail at once without a request; after ``breaker_cooldown_seconds`` one probe call goes
  through (half-open): success closes it, failure opens it again. ``client.breaker.snapshot()`` ->
  ``{"state": "closed"|"open"|"half-open", "consecutive_failures": int, "last_error": str|None,
  "retry_in_seconds": float}``.
- ``probe(cfg, deadline_seconds=3.0) -> ProbeResult(ok, latency, message, fix)``: one cheap public request
  (SystemStatus) that returns within ``deadline_seconds`` in total (ccxt import included), never raises for
  network trouble (at most one quick retry); for ``ops health``. ``ok`` is False when unreachable, garbage, or
  not ``online``.
- ``credentials(cfg, environ)`` -> ``Credentials | None`` and ``require_credentials(cfg, environ)`` (raises
  ``MissingCredentials`` naming both environment variables).
"""

from __future__ import annotations

import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from peaktrade.config import ExchangeConfig
from peaktrade.errors import PeaktradeError, UsageError
from peaktrade.models import Bar, timeframe_seconds

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
_KRAKEN_ERROR = re.compile(r"\b([EW][A-Z][A-Za-z]*:[^\"\]\[,]{1,120})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


class ExchangeUnavailable(PeaktradeError):
    """The exchange could not be reached or gave no usable answer (after retries, or the breaker is open)."""


class ExchangeRejected(PeaktradeError):
    """The exchange answered and refused the request (bad symbol, bad key, order rejected); never retried."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


class MissingCredentials(UsageError):
    """A command that needs the exchange account was started without the two credential variables."""


class _BadAnswer(Exception):
    """An empty or unparsable answer (ccxt returns [] or the raw text for a garbage body)."""


@dataclass(frozen=True)
class Credentials:
    key: str
    secret: str

    def __repr__(self) -> str:  # never print the values, not even in a traceback
        return "Credentials(key=***, secret=***)"


def credentials(cfg: ExchangeConfig, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The API key and secret from the environment variables named in `[exchange]`, or None if either is unset."""
    env = os.environ if environ is None else environ
    key, secret = env.get(cfg.api_key_env, "").strip(), env.get(cfg.api_secret_env, "").strip()
    return Credentials(key, secret) if key and secret else None


def require_credentials(cfg: ExchangeConfig, environ: Mapping[str, str] | None = None, *, why: str) -> Credentials:
    """Credentials, or `MissingCredentials` naming both variables (and `[exchange]` for other names)."""
    found = credentials(cfg, environ)
    if found is None:
        raise MissingCredentials(
            f"{why} needs Kraken API credentials: set the environment variables {cfg.api_key_env} and "
            f"{cfg.api_secret_env} (names configurable in [exchange] api_key_env/api_secret_env; never in the TOML)"
        )
    return found


class CircuitBreaker:
    """Consecutive-failure breaker: closed -> open after `failures`; one probe after `cooldown` (half-open)."""

    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic):
        self.failures_to_open = failures
        self.cooldown = cooldown
        self._clock = clock
        self.state = CLOSED
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self._opened_at = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """May a call go out now? An open breaker lets exactly one probe through once the cool-down is over."""
        with self._lock:
            if self.state == CLOSED:
                return True
            if self.state == OPEN and self._clock() - self._opened_at >= self.cooldown:
                self.state = HALF_OPEN
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self.state = CLOSED
            self.consecutive_failures = 0

    def failure(self, message: str) -> None:
        with self._lock:
            self.consecutive_failures += 1
            self.last_error = message
            if self.state == HALF_OPEN or self.consecutive_failures >= self.failures_to_open:
                self.state = OPEN
                self._opened_at = self._clock()

    def retry_in(self) -> float:
        if self.state != OPEN:
            return 0.0
        return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def snapshot(self) -> dict[str, Any]:
        """The breaker's visible state (for health checks and status lines)."""
        with self._lock:
            return {
                "state": self.state,
                "consecutive_failures": self.consecutive_failures,
                "last_error": self.last_error,
                "retry_in_seconds": round(self.retry_in(), 3),
            }


@dataclass(frozen=True)
class OhlcAnswer:
    """Committed candles (oldest first; the uncommitted last row of Kraken's answer is already dropped) and
    Kraken's `last` (the time of the newest committed candle, the `since` for the next poll)."""

    bars: list[Bar]
    last: int


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency: float | None  # seconds of the request, None if there was no answer
    message: str
    fix: str


class ExchangeClient:
    """Resilient access to one exchange account (or none: public data only). See the module docstring."""

    def __init__(
        self,
        cfg: ExchangeConfig,
        creds: Credentials | None = None,
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cfg = cfg
        self._creds = creds
        self.stop = stop  # set: retry waits end at once and no further retry is made (Ctrl+C, SIGTERM)
        self._clock = clock
        self._exchange: Any = None
        self._markets: dict[str, Any] | None = None
        self.breaker = CircuitBreaker(cfg.breaker_failures, cfg.breaker_cooldown_seconds, clock)

    # -- calls ----------------------------------------------------------------------------------------------

    def markets(self) -> dict[str, Any]:
        """ccxt's markets by symbol (loaded once per client: Assets + AssetPairs)."""
        if self._markets is None:
            self._markets = self._call("AssetPairs", lambda ex: ex.load_markets(), _nonempty_dict)
        return self._markets

    def has_symbol(self, symbol: str) -> bool:
        return symbol in self.markets()

    def _market_id(self, symbol: str) -> str:
        market = self.markets().get(symbol)
        if market is None:
            known = ", ".join(sorted(self.markets())[:8])
            raise ExchangeRejected(
                f"{self.cfg.id}: unknown symbol {symbol!r}; use one the exchange lists (e.g. {known})",
                "unknown_symbol",
            )
        return market["id"]

    def ohlc(self, symbol: str, timeframe: str, since: int | None = None) -> OhlcAnswer:
        """Committed candles of `symbol` (after unix second `since` if given; up to 720 without it).

        Kraken's answer always ends with the current, not yet committed candle: it is dropped here, always,
        by position and by `last`, never by the local clock."""
        pair = self._market_id(symbol)
        tf = timeframe_seconds(timeframe)
        params: dict[str, Any] = {"pair": pair, "interval": tf // 60}
        if since is not None:
            params["since"] = int(since)
        raw = self._call("OHLC", lambda ex: ex.public_get_ohlc(params), _ohlc_shape)
        result = raw["result"]
        rows = next(v for k, v in result.items() if k != "last")
        last = int(result["last"])
        bars = []
        for row in rows[:-1]:  # the last row is the uncommitted candle
            bar = _bar(row)
            if int(row[0]) <= last:
                bars.append(bar)
        return OhlcAnswer(bars, last)

    def ticker_price(self, symbol: str) -> float:
        """The last trade price of `symbol` (a positive, finite number, or an error)."""
        self._market_id(symbol)
        ticker = self._call("Ticker", lambda ex: ex.fetch_ticker(symbol), _ticker_shape)
        return float(ticker["last"])

    def balances(self) -> dict[str, float]:
        """Non-zero total balances by currency code (BTC, EUR, ...); needs credentials."""
        self._need_credentials("balances")
        balance = self._call("Balance", lambda ex: ex.fetch_balance(), _balance_shape)
        return {k: float(v) for k, v in sorted(balance["total"].items()) if v}

    def system_status(self) -> str:
        """Kraken's system status: online, maintenance, cancel_only or post_only."""
        raw = self._call("SystemStatus", lambda ex: ex.public_get_systemstatus(), _status_shape)
        return str(raw["result"]["status"])

    def validate_order(self, symbol: str, side: str, qty: float) -> str:
        """Send a market order to AddOrder with `validate=true`: the exchange checks it and never executes it.

        This is the only place in peaktrade that sends an order, and there is no parameter that could drop
        `validate`. Returns the exchange's description; raises `ExchangeRejected` (its error as `.code`) or
        `ExchangeUnavailable`."""
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be buy or sell, got {side!r}")
        self._need_credentials("order validation")
        pair = self._market_id(symbol)

        def send(ex: Any) -> Any:
            volume = ex.amount_to_precision(symbol, qty)
            order = {"pair": pair, "type": side, "ordertype": "market", "volume": volume}
            order["validate"] = "true"  # set last, unconditionally: nothing above can remove it
            return ex.private_post_addorder(order)

        raw = self._call("AddOrder", send, _order_shape)
        return str(raw["result"]["descr"].get("order", ""))

    # -- the resilient core ---------------------------------------------------------------------------------

    def _need_credentials(self, what: str) -> None:
        if self._creds is None:
            raise MissingCredentials(
                f"{self.cfg.id} {what} needs API credentials: "
                f"set {self.cfg.api_key_env} and {self.cfg.api_secret_env}"
            )

    def _ex(self) -> Any:
        if self._exchange is None:
            import ccxt  # heavy (~0.8 s): only when something really talks to the exchange

            options: dict[str, Any] = {
                "enableRateLimit": self.cfg.rate_limit_ms > 0,
                "rateLimit": max(1, int(self.cfg.rate_limit_ms)),
                "timeout": int(self.cfg.timeout_seconds * 1000),
            }
            if self._creds is not None:
                options["apiKey"] = self._creds.key
                options["secret"] = self._creds.secret
            ex = getattr(ccxt, self.cfg.id)(options)
            if self.cfg.api_url:
                base = self.cfg.api_url.rstrip("/")
                ex.urls["api"] = {**ex.urls["api"], "public": base, "private": base}
            self._exchange = ex
        return self._exchange

    def _call(
        self,
        endpoint: str,
        fn: Callable[[Any], Any],
        check: Callable[[Any], bool],
        deadline: float | None = None,
    ) -> Any:
        import ccxt

        if not self.breaker.allow():
            snap = self.breaker.snapshot()
            raise ExchangeUnavailable(
                f"{self.cfg.id} {endpoint}: not tried, circuit breaker open after {snap['consecutive_failures']} "
                f"failed calls (last: {snap['last_error']}); next try in {snap['retry_in_seconds']:.0f} s"
            )
        ex = self._ex()
        attempt = 0
        while True:
            try:
                result = fn(ex)
                if not check(result):
                    raise _BadAnswer()
                self.breaker.success()
                return result
            except ccxt.ExchangeError as exc:
                # The exchange answered: it is reachable, so the breaker counts this as a success.
                self.breaker.success()
                code = _kraken_code(str(exc)) or type(exc).__name__
                raise ExchangeRejected(self._line(endpoint, exc), code) from None
            except (ccxt.BaseError, _BadAnswer, TypeError, KeyError, ValueError, IndexError) as exc:
                # NetworkError & co., and ccxt's parsers choking on a garbage body: all retryable.
                attempt += 1
                wait = self._backoff(exc, attempt)
                now = self._clock()
                out_of_time = deadline is not None and now + wait >= deadline
                if attempt > self.cfg.max_retries or out_of_time or self._stopped():
                    line = self._line(endpoint, exc)
                    self.breaker.failure(line)
                    raise ExchangeUnavailable(line) from None
                self._sleep(wait)

    def _backoff(self, exc: BaseException, attempt: int) -> float:
        import ccxt

        if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
            base = self.cfg.rate_limit_backoff_seconds
        else:
            base = self.cfg.backoff_seconds * 2 ** (attempt - 1)
        return base * (0.5 + random.random())  # jitter: clients that failed together do not retry together

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _sleep(self, seconds: float) -> None:
        if self.stop is not None:
            self.stop.wait(seconds)
        else:
            time.sleep(seconds)

    def _line(self, endpoint: str, exc: BaseException) -> str:
        """One line: what failed, where, what to do. Secrets are scrubbed; the detail is cut short."""
        what, fix = _explain(exc, self.cfg)
        detail = _clean(str(exc), [self._creds.key, self._creds.secret] if self._creds else [])
        detail = f" ({detail})" if detail else ""
        return f"{self.cfg.id} {endpoint}: {what}{detail}; {fix}"


def probe(cfg: ExchangeConfig, deadline_seconds: float = 3.0) -> ProbeResult:
    """One public SystemStatus request, finished within `deadline_seconds` (ccxt import included)."""
    import dataclasses

    started = time.monotonic()
    deadline = started + deadline_seconds
    import ccxt  # noqa: F401  (imported here so that its cost counts against the deadline)

    left = max(0.1, deadline - time.monotonic() - 0.05)
    # One quick retry at most: a health check shares its time budget with other checks.
    tight = dataclasses.replace(
        cfg,
        timeout_seconds=min(cfg.timeout_seconds, left),
        rate_limit_ms=0,
        max_retries=min(cfg.max_retries, 1),
        backoff_seconds=min(cfg.backoff_seconds, 0.2),
        rate_limit_backoff_seconds=min(cfg.rate_limit_backoff_seconds, 0.2),
    )
    client = ExchangeClient(tight)
    sent = time.monotonic()
    try:
        raw = client._call("SystemStatus", lambda ex: ex.public_get_systemstatus(), _status_shape, deadline)
    except ExchangeUnavailable as exc:
        return ProbeResult(False, None, str(exc), _fix_of(str(exc)))
    except ExchangeRejected as exc:
        return ProbeResult(False, None, str(exc), "check [exchange].api_url: the server there is not Kraken's API")
    latency = time.monotonic() - sent
    status = raw["result"]["status"]
    where = cfg.api_url or "api.kraken.com"
    if status != "online":
        return ProbeResult(
            False,
            latency,
            f"{cfg.id} at {where}: system status is {status!r}, not online",
            "trading is limited by the exchange; wait for status online (status.kraken.com)",
        )
    return ProbeResult(True, latency, f"{cfg.id} at {where}: online, answered in {latency * 1000:.0f} ms", "")


# -- answer checks: an empty or garbage answer is an error, not "no data" ------------------------------------


def _nonempty_dict(value: Any) -> bool:
    return isinstance(value, dict) and bool(value)


def _kraken_result(value: Any) -> Any:
    if not isinstance(value, dict) or value.get("error") or not isinstance(value.get("result"), dict):
        return None
    return value["result"]


def _ohlc_shape(value: Any) -> bool:
    result = _kraken_result(value)
    if result is None or "last" not in result:
        return False
    rows = [v for k, v in result.items() if k != "last"]
    if len(rows) != 1 or not isinstance(rows[0], list) or not rows[0]:
        return False  # Kraken always sends at least the uncommitted candle
    try:
        int(result["last"])
        for row in rows[0]:
            _bar(row)
    except (TypeError, ValueError, IndexError):
        return False
    return True


def _ticker_shape(value: Any) -> bool:
    last = value.get("last") if isinstance(value, dict) else None
    return isinstance(last, int | float) and math.isfinite(last) and last > 0


def _balance_shape(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("total"), dict) and isinstance(value.get("info"), dict)


def _status_shape(value: Any) -> bool:
    result = _kraken_result(value)
    return result is not None and isinstance(result.get("status"), str)


def _order_shape(value: Any) -> bool:
    result = _kraken_result(value)
    return result is not None and isinstance(result.get("descr"), dict)


def _bar(row: Any) -> Bar:
    """Kraken's [time, open, high, low, close, vwap, volume, count] as a Bar (ValueError if it is not one)."""
    if not isinstance(row, list) or len(row) < 7:
        raise ValueError("not an OHLC row")
    ts = int(row[0])
    o, h, lo, c, v = (float(row[i]) for i in (1, 2, 3, 4, 6))
    if not all(math.isfinite(x) for x in (o, h, lo, c, v)) or min(o, h, lo, c) <= 0 or v < 0:
        raise ValueError("prices must be positive and finite")
    return Bar(datetime.fromtimestamp(ts, UTC), o, max(h, o, c), min(lo, o, c), c, v)


# -- messages -------------------------------------------------------------------------------------------------


def _explain(exc: BaseException, cfg: ExchangeConfig) -> tuple[str, str]:
    import ccxt

    where = cfg.api_url or "the exchange"
    if isinstance(exc, ccxt.RequestTimeout):
        return (
            f"no answer within {cfg.timeout_seconds:g} s",
            "check the network; raise [exchange].timeout_seconds if the exchange is slow",
        )
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return "rate limited", "poll less often ([exchange].poll_seconds) or share one process per API key"
    if isinstance(exc, ccxt.ExchangeNotAvailable):
        return "exchange unavailable (5xx or maintenance)", "it is retried; see status.kraken.com"
    if isinstance(exc, ccxt.AuthenticationError):
        return (
            "API key refused",
            f"check the key in ${cfg.api_key_env} / ${cfg.api_secret_env} and its permissions (query funds, orders)",
        )
    if isinstance(exc, ccxt.InsufficientFunds | ccxt.InvalidOrder):
        return "order refused", "check size, balance and the pair's minimum order (ordermin)"
    if isinstance(exc, ccxt.BadSymbol):
        return "unknown symbol", "use a symbol the exchange lists, e.g. BTC/EUR"
    if isinstance(exc, ccxt.ExchangeError):
        return "request refused", "see the exchange's error code in parentheses"
    if isinstance(exc, ccxt.NetworkError):
        return f"cannot reach {where}", "check the network and [exchange].api_url"
    return (
        "empty or unparsable answer",
        "check that [exchange].api_url points at Kraken's API (or a proxy that passes answers through)",
    )


def _fix_of(line: str) -> str:
    return line.rsplit("; ", 1)[-1] if "; " in line else "check the network and [exchange].api_url"


def _kraken_code(text: str) -> str | None:
    m = _KRAKEN_ERROR.search(text)
    return m.group(1).strip() if m else None


def _clean(text: str, secrets: list[str]) -> str:
    """First line of an exception text, without control characters or secrets, at most 160 characters."""
    text = _CONTROL.sub(" ", text.strip().splitlines()[0] if text.strip() else "")
    for value in secrets:
        if value:
            text = text.replace(value, "***")
    text = re.sub(r"(?i)(api-sign|api-key|nonce|otp)=[^&\s]+", r"\1=***", text)
    return text[:157] + "..." if len(text) > 160 else text
