"""Explain: prediction scores and the explanation overlay of the selected image under a checkpoint."""

from __future__ import annotations

import gradio as gr
from sqlalchemy.orm import Session

from core.data import ImageLoadError
from core.train import CheckpointError
from services.explanations import ExplainRequest, Explanation
from store.models import Class, Image, Project
from store.models_runs import Checkpoint
from store.paths import resolve_image_path
from store.runs import get_checkpoint
from ui.data.images import active_checkpoint
from ui.deps import AppDeps
from ui.handlers.common import require_image, require_project, transaction

METHODS = {"B-cos": "bcos", "Input×Gradient": "ixg", "GradCAM": "gradcam", "Integrated Gradients": "intgrad"}
LAYERS = {"Input": "input", "Mid1": "mid1", "Mid2": "mid2", "Mid3": "mid3", "Final": "final"}
PREDICTED = "(predicted class)"


def class_names(session: Session, project: Project) -> list[str]:
    """The project's classes in model output order."""
    return [c.name for c in session.query(Class).filter(Class.project_id == project.id).order_by(Class.index)]


def explain_request(deps: AppDeps, session: Session, project: Project, image: Image,
                    checkpoint: Checkpoint) -> ExplainRequest:
    """Everything the explanation service needs, read inside the caller's transaction."""
    return ExplainRequest(
        image_id=image.id, image_path=resolve_image_path(image.path, deps.data_dir), image_size=project.image_size,
        classes=class_names(session, project), multi_label=project.task == "multi_label",
        checkpoint_path=checkpoint.path, checkpoint_sha=checkpoint.sha256,
    )


def resolve_checkpoint(session: Session, project: Project, checkpoint_id: int | None) -> Checkpoint:
    """The given checkpoint of the project, or its active one; `gr.Error` when there is none."""
    if checkpoint_id:
        checkpoint = get_checkpoint(session, int(checkpoint_id))
        if checkpoint.project_id != project.id:
            raise gr.Error(f"checkpoint {checkpoint_id} belongs to another project; pick one of {project.name!r}")
        return checkpoint
    checkpoint = active_checkpoint(session, project.id)
    if checkpoint is None:
        raise gr.Error(f"Project {project.name!r} has no active model: register or activate a checkpoint in Models.")
    return checkpoint


def compute(deps: AppDeps, request: ExplainRequest, method: str, layer: str, class_name: str) -> Explanation:
    """The (cached) explanation of `class_name`, or of the predicted class for "(predicted class)"."""
    method_key, layer_key = METHODS.get(method, method), LAYERS.get(layer, layer)
    try:
        if class_name in (None, "", PREDICTED):
            predicted = deps.explanations.predicted_class(request)
            return deps.explanations.explain(request, method_key, layer_key, predicted)
        if class_name not in request.classes:
            raise gr.Error(f"{class_name!r} is not a class of this project; choose one of {', '.join(request.classes)}")
        return deps.explanations.explain(request, method_key, layer_key, request.classes.index(class_name))
    except (CheckpointError, ImageLoadError, ValueError) as exc:
        raise gr.Error(f"Cannot explain this image: {exc}") from exc


def explain_image(deps: AppDeps, project: str, image_id: int | None, method: str, layer: str,
                  class_name: str) -> tuple[str, str | None, dict[str, float], str]:
    """Explain the selected image with the active model.

    Returns `(overlay PNG path, B-cos colour PNG path or None, {class: probability}, info markdown)`.
    """
    with transaction(deps) as session:
        proj = require_project(session, project)
        image = require_image(session, proj, image_id)
        checkpoint = resolve_checkpoint(session, proj, None)
        request = explain_request(deps, session, proj, image, checkpoint)
        ckpt_label = f"checkpoint #{checkpoint.id} ({checkpoint.arch})"
    result = compute(deps, request, method, layer, class_name)
    explained = request.classes[result.key.class_index]
    info = (f"Image **#{request.image_id}** · {ckpt_label} · explaining **{explained}** with {method} at {layer}.")
    if result.colour_path is None and METHODS.get(method, method) == "bcos":
        info += "  \n_No colour explanation: it needs a native B-cos model._"
    colour = str(result.colour_path) if result.colour_path else None
    return str(result.overlay_path), colour, result.scores, info
