"""Executors: what happens to an order once the strategy decided it and the risk limits let it through.

One small protocol, one implementation per mode (no `if mode ==` in the engine):

- `SimulatedExecutor` (shadow, paper): accepts every order; the engine fills it at the next bar's open.
- `ValidatingExecutor` (testnet): sends the order to Kraken's AddOrder with `validate=true` (through
  `ExchangeClient.validate_order`, which cannot send it without) and records the verdict with the order:
  accepted -> filled by the simulation like paper; rejected -> status `rejected`, the exchange's error as the
  reason code (`exchange_rejected: EOrder:Insufficient funds`). An exchange that cannot be reached rejects the
  order too (`exchange_unavailable`): an order the exchange has not checked is never counted as accepted.
"""

from __future__ import annotations

from typing import Protocol

from peaktrade.models import Order


class Executor(Protocol):
    """`submit` sees each order that passed the risk check; it may set `status = "rejected"` with reasons."""

    name: str

    def submit(self, order: Order) -> None: ...


class SimulatedExecutor:
    name = "simulated"

    def submit(self, order: Order) -> None:
        return None


class ValidatingExecutor:
    """Testnet: every order is validated by the exchange (never executed) before the simulation fills it."""

    name = "exchange-validated"

    def __init__(self, client) -> None:  # an ExchangeClient; imported lazily by the caller (ccxt is heavy)
        self.client = client

    def submit(self, order: Order) -> None:
        from peaktrade.exchange import ExchangeRejected, ExchangeUnavailable

        try:
            description = self.client.validate_order(order.symbol, order.side, order.qty)
        except ExchangeRejected as exc:
            order.status = "rejected"
            order.reasons.append(f"exchange_rejected: {exc.code}")
            order.exchange_verdict = f"rejected: {exc.code}"
            return
        except ExchangeUnavailable as exc:
            order.status = "rejected"
            order.reasons.append("exchange_unavailable: order not validated")
            order.exchange_verdict = f"unavailable: {exc}"
            return
        order.exchange_verdict = f"accepted (validate=true): {description}"


def executor_for(mode: str, client) -> Executor:
    """The executor of a session mode: testnet validates with the exchange, every other mode simulates."""
    if mode == "testnet":
        return ValidatingExecutor(client)
    return SimulatedExecutor()
