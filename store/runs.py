"""Repository functions for checkpoints, evaluations and training runs (flush, never commit)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.db import get_row
from store.errors import ConflictError
from store.models_runs import ACTIVE_RUN_STATUSES, RUN_STATUSES, Checkpoint, Evaluation, EvaluationImage, TrainingRun
from store.types import utcnow

TERMINAL_STATUSES = tuple(s for s in RUN_STATUSES if s not in ACTIVE_RUN_STATUSES)


@dataclass(frozen=True)
class EvaluationImageResult:
    """One image's result in an evaluation (`predicted_index`: the class index the model chose)."""

    image_id: int
    correct: bool
    score: float
    epg: float | None = None
    iou: float | None = None
    predicted_index: int | None = None


def register_checkpoint(session: Session, *, project_id: int, path: str, sha256: str, arch: str,
                        parent_id: int | None = None, run_id: int | None = None,
                        metrics: Mapping[str, Any] | None = None, note: str = "", activate: bool = False) -> Checkpoint:
    """Record a checkpoint file; the same sha256 in the same project returns the existing row."""
    existing = find_checkpoint(session, project_id=project_id, sha256=sha256)
    checkpoint = existing or Checkpoint(project_id=project_id, path=path, sha256=sha256, arch=arch,
                                        parent_id=parent_id, run_id=run_id, metrics=dict(metrics or {}), note=note)
    if existing is None:
        session.add(checkpoint)
        session.flush()
    if activate:
        activate_checkpoint(session, checkpoint.id)
    return checkpoint


def find_checkpoint(session: Session, *, project_id: int, sha256: str) -> Checkpoint | None:
    """The project's checkpoint with this file hash, or None."""
    return session.scalar(select(Checkpoint).where(Checkpoint.project_id == project_id, Checkpoint.sha256 == sha256))


def get_checkpoint(session: Session, checkpoint_id: int) -> Checkpoint:
    """The checkpoint with this id; NotFoundError otherwise."""
    return get_row(session, Checkpoint, checkpoint_id, "checkpoint")


RUN_CHOICE = "chosen_by_run"  # checkpoint metrics flag: its training run selected it (core/train/selection.py)
RUN_CHOICE_NOTE = "the run's choice"


def mark_run_choice(session: Session, checkpoint_id: int) -> Checkpoint:
    """Record that its training run selected this checkpoint as its best: a metrics flag (`RUN_CHOICE`), and
    the note every checkpoint list shows gets "· the run's choice"."""
    checkpoint = get_checkpoint(session, checkpoint_id)
    checkpoint.metrics = {**(checkpoint.metrics or {}), RUN_CHOICE: True}
    if RUN_CHOICE_NOTE not in checkpoint.note:
        checkpoint.note = f"{checkpoint.note} · {RUN_CHOICE_NOTE}" if checkpoint.note else RUN_CHOICE_NOTE
    session.flush()
    return checkpoint


def activate_checkpoint(session: Session, checkpoint_id: int) -> Checkpoint:
    """Make this the project's one active checkpoint."""
    checkpoint = get_checkpoint(session, checkpoint_id)
    session.execute(update(Checkpoint).where(Checkpoint.project_id == checkpoint.project_id,
                                             Checkpoint.id != checkpoint_id, Checkpoint.active.is_(True))
                    .values(active=False).execution_options(synchronize_session="fetch"))
    session.flush()
    checkpoint.active = True
    session.flush()
    return checkpoint


def active_checkpoint(session: Session, project_id: int) -> Checkpoint | None:
    """The project's active checkpoint, if any."""
    return session.scalar(select(Checkpoint).where(Checkpoint.project_id == project_id, Checkpoint.active.is_(True)))


def list_checkpoints(session: Session, project_id: int) -> list[Checkpoint]:
    """The project's checkpoints, newest first."""
    stmt = select(Checkpoint).where(Checkpoint.project_id == project_id).order_by(Checkpoint.created.desc(),
                                                                                  Checkpoint.id.desc())
    return list(session.scalars(stmt))


def record_evaluation(session: Session, *, checkpoint_id: int, split: str, metrics: Mapping[str, Any],
                      results: Sequence[EvaluationImageResult]) -> Evaluation:
    """Store an evaluation and its per-image results (one bulk INSERT per 5,000 rows)."""
    get_checkpoint(session, checkpoint_id)
    evaluation = Evaluation(checkpoint_id=checkpoint_id, split=split, metrics=dict(metrics))
    session.add(evaluation)
    session.flush()
    rows = [{**asdict(r), "evaluation_id": evaluation.id} for r in results]
    for start in range(0, len(rows), 5000):
        session.execute(insert(EvaluationImage), rows[start:start + 5000])
    return evaluation


def list_evaluations(session: Session, checkpoint_id: int) -> list[Evaluation]:
    """A checkpoint's evaluations, newest first."""
    stmt = select(Evaluation).where(Evaluation.checkpoint_id == checkpoint_id).order_by(Evaluation.id.desc())
    return list(session.scalars(stmt))


def evaluation_results(session: Session, evaluation_id: int) -> dict[int, EvaluationImage]:
    """Per-image results of an evaluation keyed by image id (for before/after comparison)."""
    stmt = select(EvaluationImage).where(EvaluationImage.evaluation_id == evaluation_id)
    return {row.image_id: row for row in session.scalars(stmt)}


def _has_results() -> ColumnElement[bool]:
    """True for an evaluation with per-image rows (not one of the per-epoch summaries a run records)."""
    return exists().where(EvaluationImage.evaluation_id == Evaluation.id)


