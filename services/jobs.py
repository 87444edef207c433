"""A training job end to end: run row, base model, data, `fine_tune`, checkpoints, before/after."""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from services.database import open_store
from services.models import checkpoint_file, model_device
from services.settings import Settings
from store.db import open_database, session_scope
from store.errors import ConflictError, NotFoundError
from store.models import Project
from store.models_runs import Checkpoint
from store.paths import stored_path
from store.runs import active_checkpoint, get_checkpoint, register_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainRequest:
    """What `app.py train` was asked: the project, the base checkpoint and config overrides (None: default)."""

    project: str
    base: str = "active"
    overrides: dict[str, Any] = field(default_factory=dict)
    progress_bar: bool = True


def resolve_checkpoint(session: Session, settings: Settings, project: Project, ref: str) -> Checkpoint:
    """A checkpoint by id, file path (registered on the fly) or 'active'; ValueError with what to do."""
    if ref in ("", "active"):
        checkpoint = active_checkpoint(session, project.id)
        if checkpoint is None:
            raise NotFoundError(f"project {project.name!r} has no active checkpoint; register one (Models tab) "
                                "or pass --base/--checkpoint with a file path")
        return checkpoint
    if ref.isdigit():
        checkpoint = get_checkpoint(session, int(ref))
        if checkpoint.project_id != project.id:
            raise NotFoundError(f"checkpoint {ref} belongs to another project")
        return checkpoint
    from core.train import file_sha256, read_checkpoint

    path = Path(ref)
    arch = read_checkpoint(path)["arch"]
    return register_checkpoint(session, project_id=project.id, path=stored_path(path, settings.data_dir),
                               sha256=file_sha256(path), arch=arch, note="registered by train/evaluate")


def train_project(settings: Settings, request: TrainRequest, *, cancel: threading.Event) -> dict[str, Any]:
    """Run one guided fine-tune of a project; returns the `train --json` object (status and all)."""
    from core.train import CheckpointError
    from core.train import distributed as dist_utils

    dist_utils.init_from_env(model_device(settings))
    try:
        if not dist_utils.is_rank0():  # other ranks train alongside; rank 0 owns the run row and files
            return _train_worker(settings, request, cancel)
        engine = open_store(settings)
        try:
            job = _prepare(engine, settings, request)
        except (ValueError, ConflictError, CheckpointError) as exc:
            log.error("%s", exc)
            return {"run_id": None, "status": "failed", "error": str(exc), "checkpoints": [], "best_checkpoint": None}
        return _execute(engine, settings, job, request, cancel)
    finally:
        dist_utils.shutdown()


def _train_worker(settings: Settings, request: TrainRequest, cancel: threading.Event) -> dict[str, Any]:
    """A non-zero rank under torchrun: same data and config, no database writes, no files."""
    from core.train import TrainConfig, load_checkpoint
    from core.train.fine_tune import fine_tune
    from services.datasets import project_train_data
    from store.projects import get_project

    engine = open_database(settings.database_url)
    with session_scope(engine) as session:
        project = get_project(session, request.project)
        base = resolve_checkpoint(session, settings, project, request.base)
        data = project_train_data(session, settings, project)
        base_path = checkpoint_file(settings, base.path)
    loaded = load_checkpoint(base_path, map_location=model_device(settings), expected_classes=list(data.classes))
    config = TrainConfig(device=settings.device).with_overrides(**_attribution_default(request.overrides, loaded.arch))
    fine_tune(loaded.model, data, config, out_dir=settings.checkpoint_dir / "unused", should_stop=cancel.is_set)
    return {"status": "succeeded"}


def _attribution_default(overrides: dict[str, Any], arch: str) -> dict[str, Any]:
    out = dict(overrides)
    if out.get("attribution") is None and not _is_bcos_arch(arch):
        out["attribution"] = "ixg"  # B-cos contributions need a B-cos network
    return out


@dataclass
class _Job:
    run_id: int
    project_id: int
    project_name: str
    base_id: int
    base_path: Path
    classes: list[str]
    data: Any
    config: Any
    eval_split: str


def _prepare(engine: Engine, settings: Settings, request: TrainRequest) -> _Job:
    import os

    from core.train import TrainConfig, read_checkpoint
    from services.datasets import project_train_data
    from store.projects import get_project
    from store.runs import create_training_run, update_training_run

    with session_scope(engine) as session:
        project = get_project(session, request.project)
        base = resolve_checkpoint(session, settings, project, request.base)
        base_path = checkpoint_file(settings, base.path)
        overrides = _attribution_default(request.overrides, read_checkpoint(base_path)["arch"])
        config = TrainConfig(device=settings.device).with_overrides(**overrides)
        data = project_train_data(session, settings, project)
        run = create_training_run(session, project_id=project.id, config=config.to_dict(), base_checkpoint_id=base.id)
        session.flush()
        update_training_run(session, run.id, status="running", pid=os.getpid(), message="starting")
        has_test = session.execute(_split_count(project.id, "test")).scalar_one() > 0
        return _Job(run.id, project.id, project.name, base.id, base_path, list(data.classes), data, config,
                    "test" if has_test else "val")


