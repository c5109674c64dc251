"""Run and session ids: generation, validation and safe path joining."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from peaktrade.clock import to_utc
from peaktrade.errors import InvalidId

ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,160}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str) -> str:
    """A file-name-safe form of a symbol, strategy or mode (`BTC/EUR` -> `BTC-EUR`)."""
    return _UNSAFE.sub("-", text.replace("/", "-").replace(" ", "_")).strip("-.") or "x"


def new_run_id(mode: str, strategy: str, symbol: str, timeframe: str, started_at: datetime) -> str:
    """`YYYYMMDD_HHMMSS_<mode>_<strategy>_<SYMBOL-QUOTE>_<timeframe>_<8 hex>`: unique within a second."""
    stamp = to_utc(started_at).strftime("%Y%m%d_%H%M%S")
    parts = [stamp, slug(mode), slug(strategy), slug(symbol), slug(timeframe), os.urandom(4).hex()]
    return "_".join(parts)[:160]


def new_session_id(mode: str, started_at: datetime) -> str:
    """`session_<YYYYmmdd_HHMMSS>_<mode>_<6 hex>`, the seeds' format."""
    stamp = to_utc(started_at).strftime("%Y%m%d_%H%M%S")
    return f"session_{stamp}_{slug(mode)}_{os.urandom(3).hex()}"


def validate_id(value: str, what: str = "run id") -> str:
    """Return `value` if it is a safe id, else raise `InvalidId` naming the rule."""
    if not isinstance(value, str) or not ID_PATTERN.match(value) or value in (".", ".."):
        raise InvalidId(
            f"invalid {what} {value!r}: use 1-160 characters from A-Z a-z 0-9 . _ - (no slashes, no '..')"
        )
    return value


def safe_join(base: Path, ident: str, what: str = "run id") -> Path:
    """`base / ident` after validating `ident`; the resolved path must stay inside `base`."""
    validate_id(ident, what)
    base_resolved = Path(base).resolve()
    path = (base_resolved / ident).resolve()
    if path.parent != base_resolved:
        raise InvalidId(f"{what} {ident!r} resolves outside {base}")
    return Path(base) / ident
