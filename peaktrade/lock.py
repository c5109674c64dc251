"""Non-blocking job locks (flock): a second cron run of the same job is skipped with exit 75."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from peaktrade.errors import LockHeld


@contextmanager
def job_lock(state_dir: Path, name: str) -> Iterator[Path]:
    """Hold `state_dir/<name>.lock` for the duration; raise `LockHeld` at once if another process has it."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / f"{name}.lock"
    # O_CLOEXEC: a program this process executes never inherits (and so never keeps holding) the lock.
    # A plain fork() still shares it: start workers with a spawn context (see site.workers).
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(f"another `{name}` is running (lock {path} is held); skipped") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)
