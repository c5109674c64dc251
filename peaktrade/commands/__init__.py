"""CLI command handlers: each takes parsed args, calls library code, prints, returns an exit code."""

from __future__ import annotations

import json
import sys
from typing import Any

from peaktrade import config as _config


def settings(args: Any) -> _config.Settings:
    """Load the config named by `--config` (or found the usual way)."""
    return _config.load(getattr(args, "config", None))


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


def warn(message: str) -> None:
    print(f"peaktrade: warning: {message}", file=sys.stderr)
