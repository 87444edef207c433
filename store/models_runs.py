"""SQLAlchemy models of checkpoints, evaluations (with per-image results) and training runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, _in
from store.types import utcnow

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_RUN_STATUSES = ("queued", "running")

_ACTIVE_RUN = text(_in("status", ACTIVE_RUN_STATUSES))
_ACTIVE_CHECKPOINT = text("active")


class Checkpoint(Base):
    """A trained model file registered with a project; at most one per project is active."""

    __tablename__ = "checkpoint"
    __table_args__ = (
        Index("ix_checkpoint_project_created", "project_id", "created"),
        Index("uq_checkpoint_one_active", "project_id", unique=True,
              sqlite_where=_ACTIVE_CHECKPOINT, postgresql_where=_ACTIVE_CHECKPOINT),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(2048))
    sha256: Mapped[str] = mapped_column(String(64))
    arch: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoint.id", ondelete="SET NULL"), default=None)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_run.id", ondelete="SET NULL", use_alter=True), default=None, index=True
    )
    created: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str] = mapped_column(Text, default="")

    repr_fields = ("id", "arch", "active")


class Evaluation(Base):
    """Metrics of one checkpoint on one split."""

    __tablename__ = "evaluation"
    __table_args__ = (Index("ix_evaluation_checkpoint", "checkpoint_id", "split"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoint.id", ondelete="CASCADE"))
    split: Mapped[str] = mapped_column(String(50))
    created: Mapped[datetime] = mapped_column(default=utcnow)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)


class EvaluationImage(Base):
    """Per-image result of an evaluation; the gallery and compare view sort on these."""

    __tablename__ = "evaluation_image"
    __table_args__ = (
        Index("ix_evaluation_image_epg", "evaluation_id", "epg"),
        Index("ix_evaluation_image_score", "evaluation_id", "score"),
        Index("ix_evaluation_image_correct", "evaluation_id", "correct", "image_id"),
        Index("ix_evaluation_image_image", "image_id"),
    )

    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluation.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    epg: Mapped[float | None] = mapped_column(Float, default=None)
    iou: Mapped[float | None] = mapped_column(Float, default=None)
    correct: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column(Float)
    predicted_index: Mapped[int | None] = mapped_column(Integer, default=None)


class TrainingRun(Base):
    """A fine-tuning job; at most one queued or running per project (a partial unique index)."""

    __tablename__ = "training_run"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        Index("ix_training_run_project_created", "project_id", "created"),
        Index("uq_training_run_one_active", "project_id", unique=True,
              sqlite_where=_ACTIVE_RUN, postgresql_where=_ACTIVE_RUN),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    started: Mapped[datetime | None] = mapped_column(default=None)
    finished: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat: Mapped[datetime | None] = mapped_column(default=None)
    # what a finished run did (migration 0002): outcome "improved" | "no_improvement", stop_reason, kept_epoch,
    # selection_rule, epochs; None before training ended
    summary: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    base_checkpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkpoint.id", ondelete="SET NULL"), default=None
    )

    repr_fields = ("id", "status", "progress")


__all__ = ["ACTIVE_RUN_STATUSES", "RUN_STATUSES", "Checkpoint", "Evaluation", "EvaluationImage", "TrainingRun"]
