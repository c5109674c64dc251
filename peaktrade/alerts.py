"""Alert delivery through apprise. Target URLs are secrets: they never appear in output, logs or files."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from peaktrade.config import AlertsConfig
from peaktrade.errors import ConfigError

ENV_URLS = "PEAKTRADE_ALERT_URLS"


@dataclass(frozen=True)
class Delivery:
    ok: bool
    message: str


def target_urls(cfg: AlertsConfig) -> list[str]:
    """URLs from [alerts].urls plus $PEAKTRADE_ALERT_URLS (comma or whitespace separated)."""
    urls = list(cfg.urls)
    urls += [u for u in re.split(r"[,\s]+", os.environ.get(ENV_URLS, "")) if u]
    return urls


def _apprise(cfg: AlertsConfig):
    import apprise

    # apprise logs delivery errors, sometimes with the target URL: keep that logger quiet.
    log = logging.getLogger("apprise")
    log.handlers[:] = [logging.NullHandler()]
    log.propagate = False
    ap = apprise.Apprise()
    bad = 0
    for url in target_urls(cfg):
        if not ap.add(url):
            bad += 1
    if cfg.config_file:
        path = Path(cfg.config_file)
        if not path.is_file():
            raise ConfigError([f"alerts.config_file: {path} does not exist; create it or clear the key"])
        conf = apprise.AppriseConfig()
        conf.add(str(path.resolve()))
        ap.add(conf)
    return ap, bad


def send(cfg: AlertsConfig, title: str, body: str) -> Delivery:
    """Send one message to every target; never raises for a failing target."""
    ap, bad = _apprise(cfg)
    if len(ap) == 0:
        return Delivery(
            False,
            "no alert targets configured ([alerts] urls, config_file or $PEAKTRADE_ALERT_URLS)"
            + (f"; {bad} URL(s) were not understood by apprise" if bad else ""),
        )
    result = ap.notify(body=body, title=f"{cfg.title_prefix} {title}".strip())
    n = len(ap)
    note = f"; {bad} URL(s) not understood by apprise" if bad else ""
    if result:
        return Delivery(True, f"delivered to {n} target(s){note}")
    return Delivery(False, f"delivery failed for at least one of {n} target(s){note}")


def send_test(cfg: AlertsConfig) -> Delivery:
    return send(cfg, "test message", "This is a test message from `peaktrade alerts test`.")
