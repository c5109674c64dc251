"""Reading files that may be hostile: FIFOs, directories, huge, non-UTF-8, NaN, deeply nested JSON.

Every reader of artifacts and state files goes through here, so one bad file is skipped and named, never fatal.
`read_bytes` never blocks on a FIFO and never reads more than it was told; `load_json` maps NaN/Infinity to
None (browsers reject them) and turns every decoding failure into `UnreadableFile` naming the file and the fix.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

from peaktrade.errors import ArtifactError

MAX_JSON_BYTES = 16 * 1024 * 1024


class UnreadableFile(ArtifactError):
    """A file that exists but cannot be used; the message names it and says what to do."""


def read_bytes(path: Path, max_bytes: int = MAX_JSON_BYTES, *, within: Path | None = None) -> bytes:
    """The bytes of a regular file; `FileNotFoundError` if absent, `UnreadableFile` for anything else odd (with
    `within`: also for a file that is not inside that directory once opened, see `_open_regular_fd`)."""
    fd = _open_regular_fd(path, within)
    try:
        info = os.fstat(fd)
        if info.st_size > max_bytes:
            raise UnreadableFile(f"{path}: {info.st_size} bytes, more than the {max_bytes} allowed; remove it")
        chunks = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise UnreadableFile(f"{path}: grew past the {max_bytes} bytes allowed while reading; remove it")
        return data
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)


def open_regular(path: Path, *, within: Path | None = None) -> BinaryIO:
    """Open a regular file for binary reading (for big files parsed from the handle, such as Parquet).

    `FileNotFoundError` if absent; `UnreadableFile` for a directory, FIFO, socket or device (never blocks), and
    with `within`, for a file outside that directory.
    """
    fd = _open_regular_fd(path, within)
    return os.fdopen(fd, "rb")


def _finite_float(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


_DECODER = json.JSONDecoder(parse_constant=lambda _c: None, parse_float=_finite_float)


def loads(data: bytes | str) -> Any:
    """json.loads where NaN, Infinity and overflowing numbers become None. Raises ValueError/RecursionError.

    One shared decoder: `json.loads` with options builds a new one per call, a tenth of the cost of a short
    line (orders.jsonl, registry records).
    """
    if isinstance(data, bytes | bytearray):
        data = data.decode(json.detect_encoding(data), "surrogatepass")  # as json.loads decodes bytes
    return _DECODER.decode(data)


def load_json(
    path: Path, max_bytes: int = MAX_JSON_BYTES, *, fix: str = "remove or rewrite it", within: Path | None = None
) -> Any:
    """Parse a JSON file tolerantly (see `loads`); `UnreadableFile` names the file, the problem and `fix`."""
    return parse_json(path, read_bytes(path, max_bytes, within=within), fix=fix)


def parse_json(path: Path, data: bytes, *, fix: str = "remove or rewrite it") -> Any:
    """`load_json` of the bytes `data`, read from `path`."""
    try:
        return loads(data)
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path}: not UTF-8 text; {fix}") from None
    except RecursionError:
        raise UnreadableFile(f"{path}: JSON nested too deeply; {fix}") from None
    except ValueError as exc:
        raise UnreadableFile(f"{path}: not valid JSON ({exc}); {fix}") from None


def load_json_object(path: Path, max_bytes: int = MAX_JSON_BYTES, *, fix: str = "remove or rewrite it") -> dict:
    """`load_json` that also insists on a JSON object at the top."""
    data = load_json(path, max_bytes, fix=fix)
    if not isinstance(data, dict):
        raise UnreadableFile(f"{path}: expected a JSON object, got {type(data).__name__}; {fix}")
    return data


def _open_regular_fd(path: Path, within: Path | None = None) -> int:
    """A read-only descriptor of a regular file (opened non-blocking: a FIFO never hangs the reader).

    `FileNotFoundError` if absent; `UnreadableFile` for a directory, FIFO, socket, device or no permission.
    With `within` (a resolved directory), also for a file that, as opened, is not inside it: a file swapped for
    a symlink leading out after the caller's check is caught here, where the check cannot race."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise UnreadableFile(f"{path}: is a directory, expected a file; remove or rename it") from None
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot open ({exc.strerror}); check its permissions") from None
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError as exc:
        os.close(fd)
        raise UnreadableFile(f"{path}: cannot read ({exc.strerror})") from None
    if not regular:
        os.close(fd)
        raise UnreadableFile(f"{path}: not a regular file (a FIFO, socket or device); remove it")
    if within is not None and not _opened_inside(fd, path, within):
        os.close(fd)
        raise UnreadableFile(f"{path}: symlink leading out of {within}; not followed, copy the file in")
    return fd


def _opened_inside(fd: int, path: Path, within: Path) -> bool:
    """Is the file open as `fd` inside `within`? From the descriptor where /proc has it, else from the path.
    Compared as strings (both are absolute and resolved): pathlib would double the cost of reading a record."""
    try:
        where = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        where = os.path.realpath(path)
    return where.startswith(os.path.join(str(within), ""))
