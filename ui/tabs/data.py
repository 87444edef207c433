"""The Data tab: import your own images (a zip or a folder on the server) into a project; its image size; a
warning with a button when its validation split is too small to judge a run."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.deps import AppDeps
from ui.handlers import data

LAYOUT_HELP = """**Import your own data** into a new or existing project: all or nothing, and importing again adds only
what is new. What the zip or folder may hold:
- **class folders** `<class>/<image>` (a split is made per class: val and test fractions, seeded) or
  `<split>/<class>/<image>` with split `train`, `val`, `test`;
- a **VOC** tree (`Annotations/`, `JPEGImages/`) or a **COCO** JSON beside its images (boxes of Label Studio, CVAT);
- optional `groups.csv` (`file,group`) and `boxes.csv` (`file,label,x0,y0,x1,y1`, pixels; `file` is the path under
  the data folder, e.g. `cat/001.jpg`), in the data or uploaded below."""
NOT_IMPORTED = "Nothing imported (no file or row was written):\n"


def build_data_tab(deps: AppDeps, project: gr.Dropdown) -> tuple[Any, list[Any]]:
    """Import panel and image size; an import refreshes the project list and selects the project imported into.

    Returns `(fill, outputs)` the caller runs on page load with the project (the image size and the validation
    warning shown)."""
    gr.Markdown(LAYOUT_HELP)
    with gr.Row():
        with gr.Column(scale=3):
            archive = gr.File(label="Data set (.zip)", file_types=[".zip"], type="filepath", elem_id="import-zip",
                              height=120)
            folder = gr.Textbox(label="…or a folder on the server", placeholder="photos",
                                info=data.folder_help(deps), elem_id="import-folder")
            with gr.Row():
                groups = gr.File(label="groups.csv (optional)", file_types=[".csv"], type="filepath",
                                 elem_id="import-groups", height=130)
                boxes = gr.File(label="boxes.csv (optional)", file_types=[".csv"], type="filepath",
                                elem_id="import-boxes", height=130)
        with gr.Column(scale=2):
            name = gr.Textbox(label="Import into project", elem_id="import-project",
                              placeholder="a new or existing name (default: the zip's name)")
            task = gr.Dropdown(data.TASK_CHOICES, value="auto", label="Task", elem_id="import-task")
            with gr.Row():
                val = gr.Number(data.DEFAULT_FRACTION, label="Val fraction", minimum=0, maximum=0.9, step=0.05,
                                elem_id="import-val", min_width=90)
                test = gr.Number(data.DEFAULT_FRACTION, label="Test fraction", minimum=0, maximum=0.9, step=0.05,
                                 elem_id="import-test", min_width=90)
                seed = gr.Number(0, label="Split seed", precision=0, minimum=0, elem_id="import-seed", min_width=90)
            run = gr.Button("Import", variant="primary", elem_id="import-run")
    report = gr.Textbox(label="Import report", interactive=False, lines=4, max_lines=30, elem_id="import-report")
    with gr.Row(equal_height=True):
        val_warning = gr.Markdown(visible=False, elem_id="data-val-warning", latex_delimiters=[])
        carve = gr.Button(data.CARVE_BUTTON, visible=False, elem_id="carve-validation", scale=0, min_width=260)
    carve_status = gr.Markdown(elem_id="carve-validation-status", latex_delimiters=[])
    gr.Markdown("**Image size** of the selected project: the side of the square its images are resized to for "
                "training, evaluation and explanations (a multiple of 32, from 32 to 1,024; imports infer it).")
    with gr.Row(equal_height=True):
        size = gr.Number(label="Image size (px)", precision=0, minimum=32, maximum=1024, step=32,
                         elem_id="image-size", scale=1, min_width=140)
        apply = gr.Button("Apply", elem_id="image-size-apply", scale=0, min_width=100)
        size_status = gr.Markdown(elem_id="image-size-status")

    def do_import(request: gr.Request, *values: Any) -> tuple:  # gradio passes the request where it is annotated
        try:
            text, names, imported, image_size = data.run_import(deps, *values, request=request)
        except gr.Error as exc:  # the whole list stays on the page; the toast points to it
            gr.Warning("Nothing imported: the import report says why.")
            return NOT_IMPORTED + str(exc.message), gr.update(), gr.update()
        return text, gr.update(choices=names, value=imported), image_size

    def fill(current: str | None) -> tuple:
        return (data.image_size(deps, current) if current else None, *data.validation_status(deps, current))

    run.click(do_import, [archive, folder, name, task, val, test, seed, groups, boxes], [report, project, size],
              api_name="import_data", concurrency_limit=1)
    filled = [size, val_warning, carve]
    project.change(fill, project, filled, api_visibility="private", show_progress="hidden")
    apply.click(lambda n, s: data.apply_image_size(deps, n, s), [project, size], size_status,
                api_name="set_image_size")
    carve.click(lambda n: data.carve_validation(deps, n), project, carve_status, api_name="carve_validation",
                concurrency_limit=1).then(fill, project, filled, api_visibility="private", show_progress="hidden")
    return fill, filled
