"""A local HTTP server that speaks enough of Kraken's REST API for ccxt's own code path.

ccxt talks to it unchanged: only its public and private base URLs point here (`[exchange].api_url`). Endpoints:
Assets, AssetPairs, OHLC (committed candles plus one uncommitted candle that changes on every request, and
`last`), Ticker, Time, SystemStatus, Balance, BalanceEx, AddOrder.

Test controls (thread-safe):
- `commit(n)`: n more candles become committed (the uncommitted one moves on);
- `fail(kind, times=1)`: the next `times` requests answer with `kind`: "503", "429", "rate_limit"
  (`EAPI:Rate limit exceeded`), "unavailable" (`EService:Unavailable`), "slow" (sleeps `slow_seconds`), "garbage"
  (HTTP 200, not JSON), "empty" (HTTP 200, empty body);
- `down = True`: every request fails with 503 until set back (an outage of any length);
- `reject_orders = "EOrder:Insufficient funds"`: AddOrder answers with that error;
- `requests`: every request as (path, query dict, body dict); `wait_for(predicate, timeout)` blocks on them.

AddOrder without `validate=true` is answered with an error and recorded in `unvalidated_orders`: a test that
sees anything there has caught an order that would have been executed.

Run standalone (`python tests/helpers/kraken_stub.py`) to get a server on a free port; it prints its URL.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

T0 = 1_735_689_600  # 2025-01-01T00:00:00Z, the open time of the first candle

ASSETS = {
    "XXBT": {"aclass": "currency", "altname": "XBT", "decimals": 10, "display_decimals": 5, "status": "enabled"},
    "XETH": {"aclass": "currency", "altname": "ETH", "decimals": 10, "display_decimals": 5, "status": "enabled"},
    "ZEUR": {"aclass": "currency", "altname": "EUR", "decimals": 4, "display_decimals": 2, "status": "enabled"},
    "ZUSD": {"aclass": "currency", "altname": "USD", "decimals": 4, "display_decimals": 2, "status": "enabled"},
}


def _pair(base: str, quote: str, alt: str, ws: str) -> dict[str, Any]:
    return {
        "altname": alt,
        "wsname": ws,
        "aclass_base": "currency",
        "base": base,
        "aclass_quote": "currency",
        "quote": quote,
        "pair_decimals": 1,
        "cost_decimals": 5,
        "lot_decimals": 8,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": [[0, 0.40]],
        "fees_maker": [[0, 0.25]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": "0.00005",
        "costmin": "0.5",
        "tick_size": "0.1",
        "status": "online",
    }


PAIRS = {
    "XXBTZEUR": _pair("XXBT", "ZEUR", "XBTEUR", "XBT/EUR"),
    "XXBTZUSD": _pair("XXBT", "ZUSD", "XBTUSD", "XBT/USD"),
    "XETHZEUR": _pair("XETH", "ZEUR", "ETHEUR", "ETH/EUR"),
}
BASE_PRICE = {"XXBTZEUR": 40_000.0, "XXBTZUSD": 43_000.0, "XETHZEUR": 2_000.0}
UNCOMMITTED_VOLUME = 999.0  # every uncommitted candle carries this volume, so a test can spot one in a run


def candle(pair: str, index: int, interval_min: int = 1) -> list[Any]:
    """Committed candle number `index` of `pair` in Kraken's row format (deterministic)."""
    base = BASE_PRICE[pair]
    wave = ((index * 37) % 23 - 11) * base * 0.0008 + index * base * 0.0002
    o = base + wave
    c = o + ((index * 13) % 7 - 3) * base * 0.0003
    h, lo = max(o, c) * 1.0005, min(o, c) * 0.9995
    ts = T0 + index * interval_min * 60
    return [ts, f"{o:.1f}", f"{h:.1f}", f"{lo:.1f}", f"{c:.1f}", f"{(o + c) / 2:.1f}", f"{1 + index % 5:.8f}", 7]


