"""A project's checkpoints: listing with headline metrics, resolving a reference, registering, activating.

`resolve_checkpoint` is the one place a reference ('active', an id, or a file path) becomes a checkpoint row;
the commands and the UI both go through it. Every other public function opens and owns one transaction and
returns frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from services.catalog import require_project
from services.database import Database
from services.settings import Settings
from store.db import session_scope
from store.errors import NotFoundError
from store.models import Project
from store.models_runs import Checkpoint, Evaluation
from store.paths import stored_path
from store.runs import (
    RUN_CHOICE,
    activate_checkpoint,
    active_checkpoint,
    evaluations_of,
    find_checkpoint,
    get_checkpoint,
    list_checkpoints,
    register_checkpoint,
)


@dataclass(frozen=True)
class CheckpointInfo:
    """A registered checkpoint file; `path` as stored (relative to the data dir when inside it)."""

    id: int
    project_id: int
    path: str
    sha256: str
    arch: str
    parent_id: int | None
    run_id: int | None
    created: datetime
    active: bool
    note: str
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        """The checkpoint file's name."""
        return Path(self.path).name


@dataclass(frozen=True)
class EvaluationInfo:
    """One evaluation of a checkpoint on a split (its metrics say which method and layer explained)."""

    id: int
    checkpoint_id: int
    split: str
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> tuple[str, str, str]:
        """`(split, layer, attribution)`: two evaluations compare only when these are equal."""
        return self.split, str(self.metrics.get("layer", "input")), str(self.metrics.get("attribution", ""))


@dataclass(frozen=True)
class ModelSummary:
    """A checkpoint with the headline metrics the Models tab shows, and where they were measured."""

    checkpoint: CheckpointInfo
    metrics: Mapping[str, Any]
    measured_on: str


def checkpoint_info(row: Checkpoint) -> CheckpointInfo:
    """The checkpoint row as a `CheckpointInfo`."""
    return CheckpointInfo(row.id, row.project_id, row.path, row.sha256, row.arch, row.parent_id, row.run_id,
                          row.created, row.active, row.note, dict(row.metrics or {}))


def evaluation_info(row: Evaluation) -> EvaluationInfo:
    """The evaluation row as an `EvaluationInfo`."""
    return EvaluationInfo(row.id, row.checkpoint_id, row.split, dict(row.metrics or {}))


def checkpoint_id(value: Any, *, what: str = "checkpoint") -> int:
    """A checkpoint id from a form value (an int or digits); ValueError saying what to pick otherwise."""
    if value is None or value == "":
        raise ValueError(f"Pick a {what} first.")
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise ValueError(f"{value!r} is not a checkpoint id; pick a {what} from the list.")
    return int(text)


def project_checkpoint(session: Session, project: Project, checkpoint_id: int | None) -> Checkpoint:
    """The project's checkpoint with this id, or its active one for None; NotFoundError with what to do."""
    if checkpoint_id is None:
        checkpoint = active_checkpoint(session, project.id)
        if checkpoint is None:
            raise NotFoundError(f"Project {project.name!r} has no active model: register or activate a checkpoint "
                                "in the Models tab (on the command line: pass --base/--checkpoint with a file path).")
        return checkpoint
    checkpoint = get_checkpoint(session, checkpoint_id)
    if checkpoint.project_id != project.id:
        raise NotFoundError(f"Checkpoint {checkpoint_id} belongs to another project; pick one of {project.name!r}.")
    return checkpoint


def resolve_checkpoint(session: Session, settings: Settings, project: Project, ref: str | int | None) -> Checkpoint:
    """A checkpoint of `project` by reference: None, '' or 'active'; an id (int or digits); or a file path
    (registered on the fly, not activated). NotFoundError with what to do when there is none."""
    if ref is None or ref in ("", "active"):
        return project_checkpoint(session, project, None)
    if isinstance(ref, int) or ref.strip().isdigit():
        return project_checkpoint(session, project, int(ref))
    from core.train import file_sha256, read_checkpoint  # a path: read the file's architecture (torch)

    path = Path(ref)
    arch = read_checkpoint(path)["arch"]
    return register_checkpoint(session, project_id=project.id, path=stored_path(path, settings.data_dir),
                               sha256=file_sha256(path), arch=arch, note="registered by train/evaluate")


