"""Errors the repository raises; messages say what happened and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sqlalchemy.exc import DBAPIError as DatabaseRefusal  # anything else the database refused (a constraint, a type)


class NotFoundError(ValueError):
    """A project, image, box or run that does not exist."""


class ConflictError(RuntimeError):
    """A write based on a stale view: someone else changed the row since the caller loaded it.

    Nothing has been written when this is raised; reload and re-apply the edit.
    """


BUSY_MESSAGE = "the database is busy (another process is writing); nothing was saved — try again"


class DatabaseBusyError(RuntimeError):
    """Another process held the database's write lock longer than the busy timeout; nothing was written."""

    def __init__(self, message: str = BUSY_MESSAGE) -> None:
        super().__init__(message)


class DataDirUnavailableError(RuntimeError):
    """The database's folder was removed or made read-only, or its file replaced, under a running process (or
    before a command): nothing was written. `first` is False when this process already reported the same state,
    so a server that polls says it once."""

    def __init__(self, message: str, *, first: bool = True) -> None:
        super().__init__(message)
        self.first = first


class DatabaseMissingError(RuntimeError):
    """No database where one must already be (a command that reads or changes one, a running process whose
    file vanished), or one that must not be created anew (the leftovers of an earlier one lie beside it)."""


def refusal_reason(exc: DatabaseRefusal) -> str:
    """What the database said, first line only: never the SQL statement or its parameters."""
    return str(exc.orig).splitlines()[0] if exc.orig is not None else exc.__class__.__name__


class ImportFormatError(ValueError):
    """A malformed input file; `problems` lists every problem found as "file:line: message"."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = "\n  ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the input, nothing imported:\n  {shown}{more}")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean "x"?)' for a near miss among `known`, else ''."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        return f' (did you mean "{lowered[name.lower()]}"?)'
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""
