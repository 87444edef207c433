"""Models: checkpoints with lineage, registering a checkpoint file, B-cosifying a torchvision ResNet."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from sqlalchemy import select

from core.train import CheckpointError, file_sha256, load_checkpoint, save_checkpoint
from store.models_runs import Checkpoint, Evaluation
from store.paths import stored_path
from store.runs import list_checkpoints, register_checkpoint
from ui.deps import AppDeps
from ui.handlers.common import require_project, transaction

log = logging.getLogger(__name__)

MODEL_COLUMNS = ["id", "active", "arch", "created", "parent", "run", "accuracy", "worst group", "epg", "measured on",
                 "note", "file"]
TORCHVISION_ARCHS = ("resnet18", "resnet50")
MAX_UPLOAD_BYTES = 2 << 30


def _metric(metrics: dict[str, Any], name: str) -> float | None:
    value = (metrics or {}).get(name)
    return round(float(value), 4) if isinstance(value, int | float) else None


def _headline(session: Any, checkpoints: list[Checkpoint]) -> dict[int, tuple[dict[str, Any], str]]:
    """Per checkpoint: the metrics of its latest evaluation (test split preferred) and where they were measured;
    a checkpoint never evaluated falls back to the validation metrics its training run recorded."""
    found: dict[int, tuple[dict[str, Any], str]] = {}
    ids = [c.id for c in checkpoints]
    if ids:
        evaluations = session.scalars(select(Evaluation).where(Evaluation.checkpoint_id.in_(ids))
                                      .order_by(Evaluation.id)).all()
        for e in evaluations:  # later ones win; a test evaluation beats any other split
            if e.split == "test" or found.get(e.checkpoint_id, ({}, ""))[1] != "test":
                found[e.checkpoint_id] = (e.metrics or {}, e.split)
    for c in checkpoints:
        if c.id not in found and c.metrics and "accuracy" in c.metrics:
            found[c.id] = (c.metrics, "val (training)")
    return found


def list_models(deps: AppDeps, project: str) -> pd.DataFrame:
    """The project's checkpoints, newest first, with parent (lineage), run and headline metrics."""
    with transaction(deps) as session:
        checkpoints = list_checkpoints(session, require_project(session, project).id)
        headline = _headline(session, checkpoints)
        rows = []
        for c in checkpoints:
            metrics, where = headline.get(c.id, ({}, ""))
            rows.append({"id": c.id, "active": "●" if c.active else "", "arch": c.arch,
                         "created": c.created.strftime("%Y-%m-%d %H:%M"), "parent": c.parent_id or "",
                         "run": c.run_id or "", "accuracy": _metric(metrics, "accuracy"),
                         "worst group": _metric(metrics, "worst_group_accuracy"), "epg": _metric(metrics, "epg"),
                         "measured on": where, "note": c.note, "file": Path(c.path).name})
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def _upload_path(file: Any) -> Path:
    if not file:
        raise gr.Error("Choose a file to upload first.")
    path = Path(getattr(file, "name", file))
    if not path.is_file():
        raise gr.Error(f"The upload {path.name} did not arrive; upload it again.")
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise gr.Error(f"{path.name} is larger than 2 GiB; that is not a ResNet checkpoint.")
    return path


def register_file(deps: AppDeps, project: str, file: Any, note: str) -> tuple[pd.DataFrame, str]:
    """Check a Guidance Studio checkpoint fits the project, copy it into the data dir and register it."""
    upload = _upload_path(file)
    with transaction(deps) as session:
        proj = require_project(session, project)
        classes = [c.name for c in proj.classes]
    try:
        loaded = load_checkpoint(upload, expected_classes=classes)
    except CheckpointError as exc:
        raise gr.Error(f"Not registered: {exc}") from exc
    target = deps.settings.checkpoint_dir / f"{loaded.arch}-{loaded.sha256[:10]}.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(upload, target)
    with transaction(deps) as session:
        parent = session.scalar(select(Checkpoint.id).where(Checkpoint.project_id == proj.id,
                                                            Checkpoint.sha256 == (loaded.parent or "")))
        row = register_checkpoint(session, project_id=proj.id, path=stored_path(target, deps.data_dir),
                                  sha256=loaded.sha256, arch=loaded.arch, parent_id=parent,
                                  metrics=loaded.metrics, note=note or f"registered from {upload.name}")
        row_id = row.id
    return list_models(deps, project), f"Registered checkpoint #{row_id} ({loaded.arch})."


def convert_torchvision(deps: AppDeps, project: str, arch: str, file: Any,
                        progress: Callable[[float, str], None] | None = None) -> tuple[pd.DataFrame, str]:
    """B-cosify a torchvision ResNet weights file for the project's classes and register it (not active).

    The converted model needs fine-tuning before it is accurate (SCIENCE.md §2).
    """
    from core.bcos import bcosify, load_torchvision_weights  # heavy: torchvision

    report = progress or (lambda _f, _m: None)
    if arch not in TORCHVISION_ARCHS:
        raise gr.Error(f"Choose one of {', '.join(TORCHVISION_ARCHS)} (got {arch!r}).")
    upload = _upload_path(file)
    with transaction(deps) as session:
        proj = require_project(session, project)
        classes = [c.name for c in proj.classes]
    if not classes:
        raise gr.Error(f"Project {project!r} has no classes yet; import its labels first.")
    report(0.1, "reading weights")
    try:
        torchvision_model = load_torchvision_weights(arch, upload, num_classes=len(classes))
    except ValueError as exc:
        raise gr.Error(f"Not converted: {exc}") from exc
    report(0.5, "B-cosifying")
    model = bcosify(torchvision_model, arch=f"bcosified_{arch}")
    report(0.8, "saving")
    path = save_checkpoint(deps.settings.checkpoint_dir, model, classes=classes,
                           config={"source": f"torchvision {arch}", "file": upload.name})
    with transaction(deps) as session:
        row = register_checkpoint(session, project_id=proj.id, path=stored_path(path, deps.data_dir),
                                  sha256=file_sha256(path), arch=model.arch,
                                  note=f"B-cosified torchvision {arch} from {upload.name}; fine-tune before use")
        row_id = row.id
    report(1.0, "done")
    return list_models(deps, project), (f"Converted to checkpoint #{row_id} (bcosified_{arch}). "
                                        "Fine-tune it before activating: B-cosification changes its outputs.")
