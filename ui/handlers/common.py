"""Helpers every handler shares: turning user-caused failures into `gr.Error`, the current user."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

from services.errors import ConflictError, NotFoundError

log = logging.getLogger(__name__)

LOCAL_USER = "local"


def author_of(request: gr.Request | None) -> str:
    """The logged-in user's name, or "local" when the app runs without login."""
    username = getattr(request, "username", None) if request is not None else None
    return username or LOCAL_USER


@contextmanager
def user_errors(*, conflicts: bool = True) -> Iterator[None]:
    """Re-raise what a user can cause (bad input, missing rows, conflicts) as `gr.Error` with its message.

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

