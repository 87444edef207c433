"""Fine-tune: start a run (validated, queued in the database, then its own process), poll it, cancel it.

The server never trains. `services.runs` writes the queued run row with its config, starts
`python app.py train --run ID` in its own process group with its own log, and watches it; this module
turns what the user typed into settings and the run rows into what the tab shows. A reload mid-run
resumes from the database: nothing here is per-process state.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import gradio as gr
import pandas as pd

from core.train.config import Setting, TrainConfig, settings
from services import runs
from services.errors import STORE_ERRORS, DatabaseBusyError
from ui.deps import AppDeps
from ui.handlers.common import user_errors

log = logging.getLogger(__name__)

DEFAULTS = TrainConfig()
NOT_STARTED = "Not started: the message at the top right says why. Nothing was queued."
RUN_COLUMNS = ["run", "status", "progress", "created", "finished", "settings", "message", "why it stopped", "error"]
NOT_IMPROVED_STYLE = "color:#b54708"  # amber: a run that kept the starting model is no green "succeeded"
FORM_SETTINGS: tuple[tuple[str, Setting], ...] = tuple((name, rule) for name, rule in settings() if rule.ui)


def form_overrides(values: Sequence[Any]) -> dict[str, Any]:
    """The advanced form's values (in `FORM_SETTINGS` order) as config overrides: only changed ones."""
    if len(values) != len(FORM_SETTINGS):
        raise gr.Error(f"expected {len(FORM_SETTINGS)} settings, got {len(values)}")
    out = {}
    for (name, _rule), value in zip(FORM_SETTINGS, values):
        if value is None or value == "" or value == getattr(DEFAULTS, name):
            continue
        out[name] = value
    return out


def start_training(deps: AppDeps, project: str, values: Sequence[Any]) -> tuple[dict[str, Any], str]:
    """Validate, queue and start a fine-tune of `project`; returns the tab's run state and a status line.

    Bad settings, a project without a model or validation split, and a run already going are refused
    with a `gr.Error` that says what to do; nothing is started then.
    """
    if not project:
        raise gr.Error("Pick a project first (top of the page).")
    try:
        with user_errors(conflicts=True):
            launched = runs.launch_run(deps.engine, deps.settings, project, form_overrides(values))
    except gr.Error as exc:  # a refusal stays on screen until closed: it says what to fix first
        raise gr.Error(exc.message, duration=None) from exc
    return ({"run_id": launched.run_id},
            f"Queued run {launched.run_id} of {project!r}; its process {launched.pid} is starting…")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def progress_html(run: runs.RunView | None) -> str:
    """A progress bar with status, step/total, elapsed time, ETA and the latest message (or error)."""
    if run is None:
        return ('<div class="run-progress"><progress value="0" max="100" style="width:100%"></progress>'
                '<div><b id="run-status">idle</b> · no run yet: press Fine-tune</div></div>')
    pct = max(0.0, min(1.0, run.progress)) * 100
    style = f' style="{NOT_IMPROVED_STYLE}"' if not run.improved else ""
    parts = [f'<b id="run-status"{style}>run {run.id}: {run.outcome}</b>', f"{pct:.0f}%"]
    if run.steps_total:
        parts.append(f'step <span id="run-step">{run.step}/{run.steps_total}</span>')
    if run.started:
        parts.append(f"elapsed {_duration(run.elapsed_s)}")
    if run.active and run.eta_s is not None:
        parts.append(f"ETA {_duration(run.eta_s)}")
    message = run.message.removeprefix(run.outcome).lstrip(": ") if not run.improved else run.message
    if message:
        parts.append(html.escape(message))
    error = (f'<pre id="run-error" style="white-space:pre-wrap;color:#b42318;max-height:14em;overflow:auto">'
             f"{html.escape(run.error)}</pre>" if run.error else "")
    why = f'<div id="run-why"><b>Why it stopped:</b> {html.escape(run.why)}</div>' if run.why else ""
    bar = "width:100%" + (";accent-color:#f79009" if not run.improved else "")  # amber, not green
    return (f'<div class="run-progress"><progress value="{pct:.0f}" max="100" style="{bar}"></progress>'
            f"<div>{' · '.join(parts)}</div>{why}{error}</div>")


def store_problem_html(message: str) -> str:
    """The progress area when the database cannot be read: the one line that says why and what to do."""
    return (f'<div class="run-progress"><div><b id="run-status">not available</b> · '
            f'<span id="run-error" style="color:#b42318">{html.escape(message)}</span></div></div>')


