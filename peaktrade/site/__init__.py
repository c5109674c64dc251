"""The static site: `build` renders it from run directories and the registry; `serve` serves it.

The names below load on first use (PEP 562): a build's worker processes start by importing `site.workers`, and
must not pay for importing the build job (its config, registry and state modules) first.
"""

from importlib import import_module
from typing import Any

_HOME = {"BuildResult": "job", "build": "job", "build_now": "job"}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
