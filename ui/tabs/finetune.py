"""The Fine-tune tab: one button, the advanced form generated from TrainConfig, live progress, cancel."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.train.config import Setting
from ui.deps import AppDeps
from ui.handlers import finetune, finetune_checks

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
    rules = dict(finetune.FORM_SETTINGS)
    widgets: dict[str, Any] = {}
    with gr.Row(equal_height=True):
        start = gr.Button("Fine-tune with recommended settings", variant="primary", elem_id="start-training",
                          scale=2)
        # the one click's time budget is on show, not folded away: the user sees how long it may take and can change it
        widgets["budget_s"] = setting_widget("budget_s", rules["budget_s"], finetune.DEFAULTS.budget_s)
        cancel = gr.Button("Cancel", variant="stop", elem_id="cancel-training", interactive=False)
    with gr.Accordion("Advanced settings", open=False):
        folded = [(name, rule) for name, rule in finetune.FORM_SETTINGS if name not in widgets]
        per_row = 4
        for offset in range(0, len(folded), per_row):
            with gr.Row():
                widgets.update({name: setting_widget(name, rule, getattr(finetune.DEFAULTS, name))
                                for name, rule in folded[offset:offset + per_row]})
    advanced = [widgets[name] for name, _ in finetune.FORM_SETTINGS]  # the handler's order
    status = gr.Textbox(label="Last action", interactive=False, elem_id="train-status")
    progress = gr.HTML(finetune.progress_html(None), elem_id="train-progress")
    with gr.Row():
        loss_plot = gr.LinePlot(x="step", y="value", color="series", title="Training losses", height=260,
                                visible=False)
        metric_plot = gr.LinePlot(x="epoch", y="value", color="metric", height=260, visible=False,
                                  title="Validation metrics (EPG, IoU at the guided layer)")
    runs = gr.Dataframe(headers=finetune.RUN_COLUMNS, label="Run history", interactive=False, max_height=260,
                        elem_id="run-history")
    run_state = gr.State(None)
    timer = gr.Timer(POLL_SECONDS, active=False)

    def go(name: str, *values: Any) -> tuple:
        return finetune.start_training(deps, name, values)

    def poll(name: str, state: dict[str, Any] | None) -> tuple:
        bar, losses, metrics, history, active, ended = finetune.poll_training(deps, name, state)
        curves = (gr.update(value=frame, visible=not frame.empty) for frame in (losses, metrics))  # no empty axes
        return (bar, *curves, history, gr.Timer(active=active), gr.update(interactive=not active),
                gr.update(interactive=active), gr.update() if ended is None else ended)

    poll_inputs = [project, run_state]
    poll_outputs = [progress, loss_plot, metric_plot, runs, timer, start, cancel, status]  # Cancel only while one runs
    # The button is disabled before the request is sent, so a double click starts one run; the poll that
    # follows enables it again when nothing runs (also after a refusal).
    started = start.click(lambda: gr.update(interactive=False), None, start, queue=False,
                          api_visibility="private").then(go, [project, *advanced], [run_state, status],
                                                         api_name="start_training")
    # a refusal stays on the page (the toast says why until closed; the status line says nothing started)
    started.failure(lambda: (finetune.NOT_STARTED, gr.update(interactive=True)), None, [status, start],
                    api_visibility="private", queue=False)
    started.then(poll, poll_inputs, poll_outputs, show_progress="hidden")
    cancel.click(lambda n, s: finetune.cancel_training(deps, n, s), [project, run_state], status,
                 api_name="cancel_training").then(poll, poll_inputs, poll_outputs, show_progress="hidden")
    timer.tick(poll, poll_inputs, poll_outputs, api_name="poll_training", show_progress="hidden")
    project.change(poll, poll_inputs, poll_outputs, api_visibility="private")
    return poll, poll_inputs, poll_outputs


# the warning's refreshes (page load, tab shown, project changed) answer one at a time, in the order they were asked:
# two in flight at once could land out of order and leave the warning about a project the user has left
WARNING_QUEUE = "finetune-validation-warning"


def build_validation_warning(deps: AppDeps, project: gr.Dropdown) -> tuple[Any, list[Any], list[Any]]:
    """A warning, hidden unless the project's validation split is too small to judge a run (what to do included);
    it follows the project. Returns its refresh `(fn, inputs, outputs)` for the caller to run on page load and when
    the tab is opened (a carve or an import elsewhere may have changed it)."""
    # filled when the page is built, so it is in place before the first click: a warning that appears later pushes
    # the controls below it down under the pointer (a click meant for "Advanced settings" missed it)
    first = finetune_checks.validation_warning(deps, project.value)
    warning = gr.Markdown(first["value"], visible=first["visible"], elem_id="finetune-val-warning",
                          latex_delimiters=[])

    def refresh(name: str | None) -> Any:
        return finetune_checks.validation_warning(deps, name)

    project.change(refresh, project, warning, api_visibility="private", show_progress="hidden",
                   concurrency_id=WARNING_QUEUE)
    return refresh, [project], [warning]
