"""Read queries for the gallery (one filtered, sorted page, filter values, neighbours) and for training."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from store.errors import did_you_mean
from store.models import Box, Class, Image, ImageLabel
from store.models_runs import EvaluationImage
from store.projects import list_classes

SORT_KEYS = ("name", "epg", "confidence")


@dataclass(frozen=True)
class ImagePageRow:
    """One gallery tile: the image, its live box count and (when sorted by an evaluation) its result."""

    id: int
    path: str  #: as stored: relative to the data dir when inside it, else absolute
    width: int  #: pixels of the original file
    height: int
    split: str
    group: str | None  #: e.g. "warm/cue-cool"; None when the project has no groups
    box_count: int  #: live (not deleted) boxes
    # of the evaluation the page is sorted by; None when sorted by name or the image was not evaluated
    epg: float | None = None
    iou: float | None = None
    score: float | None = None  #: the top class's probability (softmax; sigmoid when multi-label)
    correct: bool | None = None
    predicted_index: int | None = None  #: model output index of the top class


@dataclass(frozen=True)
class TrainingExample:
    """An image with its label indices and live boxes `(x0, y0, x1, y1, class_index)` in pixels."""

    image_id: int
    path: str  #: as stored (see `ImagePageRow.path`)
    width: int
    height: int
    group: str | None
    labels: tuple[int, ...]  #: class indices (model output order); one for single-label projects
    boxes: tuple[tuple[float, float, float, float, int], ...]  #: empty when the image has no box


def _class_id(session: Session, project_id: int, class_name: str) -> int:
    rows = {c.name: c.id for c in list_classes(session, project_id)}
    if class_name not in rows:
        raise ValueError(f'no class "{class_name}" in this project{did_you_mean(class_name, rows)}; '
                         f"classes: {', '.join(rows)}")
    return rows[class_name]


def _filters(session: Session, project_id: int, *, split: str | None, class_name: str | None, group: str | None,
             annotated: bool | None, wrong_prediction_eval_id: int | None) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = [Image.project_id == project_id]
    if split:
        filters.append(Image.split == split)
    if group is not None:
        filters.append(Image.group == group)
    if class_name:
        class_id = _class_id(session, project_id, class_name)
        # IN, not a correlated EXISTS: the planner drives from ix_image_label_class (one class's images)
        filters.append(Image.id.in_(select(ImageLabel.image_id).where(ImageLabel.class_id == class_id)))
    if annotated is not None:
        live = exists().where(Box.image_id == Image.id, Box.deleted_at.is_(None))
        filters.append(live if annotated else ~live)
    if wrong_prediction_eval_id is not None:
        result = aliased(EvaluationImage)  # the page query also joins EvaluationImage for sorting
        filters.append(exists().where(result.evaluation_id == wrong_prediction_eval_id,
                                      result.image_id == Image.id, result.correct == false()))
    return filters


def page_images(session: Session, project_id: int, *, split: str | None = None, class_name: str | None = None,
                group: str | None = None, annotated: bool | None = None, wrong_prediction_eval_id: int | None = None,
                sort_by: str = "name", evaluation_id: int | None = None, descending: bool = False,
                offset: int = 0, limit: int = 48) -> tuple[list[ImagePageRow], int]:
    """One page of a project's images and the total matching the filters.

    `sort_by="epg"|"confidence"` sorts on that evaluation's per-image EPG / score (images without a
    result last); `evaluation_id` defaults to `wrong_prediction_eval_id`. Ties break on image id.
    """
    if sort_by not in SORT_KEYS:
        raise ValueError(f"sort_by must be one of {', '.join(SORT_KEYS)}, not {sort_by!r}")
    if limit <= 0 or offset < 0:
        raise ValueError(f"need limit > 0 and offset >= 0, got limit={limit} offset={offset}")
    evaluation_id = evaluation_id if evaluation_id is not None else wrong_prediction_eval_id
    if sort_by != "name" and evaluation_id is None:
        raise ValueError(f"sorting by {sort_by} needs an evaluation: pass evaluation_id")
    filters = _filters(session, project_id, split=split, class_name=class_name, group=group, annotated=annotated,
                       wrong_prediction_eval_id=wrong_prediction_eval_id)
    result_cols: list[Any] = [EvaluationImage.epg, EvaluationImage.iou, EvaluationImage.score,
                              EvaluationImage.correct, EvaluationImage.predicted_index]
    # The total is a separate index-only count: a count(*) OVER () window would make the database
    # materialise and sort every matching row for each page (measured: 85 ms vs 8.5 ms at 100k images).
    total = session.scalar(select(func.count()).select_from(Image).where(*filters)) or 0
    stmt = select(Image.id, Image.path, Image.width, Image.height, Image.split, Image.group, *result_cols)
    stmt = stmt.outerjoin(EvaluationImage, and_(EvaluationImage.image_id == Image.id,
                                                EvaluationImage.evaluation_id == (evaluation_id or -1)))
    if sort_by == "name":
        order = [Image.path.desc() if descending else Image.path.asc(), Image.id]
    else:
        key = EvaluationImage.epg if sort_by == "epg" else EvaluationImage.score
        order = [(key.desc() if descending else key.asc()).nulls_last(), Image.id]
    rows = session.execute(stmt.where(*filters).order_by(*order).offset(offset).limit(limit)).all() if total else []
    counts = _live_box_counts(session, [row.id for row in rows])
    page = [ImagePageRow(r.id, r.path, r.width, r.height, r.split, r.group, counts.get(r.id, 0), r.epg, r.iou,
                         r.score, r.correct, r.predicted_index) for r in rows]
    return page, total


def _live_box_counts(session: Session, image_ids: list[int]) -> dict[int, int]:
    if not image_ids:
        return {}
    stmt = (select(Box.image_id, func.count()).where(Box.image_id.in_(image_ids), Box.deleted_at.is_(None))
            .group_by(Box.image_id))
    return {image_id: n for image_id, n in session.execute(stmt)}


def training_examples(session: Session, project_id: int, split: str) -> list[TrainingExample]:
    """All images of a split with label indices and live boxes, in image-id order (three queries)."""
    in_split = select(Image.id).where(Image.project_id == project_id, Image.split == split)
    labels: dict[int, list[int]] = defaultdict(list)
    label_rows = (select(ImageLabel.image_id, Class.index).join(Class, Class.id == ImageLabel.class_id)
                  .where(ImageLabel.image_id.in_(in_split)).order_by(ImageLabel.image_id, Class.index))
    for image_id, index in session.execute(label_rows):
        labels[image_id].append(index)
    boxes: dict[int, list[tuple[float, float, float, float, int]]] = defaultdict(list)
    box_rows = (select(Box.image_id, Box.x0, Box.y0, Box.x1, Box.y1, Class.index).join(Class, Class.id == Box.class_id)
                .where(Box.image_id.in_(in_split), Box.deleted_at.is_(None)).order_by(Box.image_id, Box.id))
    for image_id, x0, y0, x1, y1, index in session.execute(box_rows):
        boxes[image_id].append((x0, y0, x1, y1, index))
    images = session.execute(select(Image.id, Image.path, Image.width, Image.height, Image.group)
                             .where(Image.project_id == project_id, Image.split == split).order_by(Image.id))
    return [TrainingExample(i, p, w, h, g, tuple(labels.get(i, ())), tuple(boxes.get(i, ())))
            for i, p, w, h, g in images]


def _distinct_values(session: Session, project_id: int, column: InstrumentedAttribute[Any]) -> list[str]:
    values = session.scalars(select(column).where(Image.project_id == project_id).distinct())
    return sorted(v for v in values if v)


def image_splits(session: Session, *, project_id: int) -> list[str]:
    """The splits the project's images are in, sorted."""
    return _distinct_values(session, project_id, Image.split)


