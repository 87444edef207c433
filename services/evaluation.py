"""Evaluating a registered checkpoint on a split and recording the results in the store."""

from __future__ import annotations

import logging
from typing import Any

import torch
from sqlalchemy.orm import Session

from core import methods
from core.train import load_checkpoint
from core.train.evaluate import EvalResult, evaluate
from core.train.loop import TrainData, build_loader, to_device
from services.datasets import group_names, split_records
from services.models import checkpoint_file, model_device
from services.settings import Settings
from store.models import Project
from store.models_runs import Checkpoint
from store.projects import list_classes
from store.runs import EvaluationImageResult, record_evaluation

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("accuracy", "f1", "epg", "iou", "group_accuracy", "worst_group_accuracy", "n_images")


def default_attribution(model: torch.nn.Module) -> str:
    """B-cos contributions for B-cos models, Input×Gradient otherwise."""
    return methods.default_method(bool(getattr(model, "is_bcos", False)))


def summary(metrics: dict[str, Any], *, split: str, checkpoint: Checkpoint) -> dict[str, Any]:
    """The `evaluate --json` object: metrics plus the split and the checkpoint's id and path."""
    out = {key: metrics.get(key) for key in SUMMARY_KEYS}
    out.update(split=split, checkpoint={"id": checkpoint.id, "path": checkpoint.path, "sha256": checkpoint.sha256})
    return out


def evaluate_checkpoint(session: Session, settings: Settings, project: Project, checkpoint: Checkpoint, *,
                        split: str = "test", attribution: str | None = None, layer: str = "input",
                        batch_size: int = 64) -> dict[str, Any]:
    """Evaluate `checkpoint` on `split` of `project`, store it with per-image rows, return the summary.

    Raises ValueError when the split is empty and `CheckpointError` when the file does not fit the project.
    """
    classes = [c.name for c in list_classes(session, project.id)]
    device = model_device(settings)
    loaded = load_checkpoint(checkpoint_file(settings, checkpoint.path), map_location=device, expected_classes=classes)
    groups = group_names(session, project.id)
    records = split_records(session, settings, project, split, groups)
    if not records:
        raise ValueError(f"project {project.name!r} has no images in split {split!r}")
    data = TrainData(train=(), val=records, classes=classes, image_size=project.image_size,
                     multi_label=project.task == "multi_label", group_names=groups)
    loader = build_loader(records, data, batch_size, shuffle=False, seed=0, cache=False)
    method = attribution or default_attribution(loaded.model)
    result = evaluate(loaded.model, (to_device(b, device) for b in loader), multi_label=data.multi_label,
                      attribution=method, layer=layer, group_names=groups)
    metrics = {**result.metrics, "attribution": method, "layer": layer}
    record_evaluation(session, checkpoint_id=checkpoint.id, split=split, metrics=metrics, results=_rows(result))
    log.info("evaluated %s on %s: %s", checkpoint.path, split,
             ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, float)))
    return summary(metrics, split=split, checkpoint=checkpoint)


def _rows(result: EvalResult) -> list[EvaluationImageResult]:
    return [EvaluationImageResult(image_id=r["key"], correct=r["correct"], score=r["score"], epg=r["epg"],
                                  iou=r["iou"], predicted_index=r["predicted"]) for r in result.per_image]
