"""Write an `ImportPlan` into a project in the caller's transaction: idempotent, deduplicated."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.box_history import MAX_BOXES_PER_SAVE
from store.boxes import record_event
from store.errors import did_you_mean
from store.io.names import check_plan_names, check_project_name
from store.io.plan import (
    ImportPlan,
    ImportSummary,
    PlannedImage,
    Skipped,
    drop_boxes_outside,
    drop_classes_without_images,
    infer_image_size,
    probe_images,
)
from store.io.report import refusal
from store.models import Box, Image, ImageLabel
from store.paths import resolve_image_path, stored_path
from store.projects import ImageInput, add_classes, add_images, find_project, get_or_create_project, list_classes
from store.types import utcnow

BoxKey = tuple[int, float, float, float, float]
Display = Callable[[Path], str]  # how a report names a file: its path in the data set (`ImportPlan.display`)


def apply_plan(session: Session, plan: ImportPlan, *, project_name: str, data_dir: str | os.PathLike[str],
               author: str = "import") -> ImportSummary:
    """Import `plan` into project `project_name` (created when new); flushes, never commits.

    Raises ImportFormatError before any write when the plan has problems (including images above the
    pixel limit, found while probing, and names the database cannot store); ValueError for a project name it
    cannot store. Images already in the project (same sha256) are not added again; their labels and boxes are
    merged without duplicates.
    """
    check_project_name(project_name.strip())  # before the first query: PostgreSQL refuses a NUL even there
    existing = find_project(session, name=project_name.strip())
    _check_box_labels(plan, project_name, [c.name for c in list_classes(session, existing.id)] if existing else [])
    check_plan_names(plan, author=author, data_dir=data_dir)
    if plan.problems:
        raise refusal(plan.problems)
    probe_images(plan)
    if plan.problems:
        raise refusal(plan.problems)
    drop_classes_without_images(plan)
    drop_boxes_outside(plan)
    size, median = infer_image_size([(p.width, p.height) for p in plan.images])
    project, created = get_or_create_project(session, name=project_name, task=plan.task, image_size=size)
    summary = ImportSummary(project=project.name, project_created=created, skipped=plan.skipped, notes=plan.notes,
                            image_size=project.image_size, image_size_inferred=created, median_short_side=median)
    classes = {c.name: c for c in add_classes(session, project_id=project.id, names=plan.classes)}
    planned = _without_path_clashes(session, project.id, plan.images, data_dir, summary, plan.display)
    planned = _without_unlabelled(session, project.id, project.task, planned, summary, plan.display)
    inputs = [ImageInput(stored_path(p.file, data_dir), p.sha256, p.width, p.height, p.split, p.group)
              for p in planned]
    added = add_images(session, project_id=project.id, images=inputs)
    summary.images_added = sum(1 for _, new in added if new)
    summary.images_existing = len(added) - summary.images_added
    image_ids = sorted({image.id for image, _ in added})
    _set_groups(planned, added, summary, plan.display)
    _add_labels(session, project.task, planned, added, {n: c.id for n, c in classes.items()}, image_ids, summary,
                plan.display)
    _add_boxes(session, planned, added, {n: c.id for n, c in classes.items()}, image_ids, author, summary)
    summary.split_counts = _split_counts(planned, added)
    return summary


def _check_box_labels(plan: ImportPlan, project_name: str, project_classes: list[str]) -> None:
    """A problem naming the row/field of every box whose label is neither a class of the data nor of the project."""
    known = [*plan.classes, *(c for c in project_classes if c not in plan.classes)]
    known_set = set(known)
    why: dict[str, str] = {}  # label -> its problem, made once per label (did_you_mean is slow), not once per row
    for image in plan.images:
        for box in image.boxes:
            if box.label in known_set:
                continue
            if box.label not in why:
                why[box.label] = (f"label {box.label!r} is not a class of project {project_name}"
                                  f"{did_you_mean(box.label, known)}; classes: {', '.join(known) or '(none)'}")
            plan.problems.append(f"{box.where}: {why[box.label]}")


def _without_unlabelled(session: Session, project_id: int, task: str, planned: list[PlannedImage],
                        summary: ImportSummary, display: Display) -> list[PlannedImage]:
    """Single-label projects: a new image without a class is left out (and reported); images the project already
    has stay, so their boxes are added."""
    unlabelled = [p for p in planned if not p.labels]
    if task != "single_label" or not unlabelled:
        return planned
    known: set[str] = set()
    shas = sorted({p.sha256 for p in unlabelled})
    for chunk in _chunks(shas):
        known.update(session.scalars(select(Image.sha256).where(Image.project_id == project_id,
                                                                Image.sha256.in_(chunk))))
    kept = []
    for image in planned:
        if image.labels or image.sha256 in known:
            kept.append(image)
        else:
            summary.skipped.append(Skipped(display(image.file), "no class: it has no boxes, and a single-label "
                                                                "import takes an image's class from its boxes"))
    return kept


def _set_groups(planned: list[PlannedImage], added: list[tuple[Image, bool]], summary: ImportSummary,
                display: Display) -> None:
    """Give images the project already had the group the import names, when they had none (never overwritten)."""
    for plan, (image, new) in zip(planned, added):
        if new or not plan.group or image.group == plan.group:
            continue
        if image.group is None:
            image.group = plan.group
            summary.groups_set += 1
        else:
            summary.skipped.append(Skipped(display(plan.file), f"group {plan.group!r} not set: the image is "
                                                               f"already in group {image.group!r}"))


def _split_counts(planned: list[PlannedImage], added: list[tuple[Image, bool]]) -> dict[str, dict[str, int]]:
    """split -> class -> images of this import (the split the project holds them in); identical files count once,
    as the project stores them once (10,000 copies of one PNG were reported as 10,000 images, issue 24)."""
    counts: dict[str, dict[str, int]] = {}
    seen: set[tuple[int, str]] = set()
    for plan, (image, _) in zip(planned, added):
        per_class = counts.setdefault(image.split, {})
        for label in plan.labels or ["(no label)"]:
            if (image.id, label) not in seen:
                seen.add((image.id, label))
                per_class[label] = per_class.get(label, 0) + 1
    return counts


def _without_path_clashes(session: Session, project_id: int, images: list[PlannedImage],
                          data_dir: str | os.PathLike[str], summary: ImportSummary,
                          display: Display) -> list[PlannedImage]:
    """Drop files whose stored path is taken by a different image (a changed file is never replaced)."""
    known = dict(session.execute(select(Image.path, Image.sha256).where(Image.project_id == project_id)).all())
    kept = []
    for image in images:
        path = stored_path(image.file, data_dir)
        if path in known and known[path] != image.sha256:
            summary.skipped.append(Skipped(display(image.file), "the project already has a different image at "
                                                                "this path (the file changed since the last import)"))
            continue
        known[path] = image.sha256
        kept.append(image)
    return kept


def _chunks(ids: list[Any], size: int = 500) -> list[list[Any]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _add_labels(session: Session, task: str, planned: list[PlannedImage], added: list[tuple[Image, bool]],
                class_ids: dict[str, int], image_ids: list[int], summary: ImportSummary, display: Display) -> None:
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
                summary.skipped.append(Skipped(display(plan.file), f'label "{label}" not added: the image '
                                                                   "already has another label in this single-label "
                                                                   "project"))
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
    live = Counter(image_id for image_id, _ in existing)
    over: list[str] = []
    for plan, (image, _) in zip(planned, added):
        for item in plan.boxes:
            key: BoxKey = (class_ids[item.label], item.x0, item.y0, item.x1, item.y1)
            if (image.id, key) in existing:
                summary.boxes_existing += 1
                continue
            existing.add((image.id, key))
            live[image.id] += 1
            attributes: dict[str, Any] = dict(item.attributes)
            boxes.append(Box(image_id=image.id, class_id=key[0], x0=item.x0, y0=item.y0, x1=item.x1, y1=item.y1,
                             source="imported", author=author, created=now, updated=now, attributes=attributes))
        if live[image.id] > MAX_BOXES_PER_SAVE:  # every way in obeys the limit an Annotate save has (issue 24)
            over.append(f"{plan.file.name}: {live[image.id]:,} boxes on one image (those it has and those imported) "
                        f"is more than the limit of {MAX_BOXES_PER_SAVE} boxes per image; split or thin them")
    if over:
        raise refusal(over)  # raised before the boxes are added: the caller's transaction rolls back
    session.add_all(boxes)
    session.flush()
    for box in boxes:
        record_event(session, box, "create", author, None)
    session.flush()
    summary.boxes_added = len(boxes)


def files_in_use(session: Session, folder: str | os.PathLike[str], data_dir: str | os.PathLike[str]) -> set[Path]:
    """The files under `folder` that some project's image refers to (as `resolve_image_path` finds them)."""
    prefix = stored_path(folder, data_dir).rstrip("/") + "/"
    paths = session.scalars(select(Image.path).where(Image.path.startswith(prefix, autoescape=True)))
    return {resolve_image_path(path, data_dir) for path in paths}
