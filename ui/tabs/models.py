"""The Models tab: checkpoints with lineage, register a file, B-cosify a torchvision network."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.deps import AppDeps
from ui.handlers import models


def build_models_tab(deps: AppDeps, project: gr.Dropdown) -> tuple[Any, list[Any]]:
    """Checkpoints with lineage, register a file, B-cosify a torchvision ResNet."""
    table = gr.Dataframe(headers=models.MODEL_COLUMNS, label="Checkpoints (parent = lineage)", interactive=False,
                         elem_id="models-table")
    status = gr.Textbox(label="Status", interactive=False, elem_id="models-status")
    with gr.Row():
        with gr.Column():
            gr.Markdown("**Register a checkpoint file** (`.pt` written by Guidance Studio)")
            ckpt_file = gr.File(label="Checkpoint", file_types=[".pt"], type="filepath")
            note = gr.Textbox(label="Note", placeholder="where it came from")
            register = gr.Button("Register")
        with gr.Column():
            gr.Markdown("**Convert a torchvision ResNet** by B-cosification (then fine-tune it)")
            tv_file = gr.File(label="torchvision weights (.pth)", file_types=[".pth", ".pt"], type="filepath")
            arch = gr.Dropdown(list(models.TORCHVISION_ARCHS), value="resnet18", label="Architecture")
            convert = gr.Button("Convert")

    def do_convert(name: str, a: str, f: Any, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008
        return models.convert_torchvision(deps, name, a, f, lambda x, m: progress(x, desc=m))

    show = gr.Button("Refresh", size="sm")
    show.click(lambda n: models.list_models(deps, n), project, table, api_name="models")
    project.change(lambda n: models.list_models(deps, n) if n else None, project, table, api_visibility="private")
    register.click(lambda n, f, t: models.register_file(deps, n, f, t), [project, ckpt_file, note], [table, status],
                   api_name="register_checkpoint")
    convert.click(do_convert, [project, arch, tv_file], [table, status], api_name="convert_torchvision")
    return (lambda n: models.list_models(deps, n) if n else None), [table]
