"""Helpers every handler shares: turning user-caused failures into `gr.Error`, the current user."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr
from sqlalchemy.orm import Session

from store.db import session_scope
from store.errors import ConflictError, NotFoundError
from store.models import Image, Project
from ui.data.images import project_by_name
from ui.deps import AppDeps

log = logging.getLogger(__name__)

LOCAL_USER = "local"


def author_of(request: gr.Request | None) -> str:
    """The logged-in user's name, or "local" when the app runs without login."""
    username = getattr(request, "username", None) if request is not None else None
    return username or LOCAL_USER


@contextmanager
def user_errors(*, conflicts: bool = False) -> Iterator[None]:
    """Re-raise what a user can cause (bad input, missing rows) as `gr.Error` with its message.

    `ConflictError` becomes a `gr.Error` only with `conflicts=True`; otherwise the caller handles it
    (the editor reloads on a conflict instead of failing).
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


@contextmanager
def transaction(deps: AppDeps) -> Iterator[Session]:
    """One database transaction whose user-caused failures surface as `gr.Error` (and roll back)."""
    with user_errors(conflicts=True), session_scope(deps.engine) as session:
        yield session


def require_project(session: Session, name: str | None) -> Project:
    """The named project, or a `gr.Error` telling the user to pick one."""
    if not name:
        raise gr.Error("Pick a project first (top of the page).")
    return project_by_name(session, name)


def require_image(session: Session, project: Project, image_id: int | None) -> Image:
    """The image of `project` with `image_id`, or a `gr.Error` telling the user to select one."""
    if image_id is None or int(image_id) <= 0:
        raise gr.Error("Select an image in Explore first (click a tile of the gallery).")
    image = session.get(Image, int(image_id))
    if image is None or image.project_id != project.id:
        raise gr.Error(f"Image {image_id} is not part of project {project.name!r}; select one in Explore.")
    return image
