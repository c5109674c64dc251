"""CLI command handlers: each takes parsed args, calls library code, prints, returns an exit code."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from peaktrade import config as _config


def settings(args: Any) -> _config.Settings:
    """Load the config named by `--config` (or found the usual way)."""
    return _config.load(getattr(args, "config", None))


def print_json(obj: Any) -> None:
    """Strict JSON (NaN/Infinity as null) with control characters escaped, so a terminal shows them as text."""
    from peaktrade.terminal import json_text

    sys.stdout.write(json_text(obj) + "\n")


def out(text: object, *, flush: bool = False) -> None:
    """Print one line whose text may come from artifacts: control characters are shown escaped."""
    from peaktrade.terminal import printable

    print(printable(text, keep_newlines=True), flush=flush)


def warn(message: object) -> None:
    """A warning line on stderr; file contents in `message` cannot drive the terminal."""
    from peaktrade.terminal import printable

    print(f"peaktrade: warning: {printable(message, keep_newlines=True)}", file=sys.stderr)


@contextmanager
def few_gc_pauses() -> Iterator[None]:
    """Around a session's bar loop or a site build: they allocate many short-lived, acyclic objects (bars, rows;
    index entries, page contexts), and the default gen-0 threshold runs the cyclic GC every 700 of them, ~20% of a
    replay and ~0.05 s of a site build. Process-wide tuning belongs to the program, not to library code, so the
    commands that run sessions and build the site set it here and restore it after."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
