"""What a command that failed says: one line naming the file or setting and what to do, and its exit status.

`app.main` hands every exception a command lets through to `command_failure`; no Python traceback reaches the
terminal (an unexpected one is logged at DEBUG: `--log-level DEBUG` shows it).
"""

from __future__ import annotations

import errno

from services.errors import STORE_ERRORS, ConflictError, DatabaseRefusal, DataDirUnavailableError, refusal_reason

USAGE_ERROR = 2  # the user can fix it: a setting, a file, the data folder, a busy database
INTERNAL_ERROR = 1

OS_HINTS = {
    errno.EACCES: "make it readable/writable for this user or choose another path",
    errno.EPERM: "make it readable/writable for this user or choose another path",
    errno.EROFS: "it is on a read-only file system: choose another path",
    errno.ENOSPC: "the disk is full: free space and try again",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "check the path",
    errno.EISDIR: "give a file, not a folder",
}


def _os_line(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    hint = OS_HINTS.get(exc.errno or 0, "check the path and try again")
    return f"{where}{exc.strerror or exc}; nothing was written — {hint}"


def command_failure(exc: BaseException) -> tuple[int, str | None]:
    """`(exit status, the line to log)` for an exception a command let through; the line is None when it was
    already reported (a lost data folder is reported once)."""
    if isinstance(exc, STORE_ERRORS):
        reported = isinstance(exc, DataDirUnavailableError) and not exc.first
        return USAGE_ERROR, None if reported else str(exc)
    if isinstance(exc, DatabaseRefusal):  # what the database refused, never the SQL statement
        reason = refusal_reason(exc)
        return USAGE_ERROR, f"the database refused this ({reason}); nothing was saved — check --db and try again"
    if isinstance(exc, ValueError | ConflictError):  # bad input, a missing row, a stale edit: its message says what
        lines = str(exc).strip().splitlines() or [exc.__class__.__name__]
        return USAGE_ERROR, lines[0]
    if isinstance(exc, OSError):
        return USAGE_ERROR, _os_line(exc)
    message = (str(exc).strip().splitlines() or ["no message"])[0]
    return INTERNAL_ERROR, (f"unexpected error ({exc.__class__.__name__}: {message}); nothing more was done — run "
                            "again with --log-level DEBUG to see where, and report it")


__all__ = ["INTERNAL_ERROR", "USAGE_ERROR", "command_failure"]
