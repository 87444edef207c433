"""What the explanation service needs to explain an image, read from the store in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.catalog import ImageInfo, ProjectInfo, image_info, project_info, require_image, require_project
from services.checkpoints import CheckpointInfo, checkpoint_id, checkpoint_info, project_checkpoint
from services.database import Database
from services.explanations import ExplainRequest
from store.db import session_scope


@dataclass(frozen=True)
class ExplainTarget:
    """An image of a project under one of its checkpoints, and the request that explains it."""

    project: ProjectInfo
    image: ImageInfo
    checkpoint: CheckpointInfo
    request: ExplainRequest


def build_request(project: ProjectInfo, image: ImageInfo, checkpoint: CheckpointInfo) -> ExplainRequest:
    """The explanation service's request for `image` under `checkpoint`."""
    return ExplainRequest(image_id=image.id, image_path=image.file, image_size=project.image_size,
                          classes=list(project.classes), multi_label=project.multi_label,
                          checkpoint_path=checkpoint.path, checkpoint_sha=checkpoint.sha256)


def explain_target(db: Database, project: str | None, image_id: int | float | None, *, data_dir: Path,
                   checkpoint: int | str | None = None) -> ExplainTarget:
    """The project's image under its checkpoint `checkpoint` (an id; None: the active one).

    ValueError / NotFoundError (with what to do) for no project, no image, an image of another project, a
    checkpoint of another project, or a project without an active model.
    """
    with session_scope(db) as session:
        row = require_project(session, project)
        image = image_info(require_image(session, row, image_id), data_dir)
        wanted = None if checkpoint in (None, "", "active") else checkpoint_id(checkpoint)
        chosen = checkpoint_info(project_checkpoint(session, row, wanted))
        info = project_info(session, row)
    return ExplainTarget(info, image, chosen, build_request(info, image, chosen))


__all__ = ["ExplainTarget", "build_request", "explain_target"]
