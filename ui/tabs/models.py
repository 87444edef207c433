"""The Models tab: checkpoints with lineage, activate, a new model, the recovery run, register a file."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.deps import AppDeps
from ui.handlers import models

NEW_MODEL_HELP = (
    "**New model** for this project's classes. Without a file it starts from scratch (seeded). With a file: a "
    "B-cos v2 release file for a B-cos net, torchvision weights for a *→ B-cos* net (B-cosified), or a Guidance "
    "Studio checkpoint; the head is replaced when the file was trained for other classes.")
RECOVER_HELP = ("*Activate*: Explain, Fine-tune and evaluation use the selected checkpoint. *Recover accuracy*: "
                "fine-tune it without boxes (λ 0, lr 1e-4), as a converted model needs; progress in the Fine-tune "
                "tab.")


def build_models_tab(deps: AppDeps, project: gr.Dropdown) -> tuple[Any, list[Any]]:
    """Checkpoints (select a row to act on it), Activate, Recover accuracy, New model, Register a file."""
    table = gr.Dataframe(headers=models.MODEL_COLUMNS, label="Checkpoints (parent = lineage; click a row to select "
                         "it)", interactive=False, elem_id="models-table", max_height=320)
    with gr.Row(equal_height=True):
        with gr.Column(scale=1, min_width=200):
            # a callable initial value: with a plain None the frontend shows "0" (gradio issue #6728)
            selected = gr.Number(lambda: None, label="Selected checkpoint id", precision=0,
                                 elem_id="models-selected", placeholder="click a row")
            epochs = gr.Number(models.RECOVERY_EPOCHS, label="Recovery epochs", precision=0, minimum=1,
                               maximum=1000, elem_id="models-recover-epochs")
        with gr.Column(scale=3, min_width=280):
            activate = gr.Button(models.ACTIVATE_LABEL, variant="primary", elem_id="models-activate")
            recover = gr.Button("Recover accuracy (B-cosification recipe)", elem_id="models-recover")
            show = gr.Button("Refresh the list", size="sm")
            gr.Markdown(RECOVER_HELP)
        with gr.Column(scale=4):
            status = gr.Textbox(label="Status", interactive=False, elem_id="models-status", lines=6)
    with gr.Row():
        with gr.Column(scale=3):
            gr.Markdown(NEW_MODEL_HELP)
            with gr.Row():
                with gr.Column(scale=2):
                    arch = gr.Dropdown(models.architecture_choices(), value="bcos_small", label="Architecture",
                                       elem_id="new-model-arch")
                    weights = gr.File(label="Weights file (optional: .pth / .pt)", file_types=[".pth", ".pt"],
                                      type="filepath", elem_id="new-model-weights", height=110)
                with gr.Column(scale=1, min_width=180):
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="new-model-seed")
                    always = gr.Checkbox(False, label="Activate it even if the project has an active model",
                                         elem_id="new-model-activate")
                    create = gr.Button("Create model", variant="primary", elem_id="new-model")
        with gr.Column(scale=2):
            gr.Markdown("**Register a checkpoint file** (`.pt` written by Guidance Studio, for this project's "
                        "classes)")
            ckpt_file = gr.File(label="Checkpoint", file_types=[".pt"], type="filepath", height=110)
            note = gr.Textbox(label="Note", placeholder="where it came from")
            register = gr.Button("Register")

    def fill(name: str | None) -> Any:
        return models.list_models(deps, name) if name else None

    def pick(frame: Any, evt: gr.SelectData) -> Any:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        return models.selected_checkpoint(frame, row) or gr.update()

    show.click(lambda n: models.list_models(deps, n), project, table, api_name="models")
    project.change(fill, project, table, api_visibility="private").then(lambda: None, None, selected,
                                                                         api_visibility="private")
    table.select(pick, table, selected, api_visibility="private", show_progress="hidden")
    armed = gr.State(None)  # the worse checkpoint the user was warned about: a second click activates it
    activate.click(lambda n, c, a: models.activate(deps, n, c, a), [project, selected, armed],
                   [table, status, armed, activate], api_name="activate_model")
    selected.change(lambda: (None, gr.update(value=models.ACTIVATE_LABEL, variant="primary")), None,
                    [armed, activate], api_visibility="private", show_progress="hidden")
    recover.click(lambda n, c, e: models.recover(deps, n, c, e), [project, selected, epochs], status,
                  api_name="recover_model")
    create.click(lambda n, a, f, s, act: models.new_model(deps, n, a, f, s, act),
                 [project, arch, weights, seed, always], [table, status, selected], api_name="new_model")
    register.click(lambda n, f, t: models.register_file(deps, n, f, t), [project, ckpt_file, note], [table, status],
                   api_name="register_checkpoint")
    return fill, [table]
