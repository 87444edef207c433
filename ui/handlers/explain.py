"""Explain: prediction scores and the explanation overlay of the selected image under a checkpoint."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core import methods
from core.data import ImageLoadError
from core.train import CheckpointError
from services import catalog
from services.explain_requests import ExplainTarget, explain_target
from services.explanations import ExplainRequest, Explanation, explained_score
from ui.deps import AppDeps
from ui.handlers.common import user_errors

METHODS = {method.label: method.name for method in methods.METHODS.values()}  # label shown -> registry name
LAYERS = {layer.label: layer.name for layer in methods.LAYERS.values()}
PREDICTED = "(predicted class)"
COLOUR_LABEL = "B-cos colour explanation"
# The score a map explains: the class logit, or on single-label projects the decision (docs/science.md §10), the
# score the one-click fine-tune guides there (TrainConfig target "auto").
CLASS_LOGIT = "class logit"
DECISION = "decision (class vs the runner-up)"
SCORES = (CLASS_LOGIT, DECISION)


def layer_choices(method: str, layer: str) -> dict[str, Any]:
    """The layer dropdown for `method`: its meaningful layers only, keeping `layer` when it is one of them."""
    info = methods.METHODS[METHODS.get(method, method)]
    labels = [methods.LAYERS[name].label for name in info.layers]
    return gr.update(choices=labels, value=layer if layer in labels else labels[-1])


def score_choices(deps: AppDeps, project: str | None) -> dict[str, Any]:
    """The explained-score choice for `project`: class logit or decision on single-label projects; hidden (the
    class logit) on multi-label ones, whose sigmoid logits make no decision between classes."""
    multi_label = False
    if project:
        with user_errors():
            multi_label = catalog.get_project(deps.engine, project).multi_label
    return gr.update(choices=list(SCORES), value=CLASS_LOGIT, visible=not multi_label)


def target(deps: AppDeps, project: str, image_id: int | None, checkpoint: Any = None) -> ExplainTarget:
    """The selected image of `project` under `checkpoint` (an id; None: the active model), or a `gr.Error`
    saying what to pick."""
    with user_errors():
        return explain_target(deps.engine, project, image_id, data_dir=deps.data_dir, checkpoint=checkpoint)


def compute(deps: AppDeps, request: ExplainRequest, method: str, layer: str, class_name: str, *,
            decision: bool = False) -> Explanation:
    """The (cached) explanation of `class_name`, or of the predicted class for "(predicted class)"; with
    `decision` the map of that class's decision over the strongest other class instead of its logit's."""
    method_key, layer_key = METHODS.get(method, method), LAYERS.get(layer, layer)
    try:
        if class_name in (None, "", PREDICTED):
            predicted = deps.explanations.predicted_class(request)
            return deps.explanations.explain(request, method_key, layer_key, predicted, decision=decision)
        if class_name not in request.classes:
            raise gr.Error(f"{class_name!r} is not a class of this project; choose one of {', '.join(request.classes)}")
        return deps.explanations.explain(request, method_key, layer_key, request.classes.index(class_name),
                                         decision=decision)
    except (CheckpointError, ImageLoadError, ValueError) as exc:
        raise gr.Error(f"Cannot explain this image: {exc}") from exc


def colour_unavailable(method: str, arch: str) -> str:
    """Why the colour panel is empty for this method and architecture (what to choose instead)."""
    info = methods.METHODS[METHODS.get(method, method)]
    if not info.colour_view:
        return (f"No colour view for {info.label}. The B-cos colour explanation shows the colour each pixel's "
                "dynamic weights align with; only the B-cos method has it. Choose Method: B-cos.")
    model = methods.ARCHITECTURES[arch].label if arch in methods.ARCHITECTURES else arch
    return (f"No colour view for this model ({model}): it needs a native B-cos network, whose input is the "
            "6-channel [x, 1 − x] encoding.")


def explain_image(deps: AppDeps, project: str, image_id: int | None, method: str, layer: str,
                  class_name: str, outline: bool = False, score: str = CLASS_LOGIT
                  ) -> tuple[str, str, dict[str, float], str]:
    """Explain the selected image with the active model.

    Returns `(overlay PNG path, colour PNG path, {class: probability}, info markdown)`. The overlay carries
    its legend; with `outline` the image's labels and live boxes are drawn on it. The colour picture is the
    B-cos colour explanation, or a panel saying why there is none (the info says it too). `score`: one of
    `SCORES`; the decision is explained on single-label projects only (multi-label ones show the class logit).
    """
    chosen = target(deps, project, image_id)
    request, checkpoint = chosen.request, chosen.checkpoint
    result = compute(deps, request, method, layer, class_name, decision=score == DECISION and not request.multi_label)
    explained = (f"**{explained_score(result.key, request.classes, result.logits)}**" if result.key.contrast
                 else f"**{request.classes[result.key.class_index]}** (class logit)")
    info = (f"Image **#{request.image_id}** · checkpoint #{checkpoint.id} ({checkpoint.arch}) · "
            f"explaining {explained} with {method} at {layer}.")
    overlay = str(result.overlay_path)
    if outline:
        with user_errors():
            truth = catalog.image_truth(deps.engine, project, image_id)
        overlay = str(deps.explanations.outlined(result, truth.boxes, truth.box_labels, truth.labels))
        info += (f"  \nGround truth: **{', '.join(truth.labels) or '(no label)'}**, "
                 f"{len(truth.boxes)} box{'es' if len(truth.boxes) != 1 else ''} outlined in yellow.")
    if result.colour_path is not None:
        return overlay, str(result.colour_path), result.scores, info
    reason = colour_unavailable(method, checkpoint.arch)
    info += f"  \n_{reason}_"
    return overlay, str(deps.explanations.placeholder(reason)), result.scores, info
