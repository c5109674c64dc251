"""Crash-safe file writes: temp file in the same directory, fsync, os.replace, fsync the directory.

A reader therefore only ever sees the old or the new complete file, never a torn one.
"""

from __future__ import annotations

import os
from pathlib import Path

from peaktrade.coerce import strict_json


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Atomically replace `path` with `data`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # os.open, not open(): no buffered file object per file (a cold site build writes 27,000 of them)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def write_text(path: Path, text: str, *, fsync: bool = True) -> None:
    write_bytes(path, text.encode("utf-8"), fsync=fsync)


def write_json(path: Path, obj: object, *, fsync: bool = True, indent: int | None = 2) -> None:
    """Atomically write `obj` as UTF-8 strict JSON (NaN and infinity as null; keys sorted, so output is
    deterministic). A lone surrogate (a file name that is not UTF-8, a `\\ud800` escape read from a file) is
    written as its JSON escape, which reads back as the same text."""
    text = strict_json(obj, indent=indent, sort_keys=True, ensure_ascii=False)
    write_bytes(path, (text + "\n").encode("utf-8", "backslashreplace"), fsync=fsync)


def remove_stale_temps(directory: Path) -> int:
    """Delete `.*.tmp` files a crashed writer left behind; returns how many."""
    count = 0
    for entry in os.scandir(directory):
        if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
            os.unlink(entry.path)
            count += 1
    return count