def _is_bcos_arch(arch: str) -> bool:
    from core.bcos import build_model

    return bool(getattr(build_model(arch, num_classes=2), "is_bcos", False))


def _split_count(project_id: int, split: str) -> Any:
    from sqlalchemy import func, select

    from store.models import Image

    return select(func.count()).select_from(Image).where(Image.project_id == project_id, Image.split == split)


def _execute(engine: Engine, settings: Settings, job: _Job, request: TrainRequest,
             cancel: threading.Event) -> dict[str, Any]:
    import time

    from core.train import TrainingCancelled, load_checkpoint
    from core.train.fine_tune import fine_tune
    from services.training import RunReporter, prune_dropped_checkpoints

    started = time.monotonic()
    bar = _progress_bar(job) if request.progress_bar else None
    reporter = RunReporter(engine, settings, run_id=job.run_id, project_id=job.project_id, parent_id=job.base_id,
                           bar=bar)
    status, error, result = "failed", None, None
    try:
        base = load_checkpoint(job.base_path, map_location=model_device(settings), expected_classes=job.classes)
        result = fine_tune(base.model, job.data, job.config, out_dir=settings.checkpoint_dir, parent_sha=base.sha256,
                           on_event=reporter, should_stop=cancel.is_set)
        status = "succeeded"
    except TrainingCancelled:
        status = "cancelled"
    except Exception as exc:  # the run row must say what happened, whatever it was
        error = f"{exc.__class__.__name__}: {exc}"
        log.error("training run %d failed: %s\n%s", job.run_id, error, traceback.format_exc())
    finally:
        if bar is not None:
            bar.close()
    prune_dropped_checkpoints(engine, settings, job.run_id)
    summary = _summarise(engine, settings, job, result, status, error, time.monotonic() - started)
    reporter.finish(status, message=summary.get("message", ""), error=error)
    return summary


def _progress_bar(job: _Job) -> Any:
    from tqdm import tqdm

    return tqdm(total=None, desc=f"train {job.project_name}", unit="step", dynamic_ncols=True)


def _summarise(engine: Engine, settings: Settings, job: _Job, result: Any, status: str, error: str | None,
               seconds: float) -> dict[str, Any]:
    from services.evaluation import evaluate_checkpoint
    from store.models_runs import Checkpoint as CheckpointRow
    from store.projects import get_project

    with session_scope(engine) as session:
        rows = session.query(CheckpointRow).filter(CheckpointRow.run_id == job.run_id).order_by(CheckpointRow.id).all()
        kept = [str(checkpoint_file(settings, r.path)) for r in rows]
        out: dict[str, Any] = {"run_id": job.run_id, "status": status, "checkpoints": kept, "best_checkpoint": None,
                               "best_checkpoint_id": None, "seconds": round(seconds, 2), "error": error}
        if status != "succeeded" or result is None or result.best is None:
            return out
        best_path = Path(result.best["path"])
        best = next((r for r in rows if checkpoint_file(settings, r.path).resolve() == best_path.resolve()), None)
        project = get_project(session, job.project_id)
        base = get_checkpoint(session, job.base_id)
        # Before/after are measured as `evaluate` measures (explanations at the input, where a person reads
        # them), whatever layer was guided; GradCAM has no input-level map, so it stays at its layer.
        layer = job.config.layer if job.config.attribution == "gradcam" else "input"
        out["before"] = evaluate_checkpoint(session, settings, project, base, split=job.eval_split,
                                            attribution=job.config.attribution, layer=layer)
        if best is not None:
            out["after"] = evaluate_checkpoint(session, settings, project, best, split=job.eval_split,
                                               attribution=job.config.attribution, layer=layer)
            out.update(best_checkpoint=str(best_path), best_checkpoint_id=best.id)
        out["message"] = _outcome(out)
    return out


def _outcome(out: dict[str, Any]) -> str:
    before, after = out.get("before") or {}, out.get("after") or {}
    if not after:
        return "finished"
    parts = []
    for key in ("accuracy", "epg", "worst_group_accuracy"):
        if before.get(key) is not None and after.get(key) is not None:
            parts.append(f"{key} {before[key]:.3f} → {after[key]:.3f}")
    return "done: " + ", ".join(parts)
