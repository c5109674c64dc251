"""Alerts through apprise: triggers (pure), the gate (pure), delivery (I/O), state in `state/alerts/`.

`peaktrade alerts run` is `peaktrade.alerts.runner.run`; `alerts test` is `send_test`. `outbox_status(state_dir)`
tells `ops health` whether deliveries are failing. Target URLs are secrets: they never appear in output, logs,
state files or pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from peaktrade.config import AlertsConfig


@dataclass(frozen=True)
class Delivery:
    ok: bool
    message: str


def send(cfg: AlertsConfig, title: str, body: str) -> Delivery:
    """Send one message to every target; never raises for a failing target."""
    from peaktrade.alerts.delivery import send_all

    ok, n, described = send_all(cfg, f"{cfg.title_prefix} {title}".strip(), body)
    if n == 0:
        unknown = described.partition("(")[2].rstrip(")")
        return Delivery(
            False,
            "no alert targets configured ([alerts] urls, config_file or $PEAKTRADE_ALERT_URLS)"
            + (f"; {unknown}" if unknown else ""),
        )
    if ok == n:
        return Delivery(True, f"delivered to {n} target(s) ({described})")
    return Delivery(False, f"delivery failed for {n - ok} of {n} target(s) ({described})")


def send_test(cfg: AlertsConfig) -> Delivery:
    return send(cfg, "test message", "This is a test message from `peaktrade alerts test`.")


def outbox_status(state_dir: Path):
    """Undelivered alert messages and the last delivery outcome (`store.OutboxStatus`), for `ops health`."""
    from peaktrade.alerts.store import outbox_status as status

    return status(state_dir)