def get_project_checkpoint(db: Database, project: str | None, ref: Any) -> CheckpointInfo:
    """The project's checkpoint with this id (a form value), or its active one for None/''/'active'."""
    with session_scope(db) as session:
        row = require_project(session, project)
        wanted = None if ref in (None, "", "active") else checkpoint_id(ref)
        return checkpoint_info(project_checkpoint(session, row, wanted))


def list_project_checkpoints(db: Database, project: str | None) -> list[CheckpointInfo]:
    """The project's checkpoints, newest first."""
    with session_scope(db) as session:
        return [checkpoint_info(c) for c in list_checkpoints(session, require_project(session, project).id)]


def _headline(session: Session, checkpoints: list[Checkpoint]) -> dict[int, tuple[dict[str, Any], str]]:
    """Per checkpoint: the metrics of its latest evaluation (test split preferred) and where they were measured;
    a checkpoint never evaluated falls back to the validation metrics its training run recorded."""
    found: dict[int, tuple[dict[str, Any], str]] = {}
    for e in evaluations_of(session, checkpoint_ids=[c.id for c in checkpoints]):  # oldest first: later ones win
        if e.split == "test" or found.get(e.checkpoint_id, ({}, ""))[1] != "test":
            found[e.checkpoint_id] = (dict(e.metrics or {}), e.split)
    for c in checkpoints:
        if c.id not in found and c.metrics and "accuracy" in c.metrics:
            found[c.id] = (dict(c.metrics), "val (training)")
    return found


def model_summaries(db: Database, project: str | None) -> list[ModelSummary]:
    """The project's checkpoints, newest first, each with its headline metrics and where they were measured."""
    with session_scope(db) as session:
        checkpoints = list_checkpoints(session, require_project(session, project).id)
        headline = _headline(session, checkpoints)
        return [ModelSummary(checkpoint_info(c), *headline.get(c.id, ({}, ""))) for c in checkpoints]


def default_pair(db: Database, project: str | None) -> tuple[int | None, int | None]:
    """After = the checkpoint the newest run chose as its best (else the newest checkpoint), so Compare opens on
    the model whose figures the run reported; before = its parent (or the active one, or the oldest)."""
    rows = list_project_checkpoints(db, project)
    if not rows:
        return None, None
    newest = rows[0]
    after = next((c for c in rows if newest.run_id is not None and c.run_id == newest.run_id
                  and c.metrics.get(RUN_CHOICE)), newest)
    active = next((c.id for c in rows if c.active), None)
    before = after.parent_id or (active if active != after.id else None) or rows[-1].id
    return before, after.id


def activate(db: Database, project: str | None, ref: Any) -> CheckpointInfo:
    """Make the project's checkpoint with this id (a form value) its one active model."""
    with session_scope(db) as session:
        row = require_project(session, project)
        checkpoint = project_checkpoint(session, row, checkpoint_id(ref))
        return checkpoint_info(activate_checkpoint(session, checkpoint.id))


def register_file(db: Database, settings: Settings, project: str | None, path: Path, *, sha256: str, arch: str,
                  note: str, parent_sha: str | None = None, metrics: Mapping[str, Any] | None = None
                  ) -> CheckpointInfo:
    """Register a checkpoint file (already checked against the project's classes) with the project, not active.

    `parent_sha` names the checkpoint it was trained from; it becomes the parent when the project has it.
    The same file registered twice returns the existing row.
    """
    with session_scope(db) as session:
        row = require_project(session, project)
        parent = find_checkpoint(session, project_id=row.id, sha256=parent_sha) if parent_sha else None
        checkpoint = register_checkpoint(session, project_id=row.id, path=stored_path(path, settings.data_dir),
                                         sha256=sha256, arch=arch, parent_id=parent.id if parent else None,
                                         metrics=metrics, note=note)
        return checkpoint_info(checkpoint)


__all__ = [
    "CheckpointInfo", "EvaluationInfo", "ModelSummary", "activate", "checkpoint_id", "checkpoint_info",
    "default_pair", "evaluation_info", "get_project_checkpoint", "list_project_checkpoints", "model_summaries",
    "project_checkpoint", "register_file", "resolve_checkpoint",
]
