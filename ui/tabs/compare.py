"""The Compare tab: two checkpoints side by side, activate, HTML report."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.deps import AppDeps
from ui.handlers import compare


def build_compare_tab(deps: AppDeps, project: gr.Dropdown) -> tuple[Any, list[Any]]:
    """Two checkpoints: metric table, per-image before|after, activate, HTML report."""
    with gr.Row():
        before = gr.Dropdown([], label="Before", elem_id="compare-before", allow_custom_value=True, scale=3)
        after = gr.Dropdown([], label="After", elem_id="compare-after", allow_custom_value=True, scale=3)
        sort = gr.Dropdown(list(compare.SORTS), value="Largest EPG gain", label="Sort images by", scale=2)
        refresh = gr.Button("Refresh checkpoints", size="sm", scale=1, min_width=120)
    with gr.Row():
        run = gr.Button("Compare", variant="primary", elem_id="compare-run")
        activate = gr.Button(compare.ACTIVATE_LABEL, elem_id="compare-activate")
        export = gr.Button("Export HTML report")
    note = gr.Markdown(elem_id="compare-note")
    metrics = gr.Dataframe(label="Metrics", interactive=False)
    pairs = gr.Gallery(label="Explanations: before | after", columns=4, height=420, format="png",
                       allow_preview=True)
    images = gr.Dataframe(label="Per-image results", interactive=False, max_height=300)
    report = gr.File(label="Report", visible=False)  # shown once exported: no empty drop zone

    def choices(name: str) -> tuple:
        if not name:
            return gr.update(choices=[]), gr.update(choices=[])
        options = compare.checkpoint_choices(deps, name)
        a, b = compare.default_pair(deps, name)
        return gr.update(choices=options, value=a), gr.update(choices=options, value=b)

    refresh.click(choices, project, [before, after], api_name="checkpoints")
    project.change(choices, project, [before, after], api_visibility="private")
    inputs = [project, before, after, sort]
    run.click(lambda *v: compare.compare_checkpoints(deps, *v), inputs, [metrics, images, pairs, note],
              api_name="compare")
    armed = gr.State(None)  # the worse checkpoint the user was warned about: a second click activates it
    activate.click(lambda n, b, a: compare.activate(deps, n, b, a), [project, after, armed], [note, armed, activate],
                   api_name="activate")
    after.change(lambda: (None, gr.update(value=compare.ACTIVATE_LABEL, variant="secondary")), None,
                 [armed, activate], api_visibility="private", show_progress="hidden")
    export.click(lambda *v: gr.update(value=compare.export_report(deps, *v), visible=True), inputs, report,
                 api_name="export_report")
    return choices, [before, after]