def image_groups(session: Session, *, project_id: int) -> list[str]:
    """The project's worst-group analysis groups, sorted (their positions are the group indices)."""
    return _distinct_values(session, project_id, Image.group)


def count_images(session: Session, *, project_id: int, split: str | None = None) -> int:
    """How many images the project has (in `split`, when given)."""
    stmt = select(func.count()).select_from(Image).where(Image.project_id == project_id)
    if split is not None:
        stmt = stmt.where(Image.split == split)
    return session.scalar(stmt) or 0


def split_group_counts(session: Session, *, project_id: int, split: str) -> dict[str | None, int]:
    """How many of the project's `split` images each group has; images without a group count under None."""
    rows = session.execute(select(Image.group, func.count()).where(Image.project_id == project_id,
                                                                    Image.split == split).group_by(Image.group))
    return {group: n for group, n in rows}


def image_splits_by_id(session: Session, *, image_ids: list[int]) -> dict[int, str]:
    """The split of each of `image_ids` (ids that do not exist are left out)."""
    if not image_ids:
        return {}
    rows = session.execute(select(Image.id, Image.split).where(Image.id.in_(image_ids)))
    return {image_id: split for image_id, split in rows}


def neighbour_image(session: Session, *, project_id: int, image_id: int, step: int) -> int | None:
    """The id of the project's next (`step > 0`) or previous image by (split, path), or None at either end."""
    current = session.get(Image, image_id)
    if current is None:
        return None
    key = (current.split, current.path)
    if step > 0:
        where = (Image.split > key[0]) | and_(Image.split == key[0], Image.path > key[1])
        order = (Image.split, Image.path)
    else:
        where = (Image.split < key[0]) | and_(Image.split == key[0], Image.path < key[1])
        order = (Image.split.desc(), Image.path.desc())
    return session.scalar(select(Image.id).where(Image.project_id == project_id, where).order_by(*order).limit(1))


