"""The resilient exchange client and the live feed, against a real Kraken-speaking HTTP server on 127.0.0.1.

ccxt runs its own code path; only its base URLs point at the stub (tests/helpers/kraken_stub.py).
"""

from __future__ import annotations

import base64
import re
import socket
import threading
from dataclasses import replace

import pytest
from helpers.kraken_stub import T0, UNCOMMITTED_VOLUME, KrakenStub

from peaktrade.config import ExchangeConfig
from peaktrade.engine import Engine, EngineConfig
from peaktrade.exchange import (
    Credentials,
    ExchangeClient,
    ExchangeRejected,
    ExchangeUnavailable,
    MissingCredentials,
    credentials,
    probe,
    require_credentials,
)
from peaktrade.execution import ValidatingExecutor
from peaktrade.livefeed import KrakenLiveSource
from peaktrade.models import Order

SECRET = base64.b64encode(b"very-secret-kraken-api-secret-0123456789").decode()
KEY = "PK-test-api-key-abcdef123456"


@pytest.fixture
def stub():
    with KrakenStub(committed=100, slow_seconds=1.5) as s:
        yield s


def config(url: str, **over) -> ExchangeConfig:
    base = dict(
        api_url=url,
        rate_limit_ms=0,
        timeout_seconds=2.0,
        max_retries=3,
        backoff_seconds=0.01,
        rate_limit_backoff_seconds=0.02,
        breaker_failures=3,
        breaker_cooldown_seconds=30.0,
    )
    return replace(ExchangeConfig(), **{**base, **over})


def refused_url() -> str:
    """A local port with nothing listening (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- answers ---------------------------------------------------------------------------------------------------


def test_ohlc_drops_the_uncommitted_candle_and_honours_last(stub: KrakenStub) -> None:
    client = ExchangeClient(config(stub.url))
    answer = client.ohlc("BTC/EUR", "1m")
    assert len(answer.bars) == 100
    assert all(b.volume != UNCOMMITTED_VOLUME for b in answer.bars)
    assert answer.last == T0 + 99 * 60 == int(answer.bars[-1].ts.timestamp())
    newer = client.ohlc("BTC/EUR", "1m", since=answer.last)
    assert newer.bars == []  # only the uncommitted candle came back: nothing new is closed
    stub.commit(2)
    newer = client.ohlc("BTC/EUR", "1m", since=answer.last)
    assert [int(b.ts.timestamp()) for b in newer.bars] == [T0 + 100 * 60, T0 + 101 * 60]


@pytest.mark.parametrize("kind", ["503", "429", "rate_limit", "unavailable", "garbage", "empty", "slow"])
def test_network_trouble_is_retried_until_an_answer(stub: KrakenStub, kind: str) -> None:
    client = ExchangeClient(config(stub.url, timeout_seconds=0.5))
    client.markets()
    stub.fail(kind, times=2)
    before = stub.count("/OHLC")
    answer = client.ohlc("BTC/EUR", "1m")
    assert len(answer.bars) == 100
    assert stub.count("/OHLC") - before == 3
    assert client.breaker.snapshot()["state"] == "closed"


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("garbage", "empty or unparsable answer"),
        ("empty", "empty or unparsable answer"),
        ("503", "exchange unavailable"),
        ("rate_limit", "rate limited"),
        ("slow", "no answer within 0.5 s"),
    ],
)
def test_persistent_trouble_is_one_line_naming_endpoint_and_fix(stub: KrakenStub, kind: str, says: str) -> None:
    client = ExchangeClient(config(stub.url, timeout_seconds=0.5, max_retries=1))
    client.markets()
    stub.fail(kind, times=2)
    with pytest.raises(ExchangeUnavailable) as err:
        client.ohlc("BTC/EUR", "1m")
    text = str(err.value)
    assert "\n" not in text and text.startswith("kraken OHLC: ") and says in text
    assert "; " in text  # ... then what to do


def test_connection_refused_is_unavailable_not_empty() -> None:
    client = ExchangeClient(config(refused_url(), max_retries=1))
    with pytest.raises(ExchangeUnavailable, match=r"kraken AssetPairs: cannot reach http://127\.0\.0\.1:\d+"):
        client.ohlc("BTC/EUR", "1m")


def test_exchange_errors_are_never_retried(stub: KrakenStub) -> None:
    client = ExchangeClient(config(stub.url), Credentials(KEY, SECRET))
    stub.reject_orders = "EOrder:Insufficient funds"
    with pytest.raises(ExchangeRejected) as err:
        client.validate_order("BTC/EUR", "buy", 0.01)
    assert err.value.code == "EOrder:Insufficient funds"
    assert stub.count("/AddOrder") == 1
    with pytest.raises(ExchangeRejected, match="unknown symbol 'DOGE/EUR'"):
        client.ticker_price("DOGE/EUR")


# -- circuit breaker -------------------------------------------------------------------------------------------


class FakeClock:
    """Monotonic time the test moves by hand, so the cool-down needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_fails_fast_then_recovers_through_one_probe(stub: KrakenStub) -> None:
    clock = FakeClock()
    client = ExchangeClient(config(stub.url, max_retries=0, breaker_failures=2), clock=clock)
    client.markets()
    stub.down = True
    for _ in range(2):
        with pytest.raises(ExchangeUnavailable):
            client.ticker_price("BTC/EUR")
    snap = client.breaker.snapshot()
    assert snap["state"] == "open" and snap["consecutive_failures"] == 2
    assert "kraken Ticker: exchange unavailable" in snap["last_error"]
    sent = len(stub.requests)
    with pytest.raises(ExchangeUnavailable, match="circuit breaker open after 2 failed calls"):
        client.ticker_price("BTC/EUR")
    assert len(stub.requests) == sent  # open: nothing went out
    clock.now += 30
    with pytest.raises(ExchangeUnavailable):  # the one probe fails: open again
        client.ticker_price("BTC/EUR")
    assert len(stub.requests) == sent + 1 and client.breaker.snapshot()["state"] == "open"
    stub.down = False
    clock.now += 30
    assert client.ticker_price("BTC/EUR") > 0
    closed = client.breaker.snapshot()
    assert closed["state"] == "closed" and closed["consecutive_failures"] == 0 and closed["retry_in_seconds"] == 0


