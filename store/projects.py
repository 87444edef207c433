"""Repository functions for projects, classes, images and image labels (flush, never commit)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store.db import get_row
from store.errors import NotFoundError, did_you_mean
from store.io.plan import IMAGE_SIZE_MAX, IMAGE_SIZE_MIN
from store.models import TASKS, Box, Class, Image, ImageLabel, Project


@dataclass(frozen=True)
class ProjectSummary:
    """A project with its counts, as `python app.py projects` lists it."""

    id: int
    name: str
    task: str
    created: datetime
    classes: int
    images: int
    annotated_images: int
    boxes: int


@dataclass(frozen=True)
class ImageInput:
    """An image to add: `path` as stored (see `store.paths.stored_path`)."""

    path: str
    sha256: str
    width: int
    height: int
    split: str = "train"
    group: str | None = None


def create_project(session: Session, *, name: str, task: str = "multi_label", image_size: int = 224,
                   classes: Sequence[str] = ()) -> Project:
    """Create a project (and its classes, in model output order)."""
    name = name.strip()
    if not name:
        raise ValueError("a project needs a non-empty name")
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, not {image_size}")
    if find_project(session, name=name) is not None:
        raise ValueError(f"a project named {name!r} already exists")
    project = Project(name=name, task=task, image_size=image_size)
    session.add(project)
    session.flush()
    if classes:
        add_classes(session, project_id=project.id, names=classes)
    return project


def find_project(session: Session, *, name: str) -> Project | None:
    """The project with exactly this name, or None (the one query by name; see `get_project`)."""
    return session.scalar(select(Project).where(Project.name == name))


def project_names(session: Session) -> list[str]:
    """Every project's name, alphabetically."""
    return list(session.scalars(select(Project.name).order_by(Project.name)))


def get_project(session: Session, name_or_id: str | int) -> Project:
    """The project with this name (or id); NotFoundError listing the known names otherwise."""
    if isinstance(name_or_id, int):
        project = session.get(Project, name_or_id)
    else:
        project = find_project(session, name=name_or_id)
    if project is None:
        known = project_names(session)
        hint = did_you_mean(str(name_or_id), known)
        raise NotFoundError(f"no project named {name_or_id}{hint}; known: {', '.join(known) or '(none yet)'}")
    return project


def get_or_create_project(session: Session, *, name: str, task: str = "multi_label",
                          image_size: int = 224) -> tuple[Project, bool]:
    """`(project, created)`; an existing project must have the same task."""
    project = find_project(session, name=name)
    if project is None:
        return create_project(session, name=name, task=task, image_size=image_size), True
    if project.task != task:
        hint = " (VOC and COCO imports take --task single_label)" if project.task == "single_label" else ""
        raise ValueError(f"project {name!r} is {project.task}, this data is {task}; use another --project name"
                         f"{hint}")
    return project, False


def check_image_size(size: object) -> int:
    """`size` as a project image size: a whole number of pixels, a multiple of 32 in [32, 1024]; ValueError
    saying what is allowed otherwise."""
    if isinstance(size, bool) or not isinstance(size, int | float | str):
        raise ValueError(f"image size {size!r} is not a number of pixels")
    try:
        value = float(size)
    except ValueError:
        raise ValueError(f"image size {size!r} is not a number of pixels") from None
    if not value.is_integer() or not IMAGE_SIZE_MIN <= value <= IMAGE_SIZE_MAX or int(value) % 32:
        raise ValueError(f"image size {size!r} must be a multiple of 32 between {IMAGE_SIZE_MIN} and {IMAGE_SIZE_MAX} "
                         "pixels (e.g. 64, 128, 224)")
    return int(value)


def set_image_size(session: Session, project_id: int, size: object) -> Project:
    """Set the side of the square the project's images are resized to for its models (`check_image_size`)."""
    project = get_project(session, project_id)
    project.image_size = check_image_size(size)
    session.flush()
    return project


