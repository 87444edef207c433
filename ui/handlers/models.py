"""Models: checkpoints with lineage; a new model (from scratch or a weights file); activate; the B-cosification
recovery run; registering a checkpoint file."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from typing import Any

import gradio as gr
import pandas as pd

from core.train import CheckpointError, load_checkpoint
from services import catalog, checkpoints, model_factory
from services import compare as comparison
from ui.deps import AppDeps
from ui.handlers.common import uploaded_file, user_errors

log = logging.getLogger(__name__)

MODEL_COLUMNS = ["id", "active", "arch", "created", "parent", "run", "accuracy", "worst group", "epg", "measured on",
                 "note", "file"]
RECOVERY_EPOCHS = model_factory.DEFAULT_RECOVERY_EPOCHS


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


def architecture_choices() -> list[tuple[str, str]]:
    """`(label, name)` of every architecture `new_model` builds (core/methods.py is the registry)."""
    return [(label, name) for name, label in model_factory.architecture_choices().items()]


def _seed(value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not number.is_integer() or number < 0:
        raise gr.Error(f"Seed {value!r}: give a whole number, 0 or more.")
    return int(number)


def _after_new(made: model_factory.NewModel) -> str:
    """What to do next with a model `new_model` made."""
    if made.source == "torchvision":
        return ("A B-cosified model is inaccurate until trained: press Recover accuracy (B-cosification recipe) "
                "to fine-tune it without boxes.")
    if made.source == "scratch":
        return "Train it without boxes first (Fine-tune, λ 0, or Recover accuracy) before guiding it."
    return "Measure or fine-tune it next (Fine-tune)."


def new_model(deps: AppDeps, project: str, arch: str, file: Any, seed: Any, always_activate: bool = False
              ) -> tuple[pd.DataFrame, str, int]:
    """Build a model of `arch` for the project's classes, from scratch or from an uploaded weights file (B-cos
    v2 release, torchvision or Guidance Studio checkpoint; a head for other classes is replaced), register it
    and activate it when the project has no active model (or `always_activate`).

    Returns the table, what was loaded/replaced and whether it is active, and the new checkpoint's id."""
    if not project:
        raise gr.Error("Pick a project first (top of the page), or import one in the Data tab.")
    weights = uploaded_file(file) if file else None
    with user_errors():
        made = model_factory.new_model(deps.engine, deps.settings, project, arch, weights, seed=_seed(seed),
                                       activate=True if always_activate else None)
    active = ("It is now the active model." if made.activated else
              "Not activated: the project has an active model (select this one and press Activate to use it).")
    message = f"New model: checkpoint #{made.checkpoint.id}. {made.message}. {active} {_after_new(made)}"
    return list_models(deps, project), message, made.checkpoint.id


ACTIVATE_LABEL = "Activate"


def activate(deps: AppDeps, project: str, checkpoint: Any, armed: Any = None) -> tuple[pd.DataFrame, str, Any, Any]:
    """Make the selected checkpoint the project's active model (explanations, training and evaluation use it):
    (table, status, armed, the button). One worse than the active model on accuracy/F1 or worst group asks first:
    the status says by how much and a second click on the same checkpoint activates it."""
    if not project:
        raise gr.Error("Pick a project first (top of the page).")
    with user_errors():
        worse = comparison.worse_than_active(deps.engine, project, checkpoint)
    if worse and str(armed) != str(checkpoint):
        gr.Warning(f"Not activated: {worse}. Click again to activate it anyway.")
        return (gr.skip(), f"Not activated yet: {worse}. Press \"Activate anyway\" to use it all the same.",
                str(checkpoint), gr.update(value="Activate anyway", variant="stop"))
    with user_errors():
        info = checkpoints.activate(deps.engine, project, checkpoint)
    return list_models(deps, project), (f"Checkpoint #{info.id} ({info.arch}) is now the active model: Explain, "
                                        "Fine-tune and evaluation use it."), None, \
        gr.update(value=ACTIVATE_LABEL, variant="primary")


def recover(deps: AppDeps, project: str, checkpoint: Any, epochs: Any) -> str:
    """Start the B-cosification recipe on the selected checkpoint: a fine-tune without boxes (λ 0, lr 1e-4)."""
    if not project:
        raise gr.Error("Pick a project first (top of the page).")
    if isinstance(epochs, float) and epochs.is_integer():
        epochs = int(epochs)
    with user_errors():
        ref = checkpoints.checkpoint_id(checkpoint)
        launched = model_factory.launch_recovery(deps.engine, deps.settings, project, ref,
                                                 model_factory.DEFAULT_RECOVERY_EPOCHS if epochs is None else epochs)
    return (f"Recovery run {launched.run_id} of checkpoint #{ref} started (no boxes, λ 0, lr 1e-4): follow it in the "
            "Fine-tune tab; its checkpoints appear here when it is done.")


def selected_checkpoint(table: pd.DataFrame, row: int | None) -> int | None:
    """The id in row `row` of the table (a click on any cell of it), or None."""
    if row is None or table is None or len(table) == 0 or not 0 <= row < len(table):
        return None
    value = table.iloc[row]["id"]
    return int(value) if str(value).strip().isdigit() else None