def evaluations_of(session: Session, *, checkpoint_ids: Sequence[int], with_results: bool = False
                   ) -> list[Evaluation]:
    """Every evaluation of these checkpoints, oldest first (only those with per-image rows if `with_results`)."""
    if not checkpoint_ids:
        return []
    stmt = select(Evaluation).where(Evaluation.checkpoint_id.in_(list(checkpoint_ids)))
    if with_results:
        stmt = stmt.where(_has_results())
    return list(session.scalars(stmt.order_by(Evaluation.id)))


def latest_evaluation_id(session: Session, *, checkpoint_id: int, split: str | None = None) -> int | None:
    """The newest evaluation of the checkpoint that has per-image rows (on `split` when given), or None."""
    stmt = select(func.max(Evaluation.id)).where(Evaluation.checkpoint_id == checkpoint_id, _has_results())
    if split:
        stmt = stmt.where(Evaluation.split == split)
    return session.scalar(stmt)


def active_training_run(session: Session, project_id: int) -> TrainingRun | None:
    """The project's queued or running run, if any."""
    return session.scalar(select(TrainingRun).where(TrainingRun.project_id == project_id,
                                                    TrainingRun.status.in_(ACTIVE_RUN_STATUSES)))


def create_training_run(session: Session, *, project_id: int, config: Mapping[str, Any],
                        base_checkpoint_id: int | None = None) -> TrainingRun:
    """Queue a run; ConflictError if the project already has one queued or running."""
    def busy(run: TrainingRun) -> ConflictError:
        return ConflictError(f"project {project_id} already has training run {run.id} ({run.status}, "
                             f"{run.progress:.0%}); wait for it or cancel it first")

    current = active_training_run(session, project_id)
    if current is not None:
        raise busy(current)
    run = TrainingRun(project_id=project_id, config=dict(config), base_checkpoint_id=base_checkpoint_id)
    try:
        with session.begin_nested():  # the partial unique index catches a concurrent creator
            session.add(run)
    except IntegrityError as exc:
        raise ConflictError(f"project {project_id} already has a queued or running training run") from exc
    return run


def get_training_run(session: Session, run_id: int) -> TrainingRun:
    """The run with this id; NotFoundError otherwise."""
    return get_row(session, TrainingRun, run_id, "training run")


def update_training_run(session: Session, run_id: int, *, status: str | None = None, progress: float | None = None,
                        message: str | None = None, error: str | None = None, pid: int | None = None,
                        summary: dict[str, Any] | None = None) -> TrainingRun:
    """Change a run's state; sets started/finished/heartbeat as the status moves; `summary`: what a finished
    run did (outcome, why it stopped, the epoch kept)."""
    run = get_training_run(session, run_id)
    now = utcnow()
    if status is not None and status != run.status:
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}, not {status!r}")
        if run.status in TERMINAL_STATUSES:
            raise ValueError(f"training run {run_id} already {run.status}; it cannot become {status}")
        run.status = status
        if status == "running" and run.started is None:
            run.started = now
        if status in TERMINAL_STATUSES:
            run.finished = now
    if progress is not None:
        run.progress = min(max(float(progress), 0.0), 1.0)
    if message is not None:
        run.message = message
    if error is not None:
        run.error = error
    if pid is not None:
        run.pid = pid
    if summary is not None:
        run.summary = dict(summary)
    run.heartbeat = now
    session.flush()
    return run


def heartbeat(session: Session, run_id: int, *, progress: float | None = None,
              message: str | None = None) -> TrainingRun:
    """Record that the run's process is alive (and, optionally, how far it got)."""
    return update_training_run(session, run_id, progress=progress, message=message)


def list_training_runs(session: Session, project_id: int, *, limit: int = 50) -> list[TrainingRun]:
    """The project's runs, newest first."""
    stmt = (select(TrainingRun).where(TrainingRun.project_id == project_id)
            .order_by(TrainingRun.created.desc(), TrainingRun.id.desc()).limit(limit))
    return list(session.scalars(stmt))


def fail_silent_runs(session: Session, *, timeout_s: float, now: datetime | None = None) -> list[int]:
    """Fail every queued/running run whose last heartbeat (or creation, before the first) is older than
    `timeout_s`: its process died without reporting (killed, out of memory, machine gone). Works across
    hosts sharing one database, unlike a local pid check. Returns the failed runs' ids."""
    cutoff = (now or utcnow()) - timedelta(seconds=timeout_s)
    last_sign = func.coalesce(TrainingRun.heartbeat, TrainingRun.created)
    stmt = select(TrainingRun).where(TrainingRun.status.in_(ACTIVE_RUN_STATUSES), last_sign < cutoff)
    failed = []
    for run in session.scalars(stmt.with_for_update(skip_locked=True)):
        silent = int(((now or utcnow()) - (run.heartbeat or run.created)).total_seconds())
        update_training_run(session, run.id, status="failed", error=run.error or (
            f"no sign of life from the training process for {silent} s (limit {timeout_s:.0f} s): it was killed, "
            "ran out of memory or its machine stopped; see the run's log, then start again"))
        failed.append(run.id)
    return failed


def run_checkpoints(session: Session, run_id: int) -> list[Checkpoint]:
    """The checkpoints a training run registered, oldest first."""
    return list(session.scalars(select(Checkpoint).where(Checkpoint.run_id == run_id).order_by(Checkpoint.id)))


def delete_checkpoint(session: Session, checkpoint_id: int) -> None:
    """Remove a checkpoint row (its evaluations go with it); an active checkpoint is refused."""
    checkpoint = get_checkpoint(session, checkpoint_id)
    if checkpoint.active:
        raise ValueError(f"checkpoint {checkpoint_id} is the active model; activate another one first")
    session.delete(checkpoint)
    session.flush()
