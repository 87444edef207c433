"""Models: checkpoints with lineage, registering a checkpoint file, B-cosifying a torchvision ResNet."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from typing import Any

import gradio as gr
import pandas as pd

from core.train import CheckpointError, file_sha256, load_checkpoint, save_checkpoint
from services import catalog, checkpoints
from ui.deps import AppDeps
from ui.handlers.common import uploaded_file, user_errors

log = logging.getLogger(__name__)

MODEL_COLUMNS = ["id", "active", "arch", "created", "parent", "run", "accuracy", "worst group", "epg", "measured on",
                 "note", "file"]
TORCHVISION_ARCHS = ("resnet18", "resnet50")


def _metric(metrics: Mapping[str, Any], name: str) -> float | None:
    value = (metrics or {}).get(name)
    return round(float(value), 4) if isinstance(value, int | float) else None


def list_models(deps: AppDeps, project: str) -> pd.DataFrame:
    """The project's checkpoints, newest first, with parent (lineage), run and headline metrics."""
    with user_errors():
        summaries = checkpoints.model_summaries(deps.engine, project)
    rows = []
    for s in summaries:
        c, metrics = s.checkpoint, s.metrics
        rows.append({"id": c.id, "active": "●" if c.active else "", "arch": c.arch,
                     "created": c.created.strftime("%Y-%m-%d %H:%M"), "parent": c.parent_id or "",
                     "run": c.run_id or "", "accuracy": _metric(metrics, "accuracy"),
                     "worst group": _metric(metrics, "worst_group_accuracy"), "epg": _metric(metrics, "epg"),
                     "measured on": s.measured_on, "note": c.note, "file": c.file_name})
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def _classes(deps: AppDeps, project: str) -> list[str]:
    with user_errors():
        return catalog.class_names(deps.engine, project)


def register_file(deps: AppDeps, project: str, file: Any, note: str) -> tuple[pd.DataFrame, str]:
    """Check a Guidance Studio checkpoint fits the project, copy it into the data dir and register it."""
    upload = uploaded_file(file)
    classes = _classes(deps, project)
    try:
        loaded = load_checkpoint(upload, expected_classes=classes)
    except CheckpointError as exc:
        raise gr.Error(f"Not registered: {exc}") from exc
    target = deps.settings.checkpoint_dir / f"{loaded.arch}-{loaded.sha256[:10]}.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(upload, target)
    with user_errors():
        row = checkpoints.register_file(deps.engine, deps.settings, project, target, sha256=loaded.sha256,
                                        arch=loaded.arch, parent_sha=loaded.parent, metrics=loaded.metrics,
                                        note=note or f"registered from {upload.name}")
    return list_models(deps, project), f"Registered checkpoint #{row.id} ({loaded.arch})."


def convert_torchvision(deps: AppDeps, project: str, arch: str, file: Any,
                        progress: Callable[[float, str], None] | None = None) -> tuple[pd.DataFrame, str]:
    """B-cosify a torchvision ResNet weights file for the project's classes and register it (not active).

    The converted model needs fine-tuning before it is accurate (docs/science.md §2).
    """
    from core.bcos import bcosify, load_torchvision_weights  # heavy: torchvision

    report = progress or (lambda _f, _m: None)
    if arch not in TORCHVISION_ARCHS:
        raise gr.Error(f"Choose one of {', '.join(TORCHVISION_ARCHS)} (got {arch!r}).")
    upload = uploaded_file(file)
    classes = _classes(deps, project)
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
    with user_errors():
        row = checkpoints.register_file(deps.engine, deps.settings, project, path, sha256=file_sha256(path),
                                        arch=model.arch,
                                        note=f"B-cosified torchvision {arch} from {upload.name}; fine-tune before use")
    report(1.0, "done")
    return list_models(deps, project), (f"Converted to checkpoint #{row.id} (bcosified_{arch}). "
                                        "Fine-tune it before activating: B-cosification changes its outputs.")