class KrakenStub:
    """The server plus its controls; use as a context manager or call `start()`/`stop()`."""

    def __init__(self, committed: int = 100, slow_seconds: float = 3.0):
        self.committed = committed
        self.slow_seconds = slow_seconds
        self.down = False
        self.reject_orders: str | None = None
        self.balances = {"ZEUR": "1500.0000", "XXBT": "0.0500000000", "XETH": "0.0000000000"}
        self.skip_indices: set[int] = set()  # committed candles in which nothing traded: Kraken leaves them out
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.unvalidated_orders: list[dict[str, str]] = []
        self._failures: list[str] = []
        self._tick = 0
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    # -- controls -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> KrakenStub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> KrakenStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def commit(self, n: int = 1) -> None:
        with self._cond:
            self.committed += n
            self._cond.notify_all()

    def fail(self, kind: str, times: int = 1) -> None:
        with self._cond:
            self._failures += [kind] * times

    def count(self, path_part: str) -> int:
        with self._cond:
            return sum(1 for p, _q, _b in self.requests if path_part in p)

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        """Block until `predicate(self)` is true (checked after every request and commit), or the timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
        return True

    # -- the API --------------------------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str], body: dict[str, str]) -> tuple[int, bytes]:
        with self._cond:
            self.requests.append((path, query, body))
            self._cond.notify_all()
            failure = self._failures.pop(0) if self._failures else None
            if self.down:
                failure = "503"
        if failure == "slow":
            time.sleep(self.slow_seconds)
        elif failure == "503":
            return 503, b"<html>503 Service Temporarily Unavailable</html>"
        elif failure == "429":
            return 429, b"Too Many Requests"
        elif failure == "rate_limit":
            return 200, self._json(error=["EAPI:Rate limit exceeded"])
        elif failure == "unavailable":
            return 200, self._json(error=["EService:Unavailable"])
        elif failure == "garbage":
            return 200, b"<html>\x00\xff not json at all"
        elif failure == "empty":
            return 200, b""
        name = path.rsplit("/", 1)[-1]
        handler = getattr(self, f"_api_{name}", None)
        if handler is None:
            return 404, self._json(error=[f"EGeneral:Unknown method {name}"])
        return 200, handler(query, body)

    @staticmethod
    def _json(result: Any = None, error: list[str] | None = None) -> bytes:
        out: dict[str, Any] = {"error": error or []}
        if result is not None:
            out["result"] = result
        return json.dumps(out).encode()

    def _api_Assets(self, q, b) -> bytes:
        return self._json(ASSETS)

    def _api_AssetPairs(self, q, b) -> bytes:
        return self._json(PAIRS)

    def _api_Time(self, q, b) -> bytes:
        now = int(time.time())
        return self._json({"unixtime": now, "rfc1123": time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime())})

    def _api_SystemStatus(self, q, b) -> bytes:
        return self._json({"status": "online", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def _pair_of(self, q: dict[str, str]) -> str | None:
        name = q.get("pair", "")
        for pid, info in PAIRS.items():
            if name in (pid, info["altname"]):
                return pid
        return None

    def _api_OHLC(self, q, b) -> bytes:
        pair = self._pair_of(q)
        if pair is None:
            return self._json(error=["EQuery:Unknown asset pair"])
        interval = int(q.get("interval", "1"))
        since = int(q["since"]) if "since" in q else None
        with self._cond:
            committed = self.committed
            self._tick += 1
            tick = self._tick
        first = max(0, committed - 720)
        rows = [
            candle(pair, i, interval)
            for i in range(first, committed)
            if i not in self.skip_indices and (since is None or T0 + i * interval * 60 > since)
        ]
        # The current interval: always present, and different on every request (trades keep coming in).
        live = candle(pair, committed, interval)
        live[4] = f"{float(live[4]) + tick % 10:.1f}"
        live[2] = f"{max(float(live[2]), float(live[4])):.1f}"
        live[6] = f"{UNCOMMITTED_VOLUME:.8f}"
        rows.append(live)
        last = T0 + (committed - 1) * interval * 60
        return self._json({pair: rows, "last": last})

    def _api_Ticker(self, q, b) -> bytes:
        pair = self._pair_of(q)
        if pair is None:
            return self._json(error=["EQuery:Unknown asset pair"])
        close = candle(pair, self.committed - 1)[4]
        return self._json(
            {
                pair: {
                    "a": [close, "1", "1.000"],
                    "b": [close, "2", "2.000"],
                    "c": [close, "0.001"],
                    "v": ["100.0", "2500.0"],
                    "p": [close, close],
                    "t": [1000, 25000],
                    "l": [close, close],
                    "h": [close, close],
                    "o": close,
                }
            }
        )

    def _private(self, b: dict[str, str]) -> bytes | None:
        if not b.get("nonce"):
            return self._json(error=["EAPI:Invalid nonce"])
        return None

    def _api_Balance(self, q, b) -> bytes:
        return self._private(b) or self._json(dict(self.balances))

    def _api_BalanceEx(self, q, b) -> bytes:
        return self._private(b) or self._json(
            {k: {"balance": v, "hold_trade": "0.0000"} for k, v in self.balances.items()}
        )

    def _api_AddOrder(self, q, b) -> bytes:
        if bad := self._private(b):
            return bad
        if b.get("validate") != "true":
            with self._cond:
                self.unvalidated_orders.append(dict(b))
            return self._json(error=["EGeneral:Permission denied"])
        if self.reject_orders:
            return self._json(error=[self.reject_orders])
        descr = f"{b.get('type')} {b.get('volume')} {b.get('pair')} @ {b.get('ordertype')}"
        return self._json({"descr": {"order": descr}})

    # -- HTTP -----------------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parsed = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                body = {k: v[-1] for k, v in parse_qs(raw).items()}
                status, data = stub.answer(parsed.path, query, body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer to

            do_GET = do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        return Handler


if __name__ == "__main__":
    with KrakenStub() as stub:
        print(stub.url, flush=True)
        threading.Event().wait()
