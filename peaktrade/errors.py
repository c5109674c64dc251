"""One exception tree. The CLI catches `PeaktradeError` once and exits with its code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75


class PeaktradeError(Exception):
    """Base of every error peaktrade raises on purpose; `exit_code` is what the CLI returns."""

    exit_code = EXIT_FAILURE


class UsageError(PeaktradeError):
    """A bad command line: wrong flag combination, unknown run id, invalid value."""

    exit_code = EXIT_USAGE


class ConfigError(PeaktradeError):
    """One or more problems in a config file; `problems` holds one line each."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class LockHeld(PeaktradeError):
    """Another process holds the lock for this job; the caller should skip, not fail."""

    exit_code = EXIT_LOCKED


class ArtifactError(PeaktradeError):
    """A run directory or registry record is missing, corrupt or not ours."""


class WriteFailed(ArtifactError):
    """A file could not be written (disk full, read-only, permissions); the message names the path and the fix."""

    @classmethod
    def of(cls, exc: OSError, path: object) -> WriteFailed:
        where = exc.filename or path
        reason = exc.strerror or str(exc) or type(exc).__name__
        code = f" (errno {exc.errno})" if exc.errno else ""
        return cls(f"cannot write {where}: {reason}{code}; free disk space there or make it writable")


class RunNotFound(ArtifactError, FileNotFoundError):
    """No run directory (with a meta.json) at the given place."""


class InvalidId(UsageError):
    """An id that is not `^[A-Za-z0-9._-]{1,160}$` or escapes its base directory."""


class SessionError(PeaktradeError):
    """A trading session could not start or run."""


class DataError(SessionError):
    """Market data that cannot be right (a malformed or implausible row, time going backwards, a gap too long):
    names the file, the line and the fix."""
