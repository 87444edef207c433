"""Errors a user can cause, as the services raise them; the UI turns them into messages.

Besides these, a plain `ValueError` means bad input (its message says what to do). `NotFoundError` is a
`ValueError`; `ConflictError` means someone else changed the data since the caller loaded it (nothing was
written: reload and apply the edit again).
"""

from __future__ import annotations

from store.errors import ConflictError, ImportFormatError, NotFoundError

__all__ = ["ConflictError", "ImportFormatError", "NotFoundError"]
