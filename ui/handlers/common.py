"""Helpers every handler shares: turning user-caused failures into `gr.Error`, the current user."""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from services.errors import (
    STORE_ERRORS,
    ConflictError,
    DatabaseBusyError,
    DatabaseRefusal,
    DataDirUnavailableError,
    NotFoundError,
    refusal_reason,
)
from services.settings import MAX_UPLOAD_BYTES

log = logging.getLogger(__name__)

LOCAL_USER = "local"


def uploaded_file(file: Any) -> Path:
    """The path of a file the browser uploaded to this server, or a `gr.Error` saying what to do.

    Only files in Gradio's upload folder count: an API caller cannot name another file on the server
    (a checkpoint or database elsewhere on disk) as if it had uploaded it. Size: at most MAX_UPLOAD_BYTES.
    """
    if not file:
        raise gr.Error("Choose a file to upload first.")
    path = Path(getattr(file, "name", file))
    uploads = Path(get_upload_folder()).resolve()
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise gr.Error(f"The upload {path.name} did not arrive; upload it again.") from None
    if not resolved.is_relative_to(uploads) or not resolved.is_file():
        raise gr.Error(f"{path.name} was not uploaded through this page; upload the file with the file picker.")
    if resolved.stat().st_size > MAX_UPLOAD_BYTES:
        raise gr.Error(f"{path.name} is larger than the upload limit of {MAX_UPLOAD_BYTES / 2**30:.0f} GiB.")
    return resolved


def safe_file_stem(name: str) -> str:
    """`name` usable inside a file name: anything but letters, digits, '.', '_' and '-' becomes '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "project"


def author_of(request: gr.Request | None) -> str:
    """The logged-in user's name, or "local" when the app runs without login."""
    username = getattr(request, "username", None) if request is not None else None
    return username or LOCAL_USER


UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC)  # a file the server could not write


@contextmanager
def user_errors(*, conflicts: bool = True) -> Iterator[None]:
    """Re-raise what a user can cause (bad input, missing rows, conflicts) as `gr.Error` with its message, and the
    database's state (busy, the data folder gone or read-only) as its one line: never SQL text or a traceback.

    With `conflicts=False` a `ConflictError` passes through for the caller to handle (the editor reloads on
    a conflict instead of failing).
    """
    try:
        yield
    except gr.Error:
        raise
    except ConflictError as exc:
        if not conflicts:
            raise
        raise gr.Error(str(exc)) from exc
    except (ValueError, NotFoundError, FileNotFoundError) as exc:
        log.info("user error: %s", exc)
        raise gr.Error(str(exc)) from exc
    except STORE_ERRORS as exc:
        if isinstance(exc, DatabaseBusyError):
            log.warning("%s", exc)
        elif not isinstance(exc, DataDirUnavailableError) or exc.first:  # a polling page reports a lost folder once
            log.error("%s", exc)
        raise gr.Error(str(exc)) from exc
    except DatabaseRefusal as exc:  # anything else the database refused: its reason, without the statement
        log.error("database error: %s", exc)
        reason = refusal_reason(exc)
        raise gr.Error(f"the database refused this ({reason}); nothing was saved — try again") from exc
    except OSError as exc:
        if exc.errno not in UNWRITABLE:
            raise
        log.error("cannot write: %s", exc)
        raise gr.Error(f"the server cannot write {Path(exc.filename or '?').name} ({exc.strerror}); nothing was "
                       "saved — free space or make the data folder writable, then try again") from exc


MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def plain_markdown(text: str) -> str:
    """`text` (which may hold names users typed) as Markdown that shows it literally: every ASCII punctuation mark
    is backslash-escaped, so no `*`, `<tag>` or link in a name is ever rendered (CommonMark escapes)."""
    return MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