# -- probe (for ops health) ------------------------------------------------------------------------------------


def test_probe_reports_online_and_unreachable(stub: KrakenStub) -> None:
    ok = probe(config(stub.url), deadline_seconds=3.0)
    assert ok.ok and ok.latency is not None and "online" in ok.message and ok.fix == ""
    down = probe(config(refused_url()), deadline_seconds=3.0)
    assert not down.ok and down.latency is None and "cannot reach" in down.message
    assert "[exchange].api_url" in down.fix
    stub.fail("slow", times=10)
    slow = probe(config(stub.url, timeout_seconds=10.0), deadline_seconds=1.0)
    assert not slow.ok and "no answer within" in slow.message


# -- credentials and testnet validation ------------------------------------------------------------------------


def test_credentials_come_from_the_named_variables_only() -> None:
    cfg = ExchangeConfig()
    assert credentials(cfg, {}) is None
    assert credentials(cfg, {"KRAKEN_API_KEY": KEY}) is None
    found = credentials(cfg, {"KRAKEN_API_KEY": KEY, "KRAKEN_API_SECRET": SECRET})
    assert found == Credentials(KEY, SECRET) and SECRET not in repr(found)
    with pytest.raises(MissingCredentials, match="KRAKEN_API_KEY and KRAKEN_API_SECRET"):
        require_credentials(cfg, {}, why="--mode testnet")


def test_validating_executor_records_the_verdict_and_always_sends_validate(stub: KrakenStub) -> None:
    client = ExchangeClient(config(stub.url), Credentials(KEY, SECRET))
    executor = ValidatingExecutor(client)
    accepted = Order(0, None, "BTC/EUR", "buy", 0.0123456789, 40_000.0, False)
    executor.submit(accepted)
    assert accepted.status == "pending" and accepted.exchange_verdict.startswith("accepted (validate=true)")
    stub.reject_orders = "EGeneral:Invalid arguments:volume"
    rejected = Order(1, None, "BTC/EUR", "sell", 0.01, 40_000.0, False)
    executor.submit(rejected)
    assert rejected.status == "rejected"
    assert rejected.reasons == ["exchange_rejected: EGeneral:Invalid arguments:volume"]
    stub.down = True
    unreachable = Order(2, None, "BTC/EUR", "buy", 0.01, 40_000.0, False)
    impatient = ValidatingExecutor(ExchangeClient(config(stub.url, max_retries=0), Credentials(KEY, SECRET)))
    impatient.submit(unreachable)
    assert unreachable.status == "rejected" and unreachable.reasons == ["exchange_unavailable: order not validated"]
    bodies = [b for p, _q, b in stub.requests if p.endswith("/AddOrder")]
    assert len(bodies) == 2 and all(b.get("validate") == "true" for b in bodies)
    assert stub.unvalidated_orders == []
    assert bodies[0]["volume"] == "0.01234567" and bodies[0]["ordertype"] == "market"


