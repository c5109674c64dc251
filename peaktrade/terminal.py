"""Terminal output: `printable` (artifact text made safe to print) and `peaktrade monitor`'s loop.

The monitor composes a frame (pure), writes it in one go, repeats.

Flicker-free: cursor home, every line followed by clear-to-end-of-line, then clear-to-end-of-screen, all in one
write. On a terminal the alternate screen is used and restored on exit (also on Ctrl+C). Not a terminal (a pipe,
a file): no escape codes at all, frames are printed one after another.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from peaktrade import coerce
from peaktrade.errors import ArtifactError

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# C0 controls, DEL and C1 controls: ESC starts window-title (OSC 0), clipboard (OSC 52) and screen-clear
# sequences, and a lone 0x9b is CSI on terminals that honour C1. Bidi overrides reorder what the user reads.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_KEEP_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object, *, keep_newlines: bool = False) -> str:
    """`value` as text that is safe to print on a terminal: every control character is shown escaped.

    `\\x1b]0;pwned\\x07` prints as the eight visible characters `\\x1b]0;pwned\\x07`, never as a window title. Use
    it on every artifact field, path and error message before printing; `keep_newlines` keeps line breaks of
    multi-line messages.
    """
    text = value if isinstance(value, str) else str(value)
    pattern = _CONTROLS_KEEP_NEWLINE if keep_newlines else _CONTROLS
    return pattern.sub(_visible, text)


_JSON_CONTROLS = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # json.dumps escapes C0 itself


def json_text(obj: Any) -> str:
    """`obj` as indented JSON that is safe on a terminal and strict: no NaN/Infinity, control characters escaped."""
    text = json.dumps(coerce.finite(obj), indent=2, sort_keys=True, default=str, ensure_ascii=False, allow_nan=False)
    return _JSON_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


ENTER, LEAVE = "\x1b[?1049h\x1b[?25l", "\x1b[?25h\x1b[?1049l"
HOME, CLEAR_LINE, CLEAR_DOWN = "\x1b[H", "\x1b[K", "\x1b[J"


@dataclass(frozen=True)
class MonitorOptions:
    run_dir: Path
    interval: float
    rows: int
    view: str  # summary | tail | both
    colors: bool
    stale_bars: int = 3
    stale_min_seconds: float = 300.0
    state_dir: Path | None = None  # where summaries of runs in the original format are cached


def fit(line: str, width: int) -> str:
    """Cut `line` to `width` visible characters, keeping escape codes intact (and resetting if cut)."""
    if width <= 0 or len(_ANSI.sub("", line)) <= width:
        return line
    out, visible, i = [], 0, 0
    while i < len(line) and visible < width:
        m = _ANSI.match(line, i)
        if m:
            out.append(m.group())
            i = m.end()
            continue
        out.append(line[i])
        visible += 1
        i += 1
    return "".join(out) + ("\x1b[0m" if _ANSI.search(line) else "")


def compose_frame(opts: MonitorOptions, load: Callable[[], tuple], width: int, refresh_in: float) -> str:
    """One frame as text: header, summary and/or tail, status line. A load error becomes a message."""
    from peaktrade import monitoring  # lazily: `printable` is imported by every command, pyarrow is not

    c = monitoring.Colors if opts.colors else monitoring.NoColors
    lines: list[str] = []
    try:
        snapshot, tail = load()
    except FileNotFoundError as exc:
        lines += [
            f"{c.BOLD}peaktrade monitor{c.RESET}",
            "",
            f"{c.YELLOW}{printable(exc)}{c.RESET}",
            "waiting for data...",
        ]
    except ArtifactError as exc:
        lines += [
            f"{c.BOLD}peaktrade monitor{c.RESET}",
            "",
            f"{c.RED}ERROR: error loading data: {printable(exc)}{c.RESET}",
            "retrying at the next refresh",
        ]
    else:
        state = printable(snapshot.status.upper())
        if snapshot.state == "dead":
            state = f"{c.RED}DEAD (writer process gone){c.RESET}"
        elif snapshot.stale:
            state = f"{c.RED}STALE (writer gone?){c.RESET}"
        elif snapshot.status != "running":
            state = f"{c.CYAN}FINISHED: {printable(snapshot.status)}{c.RESET}"
        lines.append(f"{c.BOLD}peaktrade monitor{c.RESET}  {printable(snapshot.run_id)}  [{state}]")
        lines.append("")
        if opts.view in ("summary", "both"):
            lines += monitoring.render_summary(snapshot, opts.colors).splitlines()
            lines.append("")
        if opts.view in ("tail", "both"):
            lines += monitoring.render_tail(tail, opts.colors).splitlines()
            lines.append("")
    status = f"refresh in {refresh_in:.1f}s | Ctrl+C to exit" if refresh_in else "one frame (--once)"
    lines.append(f"{c.GRAY}[monitor] run_dir={printable(opts.run_dir)} | {status}{c.RESET}")
    return "\n".join(fit(line, width) for line in lines)


def loader(opts: MonitorOptions) -> Callable[[], tuple]:
    from peaktrade import monitoring
    from peaktrade.artifacts.summarycache import SummaryCache

    # Totals of a run in the original format are derived once per event-file fingerprint and kept in state/.
    summaries = SummaryCache(opts.state_dir)

    def load() -> tuple:
        rows = opts.rows if opts.view in ("tail", "both") else 0
        view = monitoring.load_run_view(
            opts.run_dir,
            rows,
            stale_bars=opts.stale_bars,
            stale_min_seconds=opts.stale_min_seconds,
            summaries=summaries,
        )
        summaries.save()
        return view

    return load


def run_monitor(
    opts: MonitorOptions, *, once: bool = False, out: TextIO | None = None, max_frames: int | None = None
) -> int:
    """Refresh until Ctrl+C (exit 0) or after one frame with `once`; `out` defaults to the current stdout."""
    out = out if out is not None else sys.stdout
    tty = out.isatty()
    load = loader(opts)
    frames = 0
    if tty and not once:
        out.write(ENTER)
        out.flush()
    try:
        while True:
            width = shutil.get_terminal_size((120, 40)).columns if tty else 0
            frame = compose_frame(opts, load, width, 0.0 if once else opts.interval)
            if tty and not once:
                out.write(HOME + frame.replace("\n", CLEAR_LINE + "\n") + CLEAR_LINE + CLEAR_DOWN)
            else:
                out.write(frame + "\n" + ("" if once else "\n"))
            out.flush()
            frames += 1
            if once or (max_frames is not None and frames >= max_frames):
                return 0
            time.sleep(opts.interval)
    except KeyboardInterrupt:
        return 0
    finally:
        if tty and not once:
            out.write(LEAVE)
            out.flush()


def colors_wanted(flag_off: bool, config_on: bool, out: TextIO) -> bool:
    """Colours only on a terminal, not with --no-colors, NO_COLOR or use_colors = false."""
    return config_on and not flag_off and "NO_COLOR" not in os.environ and out.isatty()
