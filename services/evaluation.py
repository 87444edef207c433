"""Evaluating a registered checkpoint on a split and recording the results in the store.

Under torchrun every rank evaluates its shard and gets the whole split's figures (core/train/evaluate.py);
only rank 0 writes the evaluation rows. `announce_run_evaluations` / `follow_run_evaluations` let the other
ranks of a training run take their part in rank 0's before/after evaluations.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from sqlalchemy.orm import Session

from core import methods
from core.train import distributed as dist_utils
from core.train import load_checkpoint
from core.train.evaluate import EvalResult, evaluate
from core.train.loop import TrainData, build_loader, to_device
from services.database import Database
from services.datasets import group_names, split_records
from services.models import checkpoint_file, model_device
from services.settings import Settings
from store.db import session_scope
from store.models import Project
from store.models_runs import Checkpoint
from store.projects import get_project, list_classes
from store.runs import EvaluationImageResult, get_checkpoint, record_evaluation

log = logging.getLogger(__name__)

SUMMARY_KEYS = ("accuracy", "f1", "epg", "iou", "group_accuracy", "worst_group_accuracy", "n_images")
# What each EPG of an evaluation measures (docs/science.md §10): the class logit's map, as in the paper, and on
# single-label projects the decision's map (`logit_t − max_{c≠t} logit_c`), which the one click guides there.
# Compare's rows and `evaluate --json` (`epg_labels`) name them so.
EPG_LABELS = {"epg": "EPG (class logit)", "epg_decision": "EPG (decision: class vs runner-up)"}


def default_attribution(model: torch.nn.Module) -> str:
    """B-cos contributions for B-cos models, Input×Gradient otherwise."""
    return methods.default_method(bool(getattr(model, "is_bcos", False)))


def summary(metrics: dict[str, Any], *, split: str, checkpoint: Checkpoint) -> dict[str, Any]:
    """The `evaluate --json` object: metrics plus the split and the checkpoint's id and path. Single-label
    evaluations also carry `epg_decision`; `epg_labels` says what each EPG key measures."""
    out = {key: metrics.get(key) for key in SUMMARY_KEYS}
    if "epg_decision" in metrics:  # single-label evaluations
        out["epg_decision"] = metrics["epg_decision"]
    out["epg_labels"] = {key: label for key, label in EPG_LABELS.items() if key in out}
    out.update(split=split, checkpoint={"id": checkpoint.id, "path": checkpoint.path, "sha256": checkpoint.sha256})
    return out


def evaluate_checkpoint(session: Session, settings: Settings, project: Project, checkpoint: Checkpoint, *,
                        split: str = "test", attribution: str | None = None, layer: str = "input",
                        batch_size: int = 64) -> dict[str, Any]:
    """Evaluate `checkpoint` on `split` of `project`, store it with per-image rows, return the summary.

    Raises ValueError when the split is empty and `CheckpointError` when the file does not fit the project.
    Under torchrun every rank must call it (each evaluates its shard); only rank 0 stores the rows.
    """
    classes = [c.name for c in list_classes(session, project.id)]
    device = dist_utils.local_device(model_device(settings))
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
                      attribution=method, layer=layer, group_names=groups, decision=not data.multi_label)
    metrics = {**result.metrics, "attribution": method, "layer": layer}
    if dist_utils.is_rank0():
        record_evaluation(session, checkpoint_id=checkpoint.id, split=split, metrics=metrics, results=_rows(result))
        log.info("evaluated %s on %s: %s", checkpoint.path, split,
                 ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, float)))
    return summary(metrics, split=split, checkpoint=checkpoint)


# What rank 0 of a training run measures after training, as told to the other ranks.
NOTHING, BEFORE_ONLY = -1, 0


def announce_run_evaluations(settings: Settings, best_id: int | None, *, evaluating: bool) -> None:
    """Rank 0 of a run: tell the other ranks what it evaluates now (nothing; the base only; the base, then
    checkpoint `best_id`). A no-op outside torchrun."""
    code = NOTHING if not evaluating else BEFORE_ONLY if best_id is None else best_id
    dist_utils.broadcast_int(code, dist_utils.local_device(model_device(settings)))


def follow_run_evaluations(engine: Database, settings: Settings, *, project_id: int, base_id: int, split: str,
                           attribution: str) -> None:
    """A rank other than 0 of a run: evaluate its shard of what rank 0 announces (rank 0 stores the rows)."""
    code = dist_utils.broadcast_int(NOTHING, dist_utils.local_device(model_device(settings)))
    if code == NOTHING:
        return
    layer = methods.evaluation_layer(attribution)
    with session_scope(engine) as session:
        project = get_project(session, project_id)
        for checkpoint_id in (base_id, code) if code != BEFORE_ONLY else (base_id,):
            evaluate_checkpoint(session, settings, project, get_checkpoint(session, checkpoint_id), split=split,
                                attribution=attribution, layer=layer)


def _rows(result: EvalResult) -> list[EvaluationImageResult]:
    return [EvaluationImageResult(image_id=r["key"], correct=r["correct"], score=r["score"], epg=r["epg"],
                                  iou=r["iou"], predicted_index=r["predicted"]) for r in result.per_image]
