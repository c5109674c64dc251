"""Is the writer of a running run still there? One answer for every reader (dead-man's switch).

`writer_state` is what the site, reports, monitor, health checks and alerts show for a run or session whose
recorded status is `running`/`started`:

- ``running``: the heartbeat is fresh (and, on this host, the pid is alive);
- ``dead``: on this host, the recorded pid is gone (or is another process now): known at once;
- ``stale``: the heartbeat is older than the stale threshold (writer hung, or on another host and unknown).

A finished status (`completed`, `failed`, `aborted`) is returned as it is. The pid probe is the only I/O here.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from peaktrade.clock import parse_ts

RUNNING = "running"
STALE = "stale"
DEAD = "dead"
ACTIVE_STATUSES = ("running", "started")
DEAD_REASON = "writer died"

_HOST = socket.gethostname()


def this_host() -> str:
    return _HOST


def process_start_ticks(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (Linux /proc), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
        # the command name (field 2) may contain spaces and parentheses: split after the last ')'
        fields = data[data.rindex(b")") + 2 :].split()
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: Any, start_ticks: Any = None) -> bool | None:
    """True/False for a pid on this host; None when it cannot be told (no permission)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return None
    except OverflowError:
        return False
    if isinstance(start_ticks, int) and not isinstance(start_ticks, bool):
        now_ticks = process_start_ticks(pid)
        if now_ticks is not None and now_ticks != start_ticks:
            return False  # the pid was reused by another process
    return True


def heartbeat_age(meta: Mapping[str, Any], now: datetime) -> float | None:
    """Seconds since the newest sign of life (heartbeat_at, else started_at); None if neither parses."""
    heartbeat = parse_ts(meta.get("heartbeat_at")) or parse_ts(meta.get("started_at"))
    if heartbeat is None:
        return None
    try:
        return (now - heartbeat).total_seconds()
    except OverflowError:
        return None


def writer_state(meta: Mapping[str, Any], now: datetime, stale_seconds: float) -> str:
    """`running`, `stale` or `dead` for an active record (see module doc); other statuses unchanged.

    `meta` is a run's meta.json or a registry record (same field names: status, heartbeat_at, started_at,
    pid, host, pid_start_ticks). Registry records say `started` where runs say `running`.
    """
    status = meta.get("status")
    if not isinstance(status, str) or not status:
        status = RUNNING
    if status not in ACTIVE_STATUSES:
        return status
    if meta.get("host") == _HOST and meta.get("pid") is not None:
        if meta.get("pid") == os.getpid():
            return RUNNING
        alive = pid_alive(meta.get("pid"), meta.get("pid_start_ticks"))
        if alive is False:
            return DEAD
    age = heartbeat_age(meta, now)
    if age is None or age > stale_seconds:
        return STALE
    return RUNNING
