"""Secret redaction for anything that is written to artifacts, pages, reports or logs.

Two layers: values under secret-like keys (`api_key`, `token`, `urls`, ...) are replaced whole, and every other
string is scrubbed of credentials it carries inline: `scheme://user:pass@host` and `name=value` pairs whose
name says secret (`?token=`, `&key=`, `secret=`, `signature=`, `--api-key=...`), as in URLs and command lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REDACTED = "***"
_SECRET_KEY = re.compile(r"(key|secret|token|password|passwd|credential|webhook|urls?$)", re.I)
# Credentials embedded in a URL: scheme://user:pass@host (or scheme://token@host).
_URL_CREDS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)
# name=value where the name says secret: query parameters (?token=..&key=..), `signature=`, `--api-key=...`.
_INLINE_SECRET = re.compile(
    r"(?P<name>(?<![A-Za-z0-9_-])(?:[A-Za-z0-9_-]*(?:token|key|secret|signature|passw(?:or)?d|credential|auth)"
    r"[A-Za-z0-9_-]*|sig|pwd|pass)=)(?P<value>[^&#;\s\"']+)",
    re.I,
)


def is_secret_key(key: str) -> bool:
    """True for keys whose values must never be shown (api_key, secret, token, password, urls...)."""
    return bool(_SECRET_KEY.search(key))


def redact_text(text: str) -> str:
    """`text` with inline credentials (URL user:pass@, secret query parameters, name=value) replaced by ***."""
    if "=" not in text and "@" not in text:
        return text
    text = _URL_CREDS.sub(rf"\g<scheme>{REDACTED}@", text)
    return _INLINE_SECRET.sub(rf"\g<name>{REDACTED}", text)


def redact(obj: object) -> object:
    """A deep copy of `obj` with the values of secret-like keys replaced by `***` and inline credentials
    removed from every string (see `redact_text`)."""
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
        return redact_text(obj)
    return obj


def redact_args(args: object) -> list[str]:
    """A command line (`cli_args`) without secrets: inline ones (`--api-key=x`, URLs with tokens) and the
    value after a secret-named flag (`--token x`)."""
    out: list[str] = []
    secret_next = False
    for arg in args if isinstance(args, list | tuple) else []:
        text = str(arg)
        if secret_next and not text.startswith("-"):
            out.append(REDACTED)
        else:
            out.append(redact_text(text))
        secret_next = text.startswith("-") and "=" not in text and is_secret_key(text.lstrip("-").replace("-", "_"))
    return out
