"""The Explore tab: a paged, filterable gallery of the project's images."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.deps import AppDeps
from ui.handlers import explore


def build_explore_tab(deps: AppDeps, project: gr.Dropdown, image_id: gr.Number) -> dict[str, Any]:
    with gr.Row():
        split = gr.Dropdown([explore.ANY], value=explore.ANY, label="Split", scale=1, allow_custom_value=True)
        klass = gr.Dropdown([explore.ANY], value=explore.ANY, label="Class", scale=1, allow_custom_value=True)
        group = gr.Dropdown([explore.ANY], value=explore.ANY, label="Group", scale=2, allow_custom_value=True)
        annotated = gr.Dropdown(["any", "annotated", "not annotated"], value="any", label="Boxes", scale=1)
        wrong = gr.Checkbox(label="Wrong predictions only", scale=1)
        sort = gr.Dropdown(list(explore.SORT_LABELS), value="Name", label="Sort by", scale=2)
    with gr.Row():
        prev_page = gr.Button("◀ Previous page", size="sm")
        page = gr.Number(0, label="Page (0-based)", precision=0, minimum=0, visible=False)
        summary = gr.Markdown(elem_id="gallery-summary")
        next_page = gr.Button("Next page ▶", size="sm")
    gallery = gr.Gallery(label="Images", columns=8, height=560, allow_preview=False, elem_id="gallery",
                         object_fit="contain", format="png")
    ids = gr.State([])
    inputs = [project, split, klass, group, annotated, wrong, sort, page]
    outputs = [gallery, summary, page, ids]

    def refresh(*values: Any) -> tuple:
        return explore.gallery_page(deps, *values)

    def turn(step: int) -> Any:
        return lambda *v: explore.gallery_page(deps, *v[:-1], int(v[-1] or 0) + step)

    for widget in (split, klass, group, annotated, wrong, sort):
        widget.change(lambda *v: explore.gallery_page(deps, *v[:-1], 0), inputs, outputs)
    prev_page.click(turn(-1), inputs, outputs)
    next_page.click(turn(1), inputs, outputs)
    def pick(ids_: list[int], evt: gr.SelectData) -> int | None:
        return ids_[evt.index] if ids_ and evt.index is not None and evt.index < len(ids_) else None

    gallery.select(pick, [ids], image_id, api_visibility="private")

    def filters(name: str) -> tuple:
        choices = explore.project_filters(deps, name) if name else {"split": [], "class": [], "group": []}
        return tuple(gr.update(choices=choices[k] or [explore.ANY], value=explore.ANY)
                     for k in ("split", "class", "group"))

    gr.on([project.change], filters, project, [split, klass, group], api_name="filters").then(
        refresh, inputs, outputs, api_name="gallery")
    return {"refresh": refresh, "inputs": inputs, "outputs": outputs}