def filter_value_counts(session: Session, *, project_id: int) -> dict[str, dict[str, int]]:
    """How many of the project's images have each split, group and class label, and how many have live
    boxes: `{"split": {value: n}, "group": {...}, "class": {...}, "boxes": {"annotated": n, "not annotated": m}}`.
    Four grouped counts; classes without images count 0."""
    out: dict[str, dict[str, int]] = {}
    for key, column in (("split", Image.split), ("group", Image.group)):
        rows = session.execute(select(column, func.count()).where(Image.project_id == project_id,
                                                                  column.is_not(None)).group_by(column))
        out[key] = {value: n for value, n in rows if value}
    classes = {c.id: c.name for c in list_classes(session, project_id)}
    rows = session.execute(select(ImageLabel.class_id, func.count()).where(ImageLabel.class_id.in_(list(classes)))
                           .group_by(ImageLabel.class_id))
    counted = {class_id: n for class_id, n in rows}
    out["class"] = {name: counted.get(class_id, 0) for class_id, name in classes.items()}
    total = count_images(session, project_id=project_id)
    annotated = session.scalar(select(func.count()).select_from(Image).where(
        Image.project_id == project_id, exists().where(Box.image_id == Image.id, Box.deleted_at.is_(None)))) or 0
    out["boxes"] = {"annotated": annotated, "not annotated": total - annotated}
    return out


def image_ground_truth(session: Session, *, image_id: int) -> tuple[list[str], list[tuple[str, float, float, float,
                                                                                          float]]]:
    """An image's label names (in class order) and live boxes `(label, x0, y0, x1, y1)` in original pixels."""
    labels = session.scalars(select(Class.name).join(ImageLabel, ImageLabel.class_id == Class.id)
                             .where(ImageLabel.image_id == image_id).order_by(Class.index)).all()
    boxes = session.execute(select(Class.name, Box.x0, Box.y0, Box.x1, Box.y1).join(Class, Class.id == Box.class_id)
                            .where(Box.image_id == image_id, Box.deleted_at.is_(None)).order_by(Box.id)).all()
    return list(labels), [(name, x0, y0, x1, y1) for name, x0, y0, x1, y1 in boxes]


def images_by_ids(session: Session, *, project_id: int, image_ids: list[int]) -> list[ImagePageRow]:
    """The project's images with these ids as gallery rows, in the order given (ids of other projects or that
    do not exist are left out)."""
    if not image_ids:
        return []
    rows = session.execute(select(Image.id, Image.path, Image.width, Image.height, Image.split, Image.group)
                           .where(Image.project_id == project_id, Image.id.in_(image_ids))).all()
    counts = _live_box_counts(session, [r.id for r in rows])
    found = {r.id: ImagePageRow(r.id, r.path, r.width, r.height, r.split, r.group, counts.get(r.id, 0))
             for r in rows}
    return [found[i] for i in image_ids if i in found]
