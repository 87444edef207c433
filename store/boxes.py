"""Box writes with validation, optimistic concurrency (revisions) and an append-only history."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.exc import StaleDataError

from store.errors import ConflictError, NotFoundError
from store.models import BOX_SOURCES, Box, BoxEvent, Class, Image, ImageLabel, Project
from store.models_runs import Checkpoint, EvaluationImage, TrainingRun
from store.projects import class_ids_by_name, get_image
from store.types import utcnow


@dataclass(frozen=True)
class BoxDraft:
    """A box as an editor submits it; `id` is None for a new box."""

    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    id: int | None = None
    source: str = "user"
    attributes: dict[str, Any] = field(default_factory=dict)


def snapshot(box: Box) -> dict[str, Any]:
    """The state of a box as stored in BoxEvent.before/after."""
    return {
        "class_id": box.class_id, "label": box.klass.name if box.klass else None,
        "x0": box.x0, "y0": box.y0, "x1": box.x1, "y1": box.y1,
        "source": box.source, "attributes": dict(box.attributes or {}), "revision": box.revision,
        "deleted": box.deleted_at is not None,
    }


def validate_box(image: Image, x0: float, y0: float, x1: float, y1: float) -> None:
    """ValueError naming the image and the box unless it is non-empty and inside the image."""
    where = f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) on image {image.path} (id {image.id})"
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ValueError(f"{where}: coordinates must be finite numbers")
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"{where} is empty or inverted: need x0 < x1 and y0 < y1")
    if x0 < 0 or y0 < 0 or x1 > image.width or y1 > image.height:
        raise ValueError(f"{where} is outside the {image.width}x{image.height} image")


def _class_id(session: Session, image: Image, label: str, coords: tuple[float, ...]) -> int:
    project = session.get_one(Project, image.project_id)
    what = f"box ({', '.join(f'{v:g}' for v in coords)}) on image {image.path} (id {image.id})"
    return class_ids_by_name(session, project, [label], what=what)[0]


def record_event(session: Session, box: Box, action: str, author: str, before: dict[str, Any] | None,
                 undo_of_id: int | None = None) -> BoxEvent:
    """Append one history row for `box` (already flushed in its new state)."""
    event = BoxEvent(box_id=box.id, image_id=box.image_id, action=action, author=author, at=box.updated,
                     before=before, after=snapshot(box), undo_of_id=undo_of_id)
    session.add(event)
    return event


def _describe_change(box: Box) -> str:
    if box.deleted_at is not None:
        return f"deleted by {box.author or 'someone'} at {box.deleted_at:%Y-%m-%d %H:%M:%S} UTC"
    return f"changed by {box.author or 'someone'} at {box.updated:%Y-%m-%d %H:%M:%S} UTC (now revision {box.revision})"


def get_box(session: Session, box_id: int) -> Box:
    """The box with this id (deleted or not); NotFoundError otherwise."""
    box = session.get(Box, box_id)
    if box is None:
        raise NotFoundError(f"no box with id {box_id}")
    return box


def _check_revision(box: Box, expected_revision: int, *, allow_deleted: bool = False) -> None:
    if box.revision != expected_revision or (box.deleted_at is not None and not allow_deleted):
        raise ConflictError(f"box {box.id} on image {box.image_id} was {_describe_change(box)}; you loaded "
                            f"revision {expected_revision}. Reload the image and apply your edit again.")


def _flush(session: Session, box: Box, expected_revision: int) -> None:
    try:
        session.flush()
    except StaleDataError as exc:  # a concurrent transaction won the race between our check and write
        raise ConflictError(f"box {box.id} was changed by someone else while saving revision "
                            f"{expected_revision}; reload the image and apply your edit again") from exc


def list_boxes(session: Session, image_id: int, *, include_deleted: bool = False) -> list[Box]:
    """Boxes of an image in creation order (live only unless `include_deleted`)."""
    stmt = select(Box).where(Box.image_id == image_id).order_by(Box.id)
    if not include_deleted:
        stmt = stmt.where(Box.deleted_at.is_(None))
    return list(session.scalars(stmt))


def add_box(session: Session, *, image_id: int, label: str, x0: float, y0: float, x1: float, y1: float,
            author: str, source: str = "user", attributes: dict[str, Any] | None = None,
            at: datetime | None = None) -> Box:
    """Create a validated box (revision 1) and its `create` event (`at`: the change's time, default now)."""
    if source not in BOX_SOURCES:
        raise ValueError(f"box source must be one of {', '.join(BOX_SOURCES)}, not {source!r}")
    image = get_image(session, image_id)
    validate_box(image, x0, y0, x1, y1)
    class_id = _class_id(session, image, label, (x0, y0, x1, y1))
    now = at or utcnow()
    box = Box(image_id=image_id, class_id=class_id, x0=x0, y0=y0, x1=x1, y1=y1, source=source, author=author,
              created=now, updated=now, attributes=dict(attributes or {}))
    session.add(box)
    session.flush()
    record_event(session, box, "create", author, None)
    session.flush()
    return box


def update_box(session: Session, box_id: int, expected_revision: int, *, author: str, label: str | None = None,
               x0: float | None = None, y0: float | None = None, x1: float | None = None, y1: float | None = None,
               attributes: dict[str, Any] | None = None, at: datetime | None = None) -> Box:
    """Change a box the caller loaded at `expected_revision`; ConflictError (nothing written) if stale."""
    box = get_box(session, box_id)
    _check_revision(box, expected_revision)
    image = session.get_one(Image, box.image_id)
    coords = (box.x0 if x0 is None else x0, box.y0 if y0 is None else y0,
              box.x1 if x1 is None else x1, box.y1 if y1 is None else y1)
    validate_box(image, *coords)
    class_id = box.class_id if label is None else _class_id(session, image, label, coords)
    klass = session.get_one(Class, class_id)  # before any change: a query here would autoflush a half edit
    before = snapshot(box)
    box.x0, box.y0, box.x1, box.y1 = coords
    box.klass = klass
    if attributes is not None:
        box.attributes = dict(attributes)
    box.author, box.updated = author, at or utcnow()
    _flush(session, box, expected_revision)
    record_event(session, box, "update", author, before)
    session.flush()
    return box


def delete_box(session: Session, box_id: int, expected_revision: int, *, author: str,
               at: datetime | None = None) -> Box:
    """Soft-delete a box (sets deleted_at, appends a `delete` event); ConflictError if stale."""
    box = get_box(session, box_id)
    _check_revision(box, expected_revision)
    before = snapshot(box)
    box.deleted_at = box.updated = at or utcnow()
    box.author = author
    _flush(session, box, expected_revision)
    record_event(session, box, "delete", author, before)
    session.flush()
    return box


def restore_box(session: Session, box_id: int, expected_revision: int, *, author: str) -> Box:
    """Bring back a soft-deleted box; ConflictError if it changed since `expected_revision`."""
    box = get_box(session, box_id)
    _check_revision(box, expected_revision, allow_deleted=True)
    if box.deleted_at is None:
        raise ValueError(f"box {box_id} is not deleted")
    before = snapshot(box)
    box.deleted_at = None
    box.author, box.updated = author, utcnow()
    _flush(session, box, expected_revision)
    record_event(session, box, "restore", author, before)
    session.flush()
    return box


def image_label_names(session: Session, image_id: int) -> list[str]:
    """The image's class labels (names), in class order."""
    stmt = (select(Class.name).join(ImageLabel, ImageLabel.class_id == Class.id)
            .where(ImageLabel.image_id == image_id).order_by(Class.index))
    return list(session.scalars(stmt))


def _needs_box(project_id: int, split: str) -> list[ColumnElement[bool]]:
    live = exists().where(Box.image_id == Image.id, Box.deleted_at.is_(None))
    return [Image.project_id == project_id, Image.split == split, ~live]


def next_unannotated_image(session: Session, *, project_id: int, split: str = "train",
                           after_path: str | None = None) -> int | None:
    """The id of the first image of `split` without a live box, by path, after `after_path` (wrapping round to
    the first one); None when every image of the split has a box."""
    stmt = select(Image.id).where(*_needs_box(project_id, split)).order_by(Image.path, Image.id).limit(1)
    if after_path is not None:
        found = session.scalar(stmt.where(Image.path > after_path))
        if found is not None:
            return found
    return session.scalar(stmt)


@dataclass(frozen=True)
class QueueRow:
    """An image without a box, with the evaluation's verdict on it and the error rate of its group."""

    image_id: int
    path: str
    group: str | None
    correct: bool | None
    epg: float | None
    group_error_rate: float | None


def ranked_unannotated_images(session: Session, *, project_id: int, split: str = "train",
                              results_id: int | None = None, groups_id: int | None = None,
                              limit: int = 200) -> list[QueueRow]:
    """Images of `split` without a live box, where a box helps most first: groups with the highest error rate
    in evaluation `groups_id` first (the cue-conflicting ones), then images that evaluation `results_id` got
    wrong, then the lowest EPG; images without a result last, then by path. Without evaluations: by path."""
    wrong = case((EvaluationImage.correct == false(), 1.0), else_=0.0)
    rates = (select(Image.group.label("name"), (func.sum(wrong) / func.count()).label("rate"))
             .join(EvaluationImage, EvaluationImage.image_id == Image.id)
             .where(EvaluationImage.evaluation_id == (groups_id or -1), Image.project_id == project_id,
                    Image.group.is_not(None))
             .group_by(Image.group).subquery())
    result = aliased(EvaluationImage)
    stmt = (select(Image.id, Image.path, Image.group, result.correct, result.epg, rates.c.rate)
            .outerjoin(result, and_(result.image_id == Image.id, result.evaluation_id == (results_id or -1)))
            .outerjoin(rates, rates.c.name == Image.group)
            .where(*_needs_box(project_id, split))
            .order_by(rates.c.rate.desc().nulls_last(), result.correct.asc().nulls_last(),
                      result.epg.asc().nulls_last(), Image.path, Image.id)
            .limit(limit))
    return [QueueRow(*row) for row in session.execute(stmt)]


def guided_checkpoints(session: Session, project_id: int) -> list[tuple[Checkpoint, TrainingRun]]:
    """Checkpoints of the project written by a training run with `lam > 0` (in the run's config) that started
    while at least one training image of the project had a box: the models guided with boxes. Oldest first."""
    started = func.coalesce(TrainingRun.started, TrainingRun.created)
    had_boxes = (exists().where(Box.image_id == Image.id, Image.project_id == project_id, Image.split == "train",
                                Box.created <= started, or_(Box.deleted_at.is_(None), Box.deleted_at > started)))
    stmt = (select(Checkpoint, TrainingRun).join(TrainingRun, TrainingRun.id == Checkpoint.run_id)
            .where(Checkpoint.project_id == project_id, had_boxes).order_by(Checkpoint.id))
    rows = session.execute(stmt).tuples().all()
    return [(checkpoint, run) for checkpoint, run in rows if float((run.config or {}).get("lam") or 0) > 0]
