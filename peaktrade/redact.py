"""Secret redaction for anything that is written to artifacts, pages, reports or logs."""

from __future__ import annotations

import re
from collections.abc import Mapping

REDACTED = "***"
_SECRET_KEY = re.compile(r"(key|secret|token|password|passwd|credential|webhook|urls?$)", re.I)
# Credentials embedded in a URL: scheme://user:pass@host or ?token=...
_URL_CREDS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)


def is_secret_key(key: str) -> bool:
    """True for keys whose values must never be shown (api_key, secret, token, password, urls...)."""
    return bool(_SECRET_KEY.search(key))


def redact(obj: object) -> object:
    """A deep copy of `obj` with the values of secret-like keys replaced by `***`."""
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if is_secret_key(str(key)) and value not in (None, "", [], {}):
                out[key] = REDACTED
            else:
                out[key] = redact(value)
        return out
    if isinstance(obj, list | tuple):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return _URL_CREDS.sub(r"\g<scheme>***@", obj)
    return obj


def scrub(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of each known secret value in `text` (for error messages and logs)."""
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, REDACTED)
    return text
