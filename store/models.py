"""SQLAlchemy models of projects, classes, images, labels, boxes and the append-only box history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.types import UTCDateTime, utcnow

TASKS = ("single_label", "multi_label")
BOX_SOURCES = ("imported", "user", "proposed")
BOX_ACTIONS = ("create", "update", "delete", "restore")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base: UTC timestamps, JSON dicts, stable constraint names for migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}
    repr_fields: ClassVar[tuple[str, ...]] = ("id",)  # what `repr` shows of a row

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.repr_fields)
        return f"{type(self).__name__}({shown})"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Project(Base):
    """A data set plus the classifier trained on it."""

    __tablename__ = "project"
    __table_args__ = (CheckConstraint(_in("task", TASKS), name="task"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task: Mapped[str] = mapped_column(String(20), default="multi_label")
    image_size: Mapped[int] = mapped_column(Integer, default=224)
    created: Mapped[datetime] = mapped_column(default=utcnow)

    classes: Mapped[list[Class]] = relationship(
        back_populates="project", order_by="Class.index", cascade="all, delete-orphan", passive_deletes=True
    )

    repr_fields = ("id", "name", "task")


class Class(Base):
    """A class of a project; `index` is its position in the model's output and never changes."""

    __tablename__ = "class"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        UniqueConstraint("project_id", "position"),  # `index` maps to the column "position" (INDEX is SQL)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    index: Mapped[int] = mapped_column("position", Integer)

    project: Mapped[Project] = relationship(back_populates="classes")

    repr_fields = ("id", "name", "index")


class Image(Base):
    """An image file. `path` is relative to the data dir when inside it, absolute otherwise."""

    __tablename__ = "image"
    __table_args__ = (
        UniqueConstraint("project_id", "sha256"),
        UniqueConstraint("project_id", "path"),
        Index("ix_image_project_split_path", "project_id", "split", "path"),
        Index("ix_image_project_group", "project_id", "group_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(2048))
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(50), default="train")
    group: Mapped[str | None] = mapped_column("group_name", String(200), default=None)
    created: Mapped[datetime] = mapped_column(default=utcnow)

    repr_fields = ("id", "path", "split")


class ImageLabel(Base):
    """Image-level class label (one per image for single-label projects)."""

    __tablename__ = "image_label"
    __table_args__ = (Index("ix_image_label_class", "class_id", "image_id"),)

    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("class.id", ondelete="CASCADE"), primary_key=True)


class Box(Base):
    """A box in original image pixels, `x0 <= x < x1`, `y0 <= y < y1` (continuous coordinates).

    `revision` starts at 1 and grows by one on every change (optimistic concurrency, enforced by
    the ORM's version counter: an UPDATE carrying a stale revision matches no row).
    """

    __tablename__ = "box"
    __table_args__ = (
        CheckConstraint(_in("source", BOX_SOURCES), name="source"),
        Index("ix_box_image_live", "image_id", "deleted_at"),
        Index("ix_box_class", "class_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    class_id: Mapped[int] = mapped_column(ForeignKey("class.id", ondelete="CASCADE"))
    x0: Mapped[float] = mapped_column(Float)
    y0: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(20), default="user")
    author: Mapped[str] = mapped_column(String(200), default="")
    created: Mapped[datetime] = mapped_column(default=utcnow)
    updated: Mapped[datetime] = mapped_column(default=utcnow)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)

    klass: Mapped[Class] = relationship(lazy="joined")

    __mapper_args__ = {"version_id_col": revision}  # noqa: RUF012

    @property
    def label(self) -> str:
        """The class name."""
        return self.klass.name

    repr_fields = ("id", "image_id", "revision", "x0", "y0", "x1", "y1")


class BoxEvent(Base):
    """One change of a box, never updated or deleted: who, when, the state before and after.

    `undo_of_id` marks an event written by undo and names the event it reverted.
    """

    __tablename__ = "box_event"
    __table_args__ = (
        CheckConstraint(_in("action", BOX_ACTIONS), name="action"),
        Index("ix_box_event_image", "image_id", "id"),
        Index("ix_box_event_box", "box_id"),
        Index("ix_box_event_undo_of", "undo_of_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    box_id: Mapped[int] = mapped_column(ForeignKey("box.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(20))
    author: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    undo_of_id: Mapped[int | None] = mapped_column(ForeignKey("box_event.id", ondelete="SET NULL"), default=None)

    repr_fields = ("id", "box_id", "action", "author")


__all__ = ["BOX_ACTIONS", "BOX_SOURCES", "TASKS", "Base", "Box", "BoxEvent", "Class", "Image", "ImageLabel", "Project"]
