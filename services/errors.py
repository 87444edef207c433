"""Errors a user can cause, as the services raise them; the UI turns them into messages.

Besides these, a plain `ValueError` means bad input (its message says what to do). `NotFoundError` is a
`ValueError`; `ConflictError` means someone else changed the data since the caller loaded it (nothing was
written: reload and apply the edit again).

The database's state, whatever the input: `DatabaseBusyError` (another process held the write lock past the
busy timeout: try again), `DataDirUnavailableError` (the data folder is gone or read-only, or the database file
was replaced, under a running process: restore it and restart) and `DatabaseMissingError` (no database where one
must be, or one that must not be made anew). Nothing was written when any of them is raised; `STORE_ERRORS`
lists them for handlers that turn them into one line.
"""

from __future__ import annotations

from store.errors import (
    BUSY_MESSAGE,
    ConflictError,
    DatabaseBusyError,
    DatabaseMissingError,
    DatabaseRefusal,
    DataDirUnavailableError,
    ImportFormatError,
    NotFoundError,
    refusal_reason,
)

STORE_ERRORS = (DatabaseBusyError, DataDirUnavailableError, DatabaseMissingError)

__all__ = ["BUSY_MESSAGE", "STORE_ERRORS", "ConflictError", "DataDirUnavailableError", "DatabaseBusyError",
           "DatabaseMissingError", "DatabaseRefusal", "ImportFormatError", "NotFoundError", "refusal_reason"]