def test_a_rejected_order_is_counted_on_its_decision_bar(stub: KrakenStub) -> None:
    from peaktrade.config import RiskConfig
    from peaktrade.strategies import get

    stub.reject_orders = "EOrder:Insufficient funds"
    client = ExchangeClient(config(stub.url), Credentials(KEY, SECRET))
    engine = Engine(
        EngineConfig("BTC/EUR", 10_000.0, 0.5, 0.0, 0.0, False, RiskConfig()),
        get("ma_crossover").build({"fast_window": 2, "slow_window": 3}),
        ValidatingExecutor(client),
    )
    rows = []
    for bar in client.ohlc("BTC/EUR", "1m").bars:
        row, orders = engine.on_bar(bar, bar.ts)
        rows.append((row, list(orders)))
    decided = [o for _r, orders in rows for o in orders]
    assert decided and all(o.status == "rejected" for o in decided)
    assert sum(r["orders_rejected"] for r, _o in rows) == len(decided) == engine.num_rejected
    assert engine.ledger.position == 0.0


# -- the live feed ---------------------------------------------------------------------------------------------


def collect(source: KrakenLiveSource, into: list, done: threading.Event) -> None:
    for bar in source:
        into.append(bar)
    done.set()


def test_feed_delivers_each_committed_candle_once_in_order_across_outages(stub: KrakenStub) -> None:
    client = ExchangeClient(config(stub.url, max_retries=0, breaker_failures=1000))
    notices: list[str] = []
    beats: list[int] = []
    source = KrakenLiveSource(client, "BTC/EUR", "1m", poll_seconds=0.02, heartbeat_seconds=0.01)
    stop = threading.Event()
    source.bind(stop, lambda: beats.append(1), notices.append)
    warm = source.history(50)
    assert len(warm) == 50 and int(warm[-1].ts.timestamp()) == T0 + 99 * 60
    got: list = []
    done = threading.Event()
    threading.Thread(target=collect, args=(source, got, done), daemon=True).start()

    def polls_after(n: int):
        return lambda s: s.count("/OHLC") >= n

    for step in range(6):
        assert stub.wait_for(polls_after(stub.count("/OHLC") + 2))
        if step == 2:  # an outage during which 4 candles are committed
            stub.down = True
            assert stub.wait_for(polls_after(stub.count("/OHLC") + 5))
            stub.commit(4)
            assert stub.wait_for(polls_after(stub.count("/OHLC") + 2))
            stub.down = False
        else:
            stub.commit(2)  # two committed between two polls
    assert stub.wait_for(lambda s: len(got) >= 14)
    stop.set()
    assert done.wait(10)
    times = [int(b.ts.timestamp()) for b in got]
    assert times == [T0 + (100 + i) * 60 for i in range(14)]  # none lost, none twice, in order
    assert all(b.volume != UNCOMMITTED_VOLUME for b in got)
    assert any(n.startswith("exchange unreachable since") for n in notices)
    assert any(n.startswith("exchange reachable again") and "catching up 4 closed candles" in n for n in notices)
    assert beats  # the heartbeat was kept while waiting


@pytest.mark.parametrize(("policy", "expected"), [("fill", 6), ("skip", 4)])
def test_feed_gaps_follow_the_gap_policy(stub: KrakenStub, policy: str, expected: int) -> None:
    client = ExchangeClient(config(stub.url))
    source = KrakenLiveSource(client, "BTC/EUR", "1m", poll_seconds=0.02, gap_policy=policy)
    notices: list[str] = []
    stop = threading.Event()
    source.bind(stop, lambda: None, notices.append)
    source.history(10)
    stub.skip_indices = {101, 102}  # nothing traded in those minutes
    stub.commit(6)
    got: list = []
    for bar in source:
        got.append(bar)
        if len(got) == expected:
            stop.set()
    times = [int(b.ts.timestamp()) - T0 for b in got]
    if policy == "fill":
        assert times == [6000, 6060, 6120, 6180, 6240, 6300]
        assert got[1].volume == 0.0 and got[1].close == got[0].close == got[1].open
    else:
        assert times == [6000, 6180, 6240, 6300]
    assert any("2 interval(s) without a candle" in n for n in notices)


def test_only_validate_order_can_send_an_order() -> None:
    """Structural: the one call that reaches AddOrder is in `ExchangeClient.validate_order`, which sets validate."""
    from pathlib import Path

    import peaktrade

    # any call of a ccxt method that places or edits an order (snake or camel case, raw or unified)
    pattern = re.compile(r"\.\s*(private_?post_?add_?order\w*|create_?\w*order\w*|edit_?order\w*)\s*\(", re.I)
    hits = {
        str(path.relative_to(Path(peaktrade.__file__).parent)): len(pattern.findall(path.read_text()))
        for path in Path(peaktrade.__file__).parent.rglob("*.py")
        if pattern.search(path.read_text())
    }
    assert hits == {"exchange.py": 1}
    source = (Path(peaktrade.__file__).parent / "exchange.py").read_text()
    send = source[source.index("def send(ex: Any)") : source.index('raw = self._call("AddOrder"')]
    assert 'order["validate"] = "true"' in send and send.index('order["validate"]') < send.index(
        "private_post_addorder"
    )
