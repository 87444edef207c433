"""Projects and their images as the app shows them: names, classes, filter values, gallery pages, neighbours.

Every public function opens and owns one transaction and returns frozen dataclasses, never ORM rows.
`require_project` / `require_image` are the same checks for other services inside their own transaction.
The gallery never loads a whole data set: `store.queries.page_images` pages with `LIMIT`/`OFFSET`, and the
per-image scores come from the newest evaluation of the project's active checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from services.database import Database
from store.db import session_scope
from store.errors import NotFoundError
from store.models import Image, Project
from store.paths import resolve_image_path
from store.projects import ProjectSummary, list_classes
from store.projects import get_image as get_image_row
from store.projects import get_project as get_project_row
from store.projects import list_projects as store_list_projects
from store.projects import project_names as store_project_names
from store.queries import filter_value_counts, image_ground_truth, images_by_ids
from store.queries import neighbour_image as store_neighbour_image
from store.queries import page_images as store_page_images
from store.runs import active_checkpoint, latest_evaluation_id

SORTS = ("name", "epg", "confidence_low", "confidence_high")
ANNOTATED = ("any", "annotated", "not annotated")


@dataclass(frozen=True)
class ProjectInfo:
    """A project and its classes in model output order."""

    id: int
    name: str
    task: str
    image_size: int
    classes: tuple[str, ...]

    @property
    def multi_label(self) -> bool:
        """Whether an image may carry several labels."""
        return self.task == "multi_label"


@dataclass(frozen=True)
class ImageInfo:
    """An image of a project; `file` is where it lies on this machine, `path` how the database stores it."""

    id: int
    project_id: int
    path: str
    file: Path
    sha256: str
    width: int
    height: int
    split: str
    group: str | None


@dataclass(frozen=True)
class FilterChoices:
    """Values for the gallery's filters: the splits, classes and groups present in a project, and how many
    images have each value (`counts["split"|"class"|"group"|"boxes"][value]`; boxes: annotated or not)."""

    splits: tuple[str, ...]
    classes: tuple[str, ...]
    groups: tuple[str, ...]
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    total: int = 0


@dataclass(frozen=True)
class ImageTruth:
    """An image's ground truth: its label names and live boxes `(x0, y0, x1, y1)` with their labels."""

    labels: tuple[str, ...]
    boxes: tuple[tuple[float, float, float, float], ...]
    box_labels: tuple[str, ...]


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
    file: Path
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

    rows: tuple[GalleryRow, ...]
    total: int
    page: int
    page_size: int
    notes: tuple[str, ...] = ()

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, -(-self.total // self.page_size))


def require_project(session: Session, name: str | None) -> Project:
    """The named project; ValueError asking to pick one for an empty name, NotFoundError for an unknown one."""
    if not name:
        raise ValueError("Pick a project first (top of the page).")
    return get_project_row(session, str(name))


def require_image(session: Session, project: Project, image_id: int | float | None) -> Image:
    """The image of `project` with `image_id`; ValueError asking to select one, NotFoundError for a stranger."""
    if image_id is None or int(image_id) <= 0:
        raise ValueError("Select an image in Explore first (click a tile of the gallery).")
    missing = NotFoundError(f"Image {int(image_id)} is not part of project {project.name!r}; select one in Explore.")
    try:
        image = get_image_row(session, int(image_id))
    except NotFoundError:
        raise missing from None
    if image.project_id != project.id:
        raise missing
    return image


def project_info(session: Session, project: Project) -> ProjectInfo:
    """The project row as a `ProjectInfo` (one query for its classes)."""
    classes = tuple(c.name for c in list_classes(session, project.id))
    return ProjectInfo(project.id, project.name, project.task, project.image_size, classes)


def image_info(image: Image, data_dir: Path) -> ImageInfo:
    """The image row as an `ImageInfo`, its file resolved against the data dir."""
    return ImageInfo(image.id, image.project_id, image.path, resolve_image_path(image.path, data_dir), image.sha256,
                     image.width, image.height, image.split, image.group)


def list_projects(db: Database) -> list[ProjectSummary]:
    """All projects by name, with class, image, annotated-image and box counts."""
    with session_scope(db) as session:
        return store_list_projects(session)


def project_names(db: Database) -> list[str]:
    """Names of every project, alphabetically."""
    with session_scope(db) as session:
        return store_project_names(session)


def get_project(db: Database, name: str | None) -> ProjectInfo:
    """The named project with its classes (ValueError / NotFoundError as `require_project`)."""
    with session_scope(db) as session:
        return project_info(session, require_project(session, name))


def class_names(db: Database, project: str | None) -> list[str]:
    """The project's classes in model output order."""
    return list(get_project(db, project).classes)


def filter_choices(db: Database, project: str | None) -> FilterChoices:
    """The splits, classes and groups present in the project with their image counts, for the gallery's
    dropdowns (classes in model output order, splits and groups sorted)."""
    with session_scope(db) as session:
        row = require_project(session, project)
        classes = tuple(c.name for c in list_classes(session, row.id))
        counts = filter_value_counts(session, project_id=row.id)
    return FilterChoices(tuple(sorted(counts["split"])), classes, tuple(sorted(counts["group"])), counts,
                         sum(counts["boxes"].values()))


def image_truth(db: Database, project: str | None, image_id: int | float | None) -> ImageTruth:
    """The labels and live boxes of the project's image (ValueError / NotFoundError as `require_image`)."""
    with session_scope(db) as session:
        image = require_image(session, require_project(session, project), image_id)
        labels, boxes = image_ground_truth(session, image_id=image.id)
    return ImageTruth(tuple(labels), tuple(b[1:] for b in boxes), tuple(b[0] for b in boxes))


def get_image(db: Database, project: str | None, image_id: int | float | None, *, data_dir: Path) -> ImageInfo:
    """The project's image with this id (ValueError / NotFoundError as `require_image`)."""
    with session_scope(db) as session:
        return image_info(require_image(session, require_project(session, project), image_id), data_dir)


def neighbour_image(db: Database, project: str | None, image_id: int | float | None, step: int) -> int | None:
    """The id of the next (`step=1`) or previous (`step=-1`) image by (split, path), or None at either end."""
    with session_scope(db) as session:
        row = require_project(session, project)
        image = require_image(session, row, image_id)
        return store_neighbour_image(session, project_id=row.id, image_id=image.id, step=step)


def page_images(db: Database, project: str | None, flt: GalleryFilter, *, page: int, page_size: int,
                data_dir: Path) -> GalleryPage:
    """Page `page` (0-based) of the project's images matching `flt`, and how many matched in all.

    A page past the end shows the last page; sorting by EPG or confidence needs an evaluation of the active
    model with per-image results (without one the page is sorted by name and a note says what to run).
    """
    if flt.sort not in SORTS:
        raise ValueError(f"unknown sort {flt.sort!r}; choose one of {', '.join(SORTS)}")
    if flt.annotated not in ANNOTATED:
        raise ValueError(f"unknown box filter {flt.annotated!r}; choose one of {', '.join(ANNOTATED)}")
    with session_scope(db) as session:
        project_id = require_project(session, project).id
        checkpoint = active_checkpoint(session, project_id)
        evaluation_id = (latest_evaluation_id(session, checkpoint_id=checkpoint.id, split=flt.split or None)
                         if checkpoint is not None else None)
        sort_by, descending = {"name": ("name", False), "epg": ("epg", False), "confidence_low": ("confidence", False),
                               "confidence_high": ("confidence", True)}[flt.sort]
        notes: tuple[str, ...] = ()
        if evaluation_id is None and (sort_by != "name" or flt.wrong_only):
            notes = ("The active model has no evaluation yet: run `python app.py evaluate` "
                     "(or fine-tune) to sort by EPG/confidence and to find wrong predictions.",)
            sort_by = "name"
        annotated = {"any": None, "annotated": True, "not annotated": False}[flt.annotated]
        common = {"split": flt.split or None, "class_name": flt.class_name or None, "group": flt.group or None,
                  "annotated": annotated, "wrong_prediction_eval_id": evaluation_id if flt.wrong_only else None,
                  "sort_by": sort_by, "evaluation_id": evaluation_id, "descending": descending}
        rows, total = store_page_images(session, project_id, offset=max(0, page) * page_size, limit=page_size,
                                        **common)
        last = max(0, -(-total // page_size) - 1)
        if page > last:  # the filter shrank the result: show its last page
            page = last
            rows, total = store_page_images(session, project_id, offset=page * page_size, limit=page_size, **common)
    return GalleryPage(
        rows=tuple(GalleryRow(r.id, r.path, resolve_image_path(r.path, data_dir), r.split, r.group, r.epg, r.score,
                              r.correct, r.box_count, r.width, r.height) for r in rows),
        total=total, page=max(0, page), page_size=page_size, notes=notes,
    )


def page_image_list(db: Database, project: str | None, image_ids: Sequence[int], *, page: int, page_size: int,
                    data_dir: Path, notes: tuple[str, ...] = ()) -> GalleryPage:
    """Page `page` (0-based, clamped) of an ordered list of the project's images (e.g. the images that put the
    most evidence in a region of a mean map), in that order; ids of other projects are left out."""
    if page_size <= 0:
        raise ValueError(f"page_size must be positive, got {page_size}")
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    last = max(0, -(-len(ids) // page_size) - 1)
    page = min(max(0, page), last)
    with session_scope(db) as session:
        project_id = require_project(session, project).id
        rows = images_by_ids(session, project_id=project_id, image_ids=ids[page * page_size:(page + 1) * page_size])
    return GalleryPage(
        rows=tuple(GalleryRow(r.id, r.path, resolve_image_path(r.path, data_dir), r.split, r.group,
                              box_count=r.box_count, width=r.width, height=r.height) for r in rows),
        total=len(ids), page=page, page_size=page_size, notes=notes,
    )


__all__ = [
    "ANNOTATED", "SORTS", "FilterChoices", "GalleryFilter", "GalleryPage", "GalleryRow", "ImageInfo", "ImageTruth",
    "ProjectInfo", "ProjectSummary", "class_names", "filter_choices", "get_image", "get_project", "image_info",
    "image_truth", "list_projects", "neighbour_image", "page_image_list", "page_images", "project_info",
    "project_names", "require_image", "require_project",
]
