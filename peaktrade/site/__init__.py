"""The static site: `build` renders it from run directories and the registry; `serve` serves it.

The names below load on first use (PEP 562): a build's worker processes start by importing `site.workers`, and
must not pay for importing the build job (its config, registry and state modules) first.
"""

from peaktrade.lazy import loader

_HOME = {"BuildResult": "job", "build": "job", "build_now": "job"}

__all__ = sorted(_HOME)

__getattr__ = loader(__name__, _HOME)
