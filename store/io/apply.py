"""Write an `ImportPlan` into a project in the caller's transaction: idempotent, deduplicated."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.boxes import record_event
from store.errors import ImportFormatError
from store.io.plan import (
    ImportPlan,
    ImportSummary,
    PlannedImage,
    Skipped,
    drop_boxes_outside,
    drop_classes_without_images,
    probe_images,
)
from store.models import Box, Image, ImageLabel
from store.paths import stored_path
from store.projects import ImageInput, add_classes, add_images, get_or_create_project
from store.types import utcnow

BoxKey = tuple[int, float, float, float, float]


def apply_plan(session: Session, plan: ImportPlan, *, project_name: str, data_dir: str | os.PathLike[str],
               author: str = "import") -> ImportSummary:
    """Import `plan` into project `project_name` (created when new); flushes, never commits.

    Raises ImportFormatError before any write when the plan has problems (including images above the
    pixel limit, found while probing). Images already in the project (same sha256) are not added again;
    their labels and boxes are merged without duplicates.
    """
    if plan.problems:
        raise ImportFormatError(plan.problems)
    probe_images(plan)
    if plan.problems:
        raise ImportFormatError(plan.problems)
    drop_classes_without_images(plan)
    drop_boxes_outside(plan)
    project, created = get_or_create_project(session, name=project_name, task=plan.task)
    summary = ImportSummary(project=project.name, project_created=created, skipped=plan.skipped)
    classes = {c.name: c for c in add_classes(session, project_id=project.id, names=plan.classes)}
    planned = _without_path_clashes(session, project.id, plan.images, data_dir, summary)
    inputs = [ImageInput(stored_path(p.file, data_dir), p.sha256, p.width, p.height, p.split, p.group)
              for p in planned]
    added = add_images(session, project_id=project.id, images=inputs)
    summary.images_added = sum(1 for _, new in added if new)
    summary.images_existing = len(added) - summary.images_added
    image_ids = sorted({image.id for image, _ in added})
    _add_labels(session, project.task, planned, added, {n: c.id for n, c in classes.items()}, image_ids, summary)
    _add_boxes(session, planned, added, {n: c.id for n, c in classes.items()}, image_ids, author, summary)
    return summary


def _without_path_clashes(session: Session, project_id: int, images: list[PlannedImage],
                          data_dir: str | os.PathLike[str], summary: ImportSummary) -> list[PlannedImage]:
    """Drop files whose stored path is taken by a different image (a changed file is never replaced)."""
    known = dict(session.execute(select(Image.path, Image.sha256).where(Image.project_id == project_id)).all())
    kept = []
    for image in images:
        path = stored_path(image.file, data_dir)
        if path in known and known[path] != image.sha256:
            summary.skipped.append(Skipped(str(image.file), "the project already has a different image at this "
                                                            "path (the file changed since the last import)"))
            continue
        known[path] = image.sha256
        kept.append(image)
    return kept


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _add_labels(session: Session, task: str, planned: list[PlannedImage], added: list[tuple[Image, bool]],
                class_ids: dict[str, int], image_ids: list[int], summary: ImportSummary) -> None:
    current: dict[int, set[int]] = {}
    for chunk in _chunks(image_ids):
        for image_id, class_id in session.execute(select(ImageLabel.image_id, ImageLabel.class_id)
                                                  .where(ImageLabel.image_id.in_(chunk))):
            current.setdefault(image_id, set()).add(class_id)
    rows = []
    for plan, (image, _) in zip(planned, added):
        have = current.setdefault(image.id, set())
        for label in plan.labels:
            class_id = class_ids[label]
            if class_id in have:
                continue
            if task == "single_label" and have:
                summary.skipped.append(Skipped(str(plan.file), f'label "{label}" not added: the image already '
                                                               "has another label in this single-label project"))
                continue
            have.add(class_id)
            rows.append(ImageLabel(image_id=image.id, class_id=class_id))
    session.add_all(rows)
    session.flush()
    summary.labels_added = len(rows)


def _add_boxes(session: Session, planned: list[PlannedImage], added: list[tuple[Image, bool]],
               class_ids: dict[str, int], image_ids: list[int], author: str, summary: ImportSummary) -> None:
    existing: set[tuple[int, BoxKey]] = set()
    for chunk in _chunks(image_ids):
        stmt = select(Box.image_id, Box.class_id, Box.x0, Box.y0, Box.x1, Box.y1).where(
            Box.image_id.in_(chunk), Box.deleted_at.is_(None))
        existing.update((row[0], tuple(row[1:])) for row in session.execute(stmt))  # type: ignore[misc]
    now = utcnow()
    boxes: list[Box] = []
    for plan, (image, _) in zip(planned, added):
        for item in plan.boxes:
            key: BoxKey = (class_ids[item.label], item.x0, item.y0, item.x1, item.y1)
            if (image.id, key) in existing:
                summary.boxes_existing += 1
                continue
            existing.add((image.id, key))
            attributes: dict[str, Any] = dict(item.attributes)
            boxes.append(Box(image_id=image.id, class_id=key[0], x0=item.x0, y0=item.y0, x1=item.x1, y1=item.y1,
                             source="imported", author=author, created=now, updated=now, attributes=attributes))
    session.add_all(boxes)
    session.flush()
    for box in boxes:
        record_event(session, box, "create", author, None)
    session.flush()
    summary.boxes_added = len(boxes)
