"""Delivery through apprise: the only module here that talks to the network.

Target URLs are secrets. A target is known by its service name (`json`, `mailto`, `tgram`) and a short hash of
its URL, never by the URL; apprise's own logger is silenced because it can print URLs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peaktrade.config import AlertsConfig
from peaktrade.errors import ConfigError

ENV_URLS = "PEAKTRADE_ALERT_URLS"


@dataclass(frozen=True)
class Target:
    id: str  # sha256 of the URL, shortened: stable across runs, reveals nothing
    name: str  # the service scheme, e.g. "json"
    tags: frozenset[str]
    server: Any  # the apprise plugin object


def target_urls(cfg: AlertsConfig) -> list[str]:
    """URLs from [alerts].urls plus $PEAKTRADE_ALERT_URLS (comma or whitespace separated)."""
    urls = list(cfg.urls)
    urls += [u for u in re.split(r"[,\s]+", os.environ.get(ENV_URLS, "")) if u]
    return urls


def silence_apprise() -> None:
    """apprise logs delivery errors, sometimes with the target URL: keep that logger quiet."""
    log = logging.getLogger("apprise")
    log.handlers[:] = [logging.NullHandler()]
    log.propagate = False
    log.setLevel(logging.CRITICAL + 1)


def load_targets(cfg: AlertsConfig) -> tuple[list[Target], int]:
    """Every configured target, and how many URLs apprise did not understand (counted, never shown)."""
    import apprise

    silence_apprise()
    ap = apprise.Apprise()
    bad = 0
    for url in target_urls(cfg):
        if not ap.add(url, tag=cfg.urls_tag or None):
            bad += 1
    if cfg.config_file:
        path = Path(cfg.config_file)
        if not path.is_file():
            raise ConfigError(
                [f"alerts.config_file = {str(path)!r}: the file does not exist; create it or clear the key"]
            )
        conf = apprise.AppriseConfig()
        if not conf.add(str(path.resolve())):
            bad += 1
        ap.add(conf)
    targets = []
    for server in ap:
        url = server.url(privacy=False)
        protocol = server.secure_protocol if getattr(server, "secure", False) else server.protocol
        if isinstance(protocol, tuple | list):
            protocol = protocol[0] if protocol else None
        name = str(protocol or server.service_name or "target")
        targets.append(
            Target(
                id=hashlib.sha256(url.encode()).hexdigest()[:16],
                name=name,
                tags=frozenset(str(t) for t in server.tags),
                server=server,
            )
        )
    return targets, bad


def describe(targets: list[Target], bad: int = 0) -> str:
    """'2 targets: json, mailto' (service names only)."""
    names = Counter(t.name for t in targets)
    listed = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in sorted(names.items()))
    text = f"{len(targets)} target{'s' if len(targets) != 1 else ''}" + (f": {listed}" if listed else "")
    if bad:
        text += f" ({bad} URL(s) not understood by apprise)"
    return text


def deliver(target: Target, title: str, body: str, notify_type: str, attach: list[Path]) -> bool:
    """Send one message to one target; False on any failure (apprise does not raise for a down target)."""
    import apprise

    silence_apprise()
    ap = apprise.Apprise()
    ap.add(target.server)
    files = [str(p) for p in attach if p.is_file()]
    try:
        result = ap.notify(
            body=body,
            title=title,
            notify_type=apprise.NotifyType(notify_type),
            body_format=apprise.NotifyFormat.MARKDOWN,
            attach=files or None,
        )
    except Exception:  # a plugin bug must not sink the run: the message stays in the outbox
        return False
    return bool(result)


def send_all(cfg: AlertsConfig, title: str, body: str) -> tuple[int, int, str]:
    """One message to every target (for `alerts test`): (delivered, targets, description)."""
    targets, bad = load_targets(cfg)
    ok = sum(deliver(t, title, body, "info", []) for t in targets)
    return ok, len(targets), describe(targets, bad)
