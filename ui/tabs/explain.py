"""The Explain tab: prediction and explanation overlay of the selected image."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.deps import AppDeps
from ui.handlers import explain, explore


def build_explain_tab(deps: AppDeps, project: gr.Dropdown, image_id: gr.Number) -> dict[str, Any]:
    with gr.Row():
        method = gr.Dropdown(list(explain.METHODS), value="B-cos", label="Method", elem_id="explain-method")
        layer = gr.Dropdown(list(explain.LAYERS), value="Input", label="Layer")
        klass = gr.Dropdown([explain.PREDICTED], value=explain.PREDICTED, label="Class explained",
                            allow_custom_value=True, elem_id="explain-class")
        # single-label projects: the class logit's map or the decision's (the score the one click guides there)
        score = gr.Radio(list(explain.SCORES), value=explain.CLASS_LOGIT, label="Explained score",
                         elem_id="explain-score")
        outline = gr.Checkbox(False, label="Outline the ground truth (label and boxes)", elem_id="explain-outline")
    info = gr.Markdown("Select an image in Explore.", elem_id="explain-info")
    with gr.Row(equal_height=True):
        # no floating labels on the pictures: they would cover the top-left corner, where shortcuts often sit
        with gr.Column():
            gr.Markdown("**Explanation overlay** (legend under the image)")
            overlay = gr.Image(show_label=False, format="png", type="filepath", height=500, elem_id="overlay")
        with gr.Column():
            gr.Markdown(f"**{explain.COLOUR_LABEL}**")
            colour = gr.Image(show_label=False, format="png", type="filepath", height=500, elem_id="colour")
        scores = gr.Label(label="Prediction", num_top_classes=5)
    inputs = [project, image_id, method, layer, klass, outline, score]
    outputs = [overlay, colour, scores, info]

    def run(*values: Any) -> tuple:
        if not values[1]:
            return None, None, None, "Select an image in Explore (click a tile)."
        return explain.explain_image(deps, *values)

    gr.on([image_id.change, layer.change, klass.change, outline.change, score.change], run, inputs, outputs,
          api_name="explain", trigger_mode="always_last")
    # Only the layers where the method means something (GradCAM: Mid3/Final), then explain.
    method.change(explain.layer_choices, [method, layer], layer, api_visibility="private").then(
        run, inputs, outputs, api_visibility="private", trigger_mode="always_last")

    def classes(name: str) -> tuple[Any, Any]:
        labels = explore.project_filters(deps, name)["class"][1:] if name else []
        picked = gr.update(choices=[explain.PREDICTED, *labels], value=explain.PREDICTED)
        return picked, explain.score_choices(deps, name)

    project.change(classes, project, [klass, score], api_visibility="private")
    # "load": the class list (and the decision choice) on the first page load; "select": boxes may have changed
    return {"method": method, "layer": layer, "load": (classes, [project], [klass, score]),
            "select": (run, inputs, outputs)}
