"""The Annotate tab: the box editor with history, undo, proposals and image stepping."""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio_image_annotation import image_annotator

from ui.deps import AppDeps
from ui.handlers import annotate, explore
from ui.handlers.common import author_of


def build_annotate_tab(deps: AppDeps, project: gr.Dropdown, image_id: gr.Number, explain_widgets: dict) -> None:
    title = gr.Markdown("Select an image in Explore, then come here to draw boxes.")
    with gr.Row():
        prev_btn = gr.Button("◀ Previous [", elem_id="prev-image", size="sm")
        next_btn = gr.Button("Next ] ▶", elem_id="next-image", size="sm")
        propose_btn = gr.Button("Propose from explanation (Alt+P)", elem_id="propose-box", size="sm")
        undo_btn = gr.Button("Undo last change", elem_id="undo-boxes", size="sm")
        save_btn = gr.Button("Save boxes (Ctrl+S)", variant="primary", elem_id="save-boxes")
    status = gr.Textbox(label="Status", interactive=False, elem_id="annot-status")
    editor = image_annotator(label="Boxes (c: create, d: drag, e: edit, Delete: remove)", elem_id="annot",
                             label_list=[], image_type="filepath", sources=[], show_clear_button=False,
                             show_remove_button=True, height=520)
    history = gr.Dataframe(headers=annotate.HISTORY_COLUMNS, label="History (newest first)", interactive=False,
                           max_height=240)
    snapshot = gr.State(None)
    loaded = [editor, snapshot, history, title]

    def load(name: str, image: Any) -> tuple:
        if not image:
            return None, None, None, "Select an image in Explore, then come here to draw boxes."
        value, snap, frame, text = annotate.load_annotation(deps, name, image)
        labels = explore.project_filters(deps, name)["class"][1:]
        colours = list(annotate.label_colours(labels).values())
        return gr.update(value=value, label_list=labels, label_colors=colours), snap, frame, text

    image_id.change(load, [project, image_id], loaded, api_name="load_boxes")

    def save(name: str, snap: Any, value: Any, request: gr.Request) -> tuple:
        return annotate.save_annotation(deps, name, snap, value, author_of(request))

    def undo(name: str, snap: Any, request: gr.Request) -> tuple:
        return annotate.undo_annotation(deps, name, snap, author_of(request))

    save_btn.click(save, [project, snapshot, editor], [*loaded, status], api_name="save_boxes")
    undo_btn.click(undo, [project, snapshot], [*loaded, status], api_name="undo_boxes")
    propose_btn.click(lambda n, i, v, m, la: annotate.propose_from_explanation(deps, n, i, v, m, la),
                      [project, image_id, editor, explain_widgets["method"], explain_widgets["layer"]],
                      [editor, status], api_name="propose_box")
    prev_btn.click(lambda n, i: annotate.step_image(deps, n, i, -1), [project, image_id], image_id,
                   api_name="prev_image")
    next_btn.click(lambda n, i: annotate.step_image(deps, n, i, 1), [project, image_id], image_id,
                   api_name="next_image")
