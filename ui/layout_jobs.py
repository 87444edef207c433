"""Layout of the Fine-tune, Compare and Models tabs: widgets and wiring only (see `ui.handlers`)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.train.config import Setting
from ui.deps import AppDeps
from ui.handlers import compare, finetune, models

POLL_SECONDS = 1.5


def setting_widget(name: str, rule: Setting, default: Any) -> Any:
    """The form widget of one `TrainConfig` setting, from its metadata (choices, bounds, step)."""
    common = {"label": rule.label, "info": rule.help, "elem_id": f"setting-{name}"}
    if rule.choices:
        return gr.Dropdown(list(rule.choices), value=default, **common)
    if isinstance(default, bool):
        return gr.Checkbox(value=default, **common)
    if rule.step is not None and rule.minimum is not None and rule.maximum is not None:
        return gr.Slider(rule.minimum if not rule.exclusive_minimum else rule.step, rule.maximum, default,
                         step=rule.step, **common)
    return gr.Number(default, precision=0 if isinstance(default, int) else None, minimum=rule.minimum,
                     maximum=rule.maximum, **common)


def build_finetune_tab(deps: AppDeps, project: gr.Dropdown) -> tuple[Any, list[Any], list[Any]]:
    """One button with the defaults, advanced settings folded away, progress, curves, cancel, history.

    The advanced form is generated from `TrainConfig`'s metadata. The progress timer runs only while
    this tab's project has a run queued or running: idle tabs cost the server nothing, and a reload
    resumes the live view from the database. Returns the refresh `(fn, inputs, outputs)` for the caller
    to run on page load and when the tab is opened.
    """
    gr.Markdown("Fine-tune the active model with the boxes of this project. The job runs in its own process; "
                "you can keep working while it runs.")
    with gr.Row():
        start = gr.Button("Fine-tune with recommended settings", variant="primary", elem_id="start-training")
        cancel = gr.Button("Cancel", variant="stop", elem_id="cancel-training")
    with gr.Accordion("Advanced settings", open=False):
        advanced = []
        per_row = 4
        for offset in range(0, len(finetune.FORM_SETTINGS), per_row):
            with gr.Row():
                advanced += [setting_widget(name, rule, getattr(finetune.DEFAULTS, name))
                             for name, rule in finetune.FORM_SETTINGS[offset:offset + per_row]]
    status = gr.Textbox(label="Last action", interactive=False, elem_id="train-status")
    progress = gr.HTML(finetune.progress_html(None), elem_id="train-progress")
    with gr.Row():
        loss_plot = gr.LinePlot(x="step", y="value", color="series", title="Training losses", height=260,
                                visible=False)
        metric_plot = gr.LinePlot(x="epoch", y="value", color="metric", height=260, visible=False,
                                  title="Validation metrics (EPG, IoU at the guided layer)")
    runs = gr.Dataframe(headers=finetune.RUN_COLUMNS, label="Run history", interactive=False, max_height=260)
    run_state = gr.State(None)
    timer = gr.Timer(POLL_SECONDS, active=False)

    def go(name: str, *values: Any) -> tuple:
        return finetune.start_training(deps, name, values)

    def poll(name: str, state: dict[str, Any] | None) -> tuple:
        bar, losses, metrics, history, active = finetune.poll_training(deps, name, state)
        curves = (gr.update(value=frame, visible=not frame.empty) for frame in (losses, metrics))  # no empty axes
        return (bar, *curves, history, gr.Timer(active=active), gr.update(interactive=not active))

    poll_inputs = [project, run_state]
    poll_outputs = [progress, loss_plot, metric_plot, runs, timer, start]
    # The button is disabled before the request is sent, so a double click starts one run; the poll that
    # follows enables it again when nothing runs (also after a refusal).
    start.click(lambda: gr.update(interactive=False), None, start, queue=False, api_visibility="private").then(
        go, [project, *advanced], [run_state, status], api_name="start_training").then(
        poll, poll_inputs, poll_outputs, show_progress="hidden")
    cancel.click(lambda n, s: finetune.cancel_training(deps, n, s), [project, run_state], status,
                 api_name="cancel_training").then(poll, poll_inputs, poll_outputs, show_progress="hidden")
    timer.tick(poll, poll_inputs, poll_outputs, api_name="poll_training", show_progress="hidden")
    project.change(poll, poll_inputs, poll_outputs, api_visibility="private")
    return poll, poll_inputs, poll_outputs


def build_compare_tab(deps: AppDeps, project: gr.Dropdown) -> tuple[Any, list[Any]]:
    """Two checkpoints: metric table, per-image before|after, activate, HTML report."""
    with gr.Row():
        before = gr.Dropdown([], label="Before", elem_id="compare-before", allow_custom_value=True, scale=3)
        after = gr.Dropdown([], label="After", elem_id="compare-after", allow_custom_value=True, scale=3)
        sort = gr.Dropdown(list(compare.SORTS), value="Largest EPG gain", label="Sort images by", scale=2)
        refresh = gr.Button("Refresh checkpoints", size="sm", scale=1, min_width=120)
    with gr.Row():
        run = gr.Button("Compare", variant="primary", elem_id="compare-run")
        activate = gr.Button("Activate 'after' model", elem_id="compare-activate")
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
    activate.click(lambda n, b: compare.activate(deps, n, b), [project, after], note, api_name="activate")
    export.click(lambda *v: gr.update(value=compare.export_report(deps, *v), visible=True), inputs, report,
                 api_name="export_report")
    return choices, [before, after]


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