def list_projects(session: Session) -> list[ProjectSummary]:
    """All projects by name, with class, image, annotated-image and live-box counts (four queries)."""
    def counts(stmt: object) -> dict[int, int]:
        return {pid: n for pid, n in session.execute(stmt)}  # type: ignore[call-overload]

    n_classes = counts(select(Class.project_id, func.count()).group_by(Class.project_id))
    n_images = counts(select(Image.project_id, func.count()).group_by(Image.project_id))
    live = (select(Image.project_id, Box.image_id).join(Box, Box.image_id == Image.id)
            .where(Box.deleted_at.is_(None)).subquery())
    n_boxes = counts(select(live.c.project_id, func.count()).group_by(live.c.project_id))
    annotated = select(live.c.project_id, live.c.image_id).distinct().subquery()
    n_annotated = counts(select(annotated.c.project_id, func.count()).group_by(annotated.c.project_id))
    return [
        ProjectSummary(p.id, p.name, p.task, p.created, n_classes.get(p.id, 0), n_images.get(p.id, 0),
                       n_annotated.get(p.id, 0), n_boxes.get(p.id, 0))
        for p in session.scalars(select(Project).order_by(Project.name))
    ]


def list_classes(session: Session, project_id: int) -> list[Class]:
    """The project's classes in output order."""
    return list(session.scalars(select(Class).where(Class.project_id == project_id).order_by(Class.index)))


def add_classes(session: Session, *, project_id: int, names: Iterable[str]) -> list[Class]:
    """Append the names not yet known (existing classes keep their index); returns all classes."""
    classes = list_classes(session, project_id)
    known = {c.name for c in classes}
    for name in names:
        name = name.strip()
        if not name:
            raise ValueError("class names must be non-empty")
        if name in known:
            continue
        cls = Class(project_id=project_id, name=name, index=len(classes))
        session.add(cls)
        classes.append(cls)
        known.add(name)
    session.flush()
    return classes


def get_image(session: Session, image_id: int) -> Image:
    """The image with this id; NotFoundError otherwise."""
    return get_row(session, Image, image_id, "image")


def add_images(session: Session, *, project_id: int, images: Sequence[ImageInput]) -> list[tuple[Image, bool]]:
    """Add images, deduplicated by sha256 within the project: `(image, created)` per input, in order."""
    by_sha: dict[str, Image] = {}
    shas = list({i.sha256 for i in images})
    for start in range(0, len(shas), 500):
        chunk = shas[start:start + 500]
        stmt = select(Image).where(Image.project_id == project_id, Image.sha256.in_(chunk))
        by_sha.update((image.sha256, image) for image in session.scalars(stmt))
    result: list[tuple[Image, bool]] = []
    for item in images:
        if item.width <= 0 or item.height <= 0:
            raise ValueError(f"image {item.path}: size {item.width}x{item.height} is empty")
        existing = by_sha.get(item.sha256)
        if existing is not None:
            result.append((existing, False))
            continue
        image = Image(project_id=project_id, path=item.path, sha256=item.sha256, width=item.width,
                      height=item.height, split=item.split or "train", group=item.group)
        session.add(image)
        by_sha[item.sha256] = image
        result.append((image, True))
    session.flush()
    return result


def class_ids_by_name(session: Session, project: Project, names: Iterable[str], *, what: str) -> list[int]:
    """Class ids for `names`; ValueError naming `what` and suggesting near misses for unknown ones."""
    by_name = {c.name: c.id for c in list_classes(session, project.id)}
    ids = []
    for name in names:
        if name not in by_name:
            raise ValueError(f'{what}: label "{name}" is not a class of project {project.name}'
                             f"{did_you_mean(name, by_name)}; classes: {', '.join(by_name)}")
        ids.append(by_name[name])
    return ids


def set_image_labels(session: Session, *, image_id: int, class_names: Sequence[str], replace: bool = True) -> None:
    """Set (or, with `replace=False`, extend) the image-level labels; single-label images get one."""
    image = get_image(session, image_id)
    project = session.get_one(Project, image.project_id)
    ids = set(class_ids_by_name(session, project, class_names, what=f"image {image.path}"))
    current = set(session.scalars(select(ImageLabel.class_id).where(ImageLabel.image_id == image_id)))
    wanted = ids if replace else ids | current
    if project.task == "single_label" and len(wanted) > 1:
        raise ValueError(f"image {image.path}: project {project.name} is single-label, got {len(wanted)} labels")
    if current - wanted:
        session.execute(delete(ImageLabel).where(ImageLabel.image_id == image_id,
                                                 ImageLabel.class_id.in_(current - wanted)))
    session.add_all(ImageLabel(image_id=image_id, class_id=cid) for cid in sorted(wanted - current))
    session.flush()