def _changed_settings(config: Mapping[str, Any]) -> str:
    defaults = DEFAULTS.to_dict()
    changed = [f"{k}={v}" for k, v in config.items() if k in defaults and k != "device" and v != defaults[k]]
    return ", ".join(changed) or "defaults"


def run_history(deps: AppDeps, project: str) -> pd.DataFrame:
    """The project's runs, newest first."""
    with user_errors():
        views = runs.project_runs(deps.engine, deps.settings, project, limit=20)
    rows = [{"run": r.id, "status": r.outcome, "progress": f"{r.progress:.0%}",
             "created": r.created.strftime("%Y-%m-%d %H:%M"),
             "finished": r.finished.strftime("%H:%M:%S") if r.finished else "",
             "settings": _changed_settings(r.config), "message": r.message[:160], "why it stopped": r.why,
             "error": r.error.splitlines()[0][:200] if r.error else ""} for r in views]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def _curves(progress: runs.RunProgress) -> tuple[pd.DataFrame, pd.DataFrame]:
    losses = [{"step": p.get("step", i), "series": k, "value": float(v)}
              for i, p in enumerate(progress.losses) for k, v in p.items()
              if k not in ("step", "epoch", "annotated") and isinstance(v, int | float)]  # annotated: a count
    metrics = [{"epoch": e.get("epoch", i), "metric": k, "value": float(v)}
               for i, e in enumerate(progress.evals) for k, v in e.items()
               if k in ("accuracy", "f1", "epg", "iou", "worst_group_accuracy") and isinstance(v, int | float)]
    return (pd.DataFrame(losses, columns=["step", "series", "value"]),
            pd.DataFrame(metrics, columns=["epoch", "metric", "value"]))


def poll_training(deps: AppDeps, project: str, run_state: dict[str, Any] | None = None
                  ) -> tuple[str, pd.DataFrame, pd.DataFrame, pd.DataFrame, bool, str | None]:
    """Progress of the project's newest run: bar, loss curve, metric curve, run history, keep polling?, and
    the "Last action" line when the run this page started has ended (`ended_action`; None: leave it).

    Everything comes from the database and the run's progress file, so a reloaded page picks up a run
    where it is. Polling goes on while the run is queued or running.
    """
    if not project:
        return progress_html(None), *_curves(runs.RunProgress(None, [], [])), pd.DataFrame(columns=RUN_COLUMNS), \
            False, None
    try:
        with user_errors():
            progress = runs.latest_progress(deps.engine, deps.settings, project)
        history = run_history(deps, project)
    except gr.Error as exc:
        if not isinstance(exc.__cause__, STORE_ERRORS):
            raise
        # said in the bar instead of an error every second; a lost data folder stops the polling (a reload asks
        # again), a busy database is asked again at the next tick
        busy = isinstance(exc.__cause__, DatabaseBusyError)
        return store_problem_html(exc.message), *_curves(runs.RunProgress(None, [], [])), \
            pd.DataFrame(columns=RUN_COLUMNS), busy, None
    active = progress.run is not None and progress.run.active
    return progress_html(progress.run), *_curves(progress), history, active, ended_action(run_state, progress.run)


def ended_action(run_state: Mapping[str, Any] | None, run: runs.RunView | None) -> str | None:
    """The "Last action" line once the run this page started has ended (its status and how long it took), so
    "…is starting…" does not stay on screen after the run; None while it goes on or for another run."""
    started = (run_state or {}).get("run_id")
    if run is None or started != run.id or run.active:
        return None
    took = f" after {_duration(run.elapsed_s)}" if run.started else ""
    if run.summary.get("outcome") == "at_chance":
        return f"Run {run.id} ended{took}: {run.outcome}. See why below before you use it."
    if not run.improved:
        return f"Run {run.id} ended{took}: {run.outcome}. Nothing was activated; see why below."
    return f"Run {run.id} {run.status}{took}" + (": see the error below." if run.error else ".")


def cancel_training(deps: AppDeps, project: str, run_state: dict[str, Any] | None = None) -> str:
    """Stop the project's running job (it marks itself cancelled and keeps finished checkpoints)."""
    if not project:
        raise gr.Error("Pick a project first (top of the page).")
    with user_errors():
        return runs.cancel_run(deps.engine, project)


__all__ = ["DEFAULTS", "FORM_SETTINGS", "NOT_STARTED", "RUN_COLUMNS", "cancel_training", "form_overrides",
           "poll_training", "progress_html", "run_history", "start_training"]
