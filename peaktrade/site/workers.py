"""Worker processes and leftovers of `site build`: nothing of a killed build may outlive it.

Workers are spawned, never forked: a forked worker shares the build lock's open file description and would keep
the lock held after the build was killed, so every later build would exit 75. Each worker also dies with the
build (PR_SET_PDEATHSIG on Linux, a parent watchdog elsewhere). Temp files a killed build left are removed by the
next build, under the lock.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor


# What a worker imports before its first leaf: the build (jinja2) and `site.runpage` (pyarrow, numpy).
LEAF_MODULES = ("peaktrade.site.render", "peaktrade.site.runpage")
# The early worker (one, for the pages of changed runs): it may first derive summaries of changed runs in the
# original format, which the gather waits for; it imports pyarrow for that, the page renderer after.
EARLY_MODULES = ("peaktrade.artifacts.summaries",)


def start(workers: int, modules: tuple[str, ...]) -> ProcessPoolExecutor | None:
    """`workers` processes, each importing `modules` at once, not at its first task (which then takes the time
    of its work only); None if none can start here (no POSIX semaphores, no process left): then the build works
    in its own process."""
    pool = None
    try:
        pool = worker_pool(workers)
        for _ in range(workers):
            pool.submit(warm, *modules)
    except (OSError, NotImplementedError):
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        return None
    return pool


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers hold no inherited descriptor (no lock) and die with this process."""
    import multiprocessing  # here: a build that starts no worker (the quiet one) does not pay for importing it
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init, initargs=(os.getpid(),))


def warm(*modules: str) -> int:
    """A worker's first task: import `modules` (and all they import) before the work that needs them arrives."""
    for name in modules:
        import_module(name)
    return os.getpid()


def remove_temps(directory: Path, *, prefix: str | tuple[str, ...] | None = None) -> int:
    """Delete the `.*.tmp` files that a killed build left under `directory`; returns how many.

    Called with the build lock held, so no other build is writing them now. With `prefix` (or prefixes), only
    the files directly in `directory` whose names start with it (the state dir is shared with other jobs)."""
    count = 0
    try:
        walker = [(str(directory), [], os.listdir(directory))] if prefix else os.walk(directory)
        for root, _dirs, files in walker:
            for name in files:
                if name.startswith(prefix or ".") and name.endswith(".tmp"):
                    try:
                        os.unlink(os.path.join(root, name))
                        count += 1
                    except FileNotFoundError:
                        pass
    except FileNotFoundError:
        return count
    return count


def _worker_init(parent: int) -> None:
    """In each worker: die with the build. A killed build must not leave workers behind writing pages."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: SIGKILL when the parent dies
        except (OSError, AttributeError):
            pass  # no prctl: the watchdog below still ends the worker
    if os.getppid() != parent:  # the build died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    # The build waits for its workers to exit. Once multiprocessing has flushed what a worker sent back (its
    # result queue is written synchronously), tearing down its interpreter (pyarrow's, numpy's) only costs that
    # wait: end the process there. Its exit status is then 0 even if its loop failed; the build learns of a
    # failed worker from the pool (BrokenProcessPool), never from the status.
    atexit.register(_exit_now)


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(0)


def _watch_parent(parent: int) -> None:
    """Portable fallback for PR_SET_PDEATHSIG: exit once the build process is gone (we are re-parented)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)
