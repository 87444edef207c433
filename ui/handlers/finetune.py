"""Fine-tune: start `python app.py train` in its own process group, poll its run row, cancel it.

The server never trains: it starts a subprocess (start_new_session=True), reads progress from the
TrainingRun row and the run's JSON progress file (services.training), and stops it with SIGTERM to
its process group. "One run per project" is enforced by the database, not by this process.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core.train.config import TrainConfig
from store.models_runs import ACTIVE_RUN_STATUSES
from store.runs import active_training_run, list_training_runs
from ui.deps import AppDeps
from ui.handlers.common import require_project, transaction

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_COMMAND = REPO_ROOT / "services" / "commands" / "train.py"
DEFAULTS = TrainConfig()
RUN_COLUMNS = ["run", "status", "progress", "created", "finished", "message", "error"]


@dataclass(frozen=True)
class TrainOptions:
    """The advanced settings; None means "the command's default"."""

    loss: str | None = None
    attribution: str | None = None
    layer: str | None = None
    lam: float | None = None
    lr: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    annotated_fraction: float | None = None
    box_dilation: float | None = None
    target: str | None = None
    max_steps_per_epoch: int | None = None


def train_argv(deps: AppDeps, project: str, options: TrainOptions) -> list[str]:
    """The command line that trains `project` with `options` (only changed settings become flags)."""
    settings = deps.settings
    argv = [sys.executable, str(REPO_ROOT / "app.py"), "--data-dir", str(settings.data_dir.resolve()),
            "--db", settings.database_url, "--device", settings.device, "train", "--project", project, "--json"]
    for name, value in asdict(options).items():
        if value is None or value == "" or value == getattr(DEFAULTS, name, object()):
            continue
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def start_training(deps: AppDeps, project: str, options: TrainOptions) -> tuple[dict[str, Any], str]:
    """Start a fine-tune of `project`; returns the per-user run state `{pid, log}` and a status line."""
    if not TRAIN_COMMAND.exists():
        raise gr.Error("Fine-tuning is not available in this version (no `app.py train` command).")
    with transaction(deps) as session:
        proj = require_project(session, project)
        running = active_training_run(session, proj.id)
        if running is not None:
            raise gr.Error(f"Run {running.id} of {project!r} is still {running.status} ({running.progress:.0%}): "
                           "wait for it or cancel it first.")
    log_dir = deps.data_dir / "runs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"train-{project}-{os.getpid()}-{threading.get_ident()}.log"
    argv = train_argv(deps, project, options)
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=REPO_ROOT, start_new_session=True)
    threading.Thread(target=process.wait, name=f"reap-train-{process.pid}", daemon=True).start()  # no zombie
    log.info("started training of %s: pid %d, log %s", project, process.pid, log_path)
    return {"pid": process.pid, "log": str(log_path)}, f"Started fine-tuning {project!r} (process {process.pid})…"


def progress_html(progress: float, status: str, message: str) -> str:
    """A progress bar with the run's status and latest message."""
    pct = max(0.0, min(1.0, progress)) * 100
    return (f'<div class="run-progress"><progress value="{pct:.0f}" max="100" style="width:100%"></progress>'
            f'<div><b id="run-status">{status}</b> · {pct:.0f}% · {message}</div></div>')


def _curves(deps: AppDeps, run_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from services.training import read_run_progress  # the lead's progress file (curves)

    state = read_run_progress(deps.settings, run_id)
    losses = [{"step": p.get("step", i), "series": k, "value": float(v)}
              for i, p in enumerate(state.get("losses", [])) for k, v in p.items()
              if k not in ("step", "epoch", "annotated") and isinstance(v, int | float)]  # annotated: a count
    metrics = [{"epoch": e.get("epoch", i), "metric": k, "value": float(v)}
               for i, e in enumerate(state.get("evals", [])) for k, v in e.items()
               if k in ("accuracy", "f1", "epg", "iou", "worst_group_accuracy") and isinstance(v, int | float)]
    return (pd.DataFrame(losses, columns=["step", "series", "value"]),
            pd.DataFrame(metrics, columns=["epoch", "metric", "value"]))


def run_history(deps: AppDeps, project: str) -> pd.DataFrame:
    """The project's runs, newest first."""
    with transaction(deps) as session:
        runs = list_training_runs(session, require_project(session, project).id, limit=20)
        rows = [{"run": r.id, "status": r.status, "progress": f"{r.progress:.0%}",
                 "created": r.created.strftime("%Y-%m-%d %H:%M"),
                 "finished": r.finished.strftime("%H:%M:%S") if r.finished else "",
                 "message": r.message[:120], "error": (r.error or "")[:200]} for r in runs]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def poll_training(deps: AppDeps, project: str, run_state: dict[str, Any] | None = None
                  ) -> tuple[str, pd.DataFrame, pd.DataFrame, pd.DataFrame, bool]:
    """Progress of the project's newest run: bar, loss curve, metric curve, run history, keep polling?

    Polling is worth it while the project has a queued/running run, or while the process this tab
    started (`run_state`) is still alive (it may not have written its run row yet).
    """
    if not project:
        empty = pd.DataFrame(columns=RUN_COLUMNS)
        return progress_html(0, "idle", "pick a project"), *_curves_empty(), empty, False
    history = run_history(deps, project)
    starting = _process_alive(run_state)
    if history.empty:
        message = "starting…" if starting else "no run yet: press Fine-tune"
        return progress_html(0, "idle", message), *_curves_empty(), history, starting
    with transaction(deps) as session:
        run = list_training_runs(session, require_project(session, project).id, limit=1)[0]
        progress, status, message = run.progress, run.status, run.message or run.error or ""
        run_id = run.id
    losses, metrics = _curves(deps, run_id)
    active = status in ACTIVE_RUN_STATUSES or starting
    return progress_html(progress, f"run {run_id}: {status}", message), losses, metrics, history, active


def _process_alive(run_state: dict[str, Any] | None) -> bool:
    """Whether the training process this tab started is still running."""
    from services.database import pid_alive

    pid = (run_state or {}).get("pid")
    return bool(pid) and pid_alive(int(pid))


def _curves_empty() -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame(columns=["step", "series", "value"]), pd.DataFrame(columns=["epoch", "metric", "value"])


def cancel_training(deps: AppDeps, project: str, run_state: dict[str, Any] | None) -> str:
    """Send SIGTERM to the process group of the project's running job (the job marks itself cancelled)."""
    with transaction(deps) as session:
        run = active_training_run(session, require_project(session, project).id)
        pid = (run.pid if run is not None else None) or (run_state or {}).get("pid")
    if run is None or not pid:
        raise gr.Error("No fine-tune of this project is running.")
    try:
        pid = int(pid)
        if os.getpgid(pid) == pid:  # started by us in its own group: stop its workers too
            os.killpg(pid, signal.SIGTERM)
        else:  # started from a shell: never signal the shell's group
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return f"Run {run.id}: its process {pid} is already gone; it will be marked failed."
    return f"Cancelling run {run.id}: it stops after the current step and keeps finished checkpoints."
