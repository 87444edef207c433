"""Read-side queries for the gallery: one page of a project's images with filters, sort and a count.

Never loads a whole data set: `store.queries.page_images` pages with `LIMIT`/`OFFSET`; per-image
scores come from the newest evaluation of the project's active checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from store.errors import NotFoundError
from store.models import Class, Image, Project
from store.models_runs import Checkpoint, Evaluation, EvaluationImage
from store.queries import page_images as store_page_images

SORTS = ("name", "epg", "confidence_low", "confidence_high")
ANNOTATED = ("any", "annotated", "not annotated")


@dataclass(frozen=True)
class GalleryFilter:
    """What the user picked in Explore; empty strings mean "any"."""

    split: str = ""
    class_name: str = ""
    group: str = ""
    annotated: str = "any"
    wrong_only: bool = False
    sort: str = "name"


@dataclass(frozen=True)
class GalleryRow:
    """One image of a page, with its score under the active model when evaluated."""

    image_id: int
    path: str
    split: str
    group: str | None
    epg: float | None = None
    score: float | None = None
    correct: bool | None = None
    box_count: int = 0
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class GalleryPage:
    """A page of rows plus the total that matched the filter."""

    rows: list[GalleryRow]
    total: int
    page: int
    page_size: int
    notes: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, -(-self.total // self.page_size))


def project_by_name(session: Session, name: str) -> Project:
    """The project called `name`, or NotFoundError naming the known ones."""
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        known = session.scalars(select(Project.name).order_by(Project.name)).all()
        raise NotFoundError(f"no project {name!r}; known projects: {', '.join(known) or 'none (create one)'}")
    return project


def active_checkpoint(session: Session, project_id: int) -> Checkpoint | None:
    """The project's active checkpoint, if any."""
    return session.scalar(select(Checkpoint).where(Checkpoint.project_id == project_id, Checkpoint.active))


def _evaluation_for(session: Session, project_id: int, split: str) -> int | None:
    """The newest evaluation of the active checkpoint (on `split` when one is picked)."""
    checkpoint = active_checkpoint(session, project_id)
    if checkpoint is None:
        return None
    has_rows = exists().where(EvaluationImage.evaluation_id == Evaluation.id)  # not the per-epoch summaries
    query = select(func.max(Evaluation.id)).where(Evaluation.checkpoint_id == checkpoint.id, has_rows)
    if split:
        query = query.where(Evaluation.split == split)
    return session.scalar(query)


def page_images(session: Session, project_id: int, flt: GalleryFilter, page: int, page_size: int) -> GalleryPage:
    """Page `page` (0-based) of the images matching `flt`, and how many matched in all."""
    if flt.sort not in SORTS:
        raise ValueError(f"unknown sort {flt.sort!r}; choose one of {', '.join(SORTS)}")
    notes: list[str] = []
    evaluation_id = _evaluation_for(session, project_id, flt.split)
    sort_by, descending = {"name": ("name", False), "epg": ("epg", False),
                           "confidence_low": ("confidence", False), "confidence_high": ("confidence", True)}[flt.sort]
    if evaluation_id is None and (sort_by != "name" or flt.wrong_only):
        notes.append("The active model has no evaluation yet: run `python app.py evaluate` "
                     "(or fine-tune) to sort by EPG/confidence and to find wrong predictions.")
        sort_by = "name"
    annotated = {"any": None, "annotated": True, "not annotated": False}[flt.annotated]
    common = {"split": flt.split or None, "class_name": flt.class_name or None, "group": flt.group or None,
              "annotated": annotated, "wrong_prediction_eval_id": evaluation_id if flt.wrong_only else None,
              "sort_by": sort_by, "evaluation_id": evaluation_id, "descending": descending}
    rows, total = store_page_images(session, project_id, offset=max(0, page) * page_size, limit=page_size, **common)
    last = max(0, -(-total // page_size) - 1)
    if page > last:  # the filter shrank the result: show its last page
        page = last
        rows, total = store_page_images(session, project_id, offset=page * page_size, limit=page_size, **common)
    return GalleryPage(
        rows=[GalleryRow(r.id, r.path, r.split, r.group, r.epg, r.score, r.correct, r.box_count, r.width, r.height)
              for r in rows],
        total=total, page=max(0, page), page_size=page_size, notes=notes,
    )


def filter_choices(session: Session, project_id: int) -> dict[str, list[str]]:
    """Values for the filter dropdowns: splits, classes and groups present in the project."""
    def distinct(column: object) -> list[str]:
        values = session.scalars(select(column).where(Image.project_id == project_id).distinct()).all()
        return sorted(v for v in values if v)

    classes = session.scalars(select(Class.name).where(Class.project_id == project_id).order_by(Class.index)).all()
    return {"split": distinct(Image.split), "class": list(classes), "group": distinct(Image.group)}


def neighbour_image(session: Session, project_id: int, image_id: int, step: int) -> int | None:
    """The id of the next (`step=1`) or previous (`step=-1`) image by (split, path), or None at the end."""
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
