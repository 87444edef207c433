"""Training runs seen from outside the trainer: queue, launch, watch, poll, cancel. Torch-free.

A run is born as a *queued* row holding its whole validated `TrainConfig` (docs/ARCHITECTURE.md): the
server writes it, then starts `python app.py train --run ID` in its own process group with its own log
file; the process reads its config from the row. Liveness is a heartbeat in the database (the trainer
touches its row every few seconds); a run silent for `run_heartbeat_timeout_s()` (60 s) is failed by
whoever looks next (poll, start, cancel, any CLI command), so it works across hosts sharing one
PostgreSQL. The server that launched a process also watches it, and fails its run at once, with the
log's tail, when it exits without finishing the run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from common import write_json_atomically
from common.cpus import thread_env
from core.train.config import TrainConfig
from services.checkpoints import resolve_checkpoint
from services.database import Database, run_heartbeat_timeout_s
from services.errors import STORE_ERRORS, ConflictError, DatabaseBusyError, DataDirUnavailableError, NotFoundError
from services.settings import Settings
from store.db import session_scope
from store.models_runs import ACTIVE_RUN_STATUSES, TrainingRun
from store.projects import get_project, list_classes
from store.queries import count_images
from store.runs import (
    active_checkpoint,
    active_training_run,
    create_training_run,
    fail_silent_runs,
    get_checkpoint,
    get_training_run,
    list_training_runs,
    update_training_run,
)
from store.types import utcnow

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
LOG_TAIL_LINES = 25
MAX_CAUSE_CHARS = 300  # a failed run's cause is one line; the full story is in its log
# the last error a log names: a logging line "… ERROR name: message" or an exception's "SomeError: message"
LOG_ERROR = re.compile(r" (?:ERROR|CRITICAL) [\w.]+: (?P<message>.+)$")
EXCEPTION_LINE = re.compile(r"^(?P<message>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)(?:: .*)?)$")
NO_IMPROVEMENT = "no improvement — your model is kept"  # a run whose epochs all lost to its start
AT_CHANCE = "at chance — not learned yet"  # a run whose kept epoch is within noise of answering the commonest class


@dataclass(frozen=True)
class RunView:
    """One training run as the UI and the CLI show it."""

    id: int
    status: str
    progress: float
    message: str
    error: str
    created: datetime
    started: datetime | None
    finished: datetime | None
    step: int
    steps_total: int
    elapsed_s: float
    eta_s: float | None
    config: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)  # a finished run's outcome, stop reason, kept epoch

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def improved(self) -> bool:
        """False for a run that found nothing better than its start, or whose choice is still at chance."""
        return self.summary.get("outcome") not in ("no_improvement", "at_chance")

    @property
    def outcome(self) -> str:
        """The status as a user reads it: a run that found nothing better is not "succeeded"."""
        return run_outcome(self.status, self.summary)

    @property
    def why(self) -> str:
        """Why it stopped and what it kept, in plain words ("" before it ends or for runs made before this)."""
        return run_why(self.summary)


def run_outcome(status: str, summary: Mapping[str, Any] | None) -> str:
    """A run's status as a user reads it: "no improvement — your model is kept" instead of "succeeded" for a run
    none of whose epochs beat its starting model."""
    outcome = (summary or {}).get("outcome")
    if status != "succeeded":
        return status
    return NO_IMPROVEMENT if outcome == "no_improvement" else AT_CHANCE if outcome == "at_chance" else status


def run_why(summary: Mapping[str, Any] | None) -> str:
    """Why a finished run stopped and which model it kept, by which rule ("" when it has no summary)."""
    if not summary:
        return ""
    epoch = int(summary.get("kept_epoch") or 0)
    kept = f"kept epoch {epoch}" if epoch else "kept the starting model (no epoch beat it on validation)"
    why = (f"stopped: {summary.get('stop_reason', '?')} after {summary.get('epochs', '?')} epoch(s); {kept}, by "
           f"the rule: {summary.get('selection_rule', '')}")
    weighted = summary.get("upweighted")
    if isinstance(weighted, Mapping):
        factor = weighted.get("factor")
        why += (f"; the {weighted.get('images', '?')} of {weighted.get('of', '?')} training images the starting "
                f"model got wrong were drawn {f'{factor:g}' if isinstance(factor, int | float) else '?'}× as often")
    pseudo = summary.get("pseudo_boxes")
    if isinstance(pseudo, Mapping):
        why += (f"; from epoch {pseudo.get('epoch', '?')} the model boxed the object itself on "
                f"{pseudo.get('proposed', '?')} of {pseudo.get('of', '?')} unboxed training images for the "
                "composites (proposals, not saved)")
    return why


def run_line(db: Database, run_id: int | None) -> str:
    """"Run N: <outcome>. Why it stopped: …" for the run that made a checkpoint ("" for none)."""
    if run_id is None:
        return ""
    with session_scope(db) as session:
        try:
            run = get_training_run(session, run_id)
        except NotFoundError:  # the run was deleted; its checkpoints stay
            return ""
        why = run_why(run.summary)
        return f"Run {run.id}: {run_outcome(run.status, run.summary)}." + (f" Why it stopped: {why}." if why else "")


@dataclass(frozen=True)
class RunProgress:
    """A run and its curves: losses per step, validation metrics per epoch."""

    run: RunView | None
    losses: list[dict[str, Any]]
    evals: list[dict[str, Any]]


@dataclass(frozen=True)
class Launched:
    """A queued run and the process started for it."""

    run_id: int
    pid: int
    log_path: Path


def run_progress_path(settings: Settings, run_id: int) -> Path:
    """The JSON progress file of a run (curves and latest state), written by the trainer."""
    return settings.data_dir / "runs" / f"run-{run_id}.json"


def run_log_path(settings: Settings, run_id: int) -> Path:
    """The log file of a run's process (one per run: two processes never share a log)."""
    return settings.data_dir / "runs" / f"run-{run_id}.log"


def read_run_progress(settings: Settings, run_id: int) -> dict[str, Any]:
    """The latest progress snapshot of a run, or {} when none was written yet."""
    try:
        return json.loads(run_progress_path(settings, run_id).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def write_run_progress(settings: Settings, run_id: int, state: Mapping[str, Any]) -> None:
    """Replace a run's progress file atomically (not fsynced: it is rewritten every second)."""
    write_json_atomically(run_progress_path(settings, run_id), dict(state), durable=False)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file ('' when there is none)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def cause_from_log(text: str) -> str:
    """The last error a run's log names (a logged ERROR line or an exception's last line), or ""."""
    for line in reversed(text.splitlines()):
        match = LOG_ERROR.search(line) or EXCEPTION_LINE.match(line.strip())
        if match:
            return failure_cause(match.group("message"))
    return ""


def failure_cause(error: str) -> str:
    """A run's stored error as one short line (older rows appended the log's last lines: dropped)."""
    lines = (error or "").split("; last lines of its log:")[0].strip().splitlines()
    cause = lines[0].rstrip(" .:;") if lines else "no cause was recorded"
    return cause if len(cause) <= MAX_CAUSE_CHARS else cause[:MAX_CAUSE_CHARS - 1] + "…"


def failure_line(settings: Settings, run_id: int, error: str) -> str:
    """"Run 7 failed: <cause>. Full log: DATA/runs/run-7.log": what a failed run shows, in one line (its
    traceback, if any, is in the log)."""
    log_path = run_log_path(settings, run_id)
    where = f" Full log: {log_path}" if log_path.exists() else ""
    return f"Run {run_id} failed: {failure_cause(error)}.{where}"


def build_config(overrides: Mapping[str, Any]) -> TrainConfig:
    """The default `TrainConfig` with `overrides` (None/"" values: keep the default); ValueError naming the
    setting when one is invalid."""
    clean = {k: v for k, v in overrides.items() if v is not None and v != ""}
    unknown = sorted(set(clean) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown training setting(s) {', '.join(unknown)}")
    try:
        return TrainConfig().with_overrides(**clean)
    except ValueError as exc:
        raise ValueError(f"invalid training setting: {exc}") from exc


def queue_run(engine: Database, settings: Settings, project: str, overrides: Mapping[str, Any], *,
              base: str = "active") -> int:
    """Validate settings and preconditions, then write a queued run row with its config; returns its id.

    Refused with ValueError / NotFoundError / ConflictError saying what to do: invalid settings, no model
    to start from, no training or validation images, a run already going.
    """
    config = build_config({**overrides, "device": settings.device})
    with session_scope(engine) as session:
        fail_silent_runs(session, timeout_s=run_heartbeat_timeout_s())
    with session_scope(engine) as session:
        proj = get_project(session, project)
        base_id = _base_checkpoint_id(session, settings, proj, base)
        _check_splits(session, proj.id, proj.name, config.eval_split)
        running = active_training_run(session, proj.id)
        if running is not None:
            raise ConflictError(f"run {running.id} of {proj.name!r} is still {running.status} "
                                f"({running.progress:.0%}): wait for it or cancel it first")
        run = create_training_run(session, project_id=proj.id, config=config.to_dict(), base_checkpoint_id=base_id)
        session.flush()
        update_training_run(session, run.id, message="queued: starting the training process")
        return run.id


def _base_checkpoint_id(session: Any, settings: Settings, proj: Any, base: str) -> int:
    """The id of the checkpoint to start from: the active one, an id, or a checkpoint file of this project's classes
    (registered here, not activated, so the run row names its base)."""
    project_id, project = proj.id, proj.name
    if base in ("", "active"):
        checkpoint = active_checkpoint(session, project_id)
        if checkpoint is None:
            raise NotFoundError(f"project {project!r} has no active model to fine-tune: make one (Models tab → "
                                f"New model, or `python app.py model new --project {project}`) or activate one")
        return checkpoint.id
    if base.isdigit():
        checkpoint = get_checkpoint(session, int(base))
        if checkpoint.project_id != project_id:
            raise NotFoundError(f"checkpoint {base} belongs to another project")
        return checkpoint.id
    if not Path(base).is_file():
        raise NotFoundError(f"no checkpoint file {base!r}: pass a checkpoint id, a file path or 'active'")
    from core.train import read_checkpoint  # a file: read its architecture and classes (torch)

    classes = list(read_checkpoint(Path(base)).get("classes") or [])
    wanted = [c.name for c in list_classes(session, project_id)]
    if classes != wanted:
        raise ValueError(f"{Path(base).name} was trained for the classes {classes}, not {project!r}'s {wanted}: "
                         "pick a checkpoint of this project (`python app.py model list --project "
                         f"{project}`) or make one with `model new --weights FILE`")
    return resolve_checkpoint(session, settings, proj, base).id


def _check_splits(session: Any, project_id: int, project: str, eval_split: str) -> None:
    if count_images(session, project_id=project_id, split="train") == 0:
        raise ValueError(f"project {project!r} has no images in the 'train' split: import some first")
    if count_images(session, project_id=project_id, split=eval_split) == 0:
        raise ValueError(f"project {project!r} has no images in the {eval_split!r} split, which chooses the "
                         "best epoch: carve one out of train with `python app.py project split "
                         f"{project} --val-fraction 0.1`")


def train_argv(settings: Settings, run_id: int) -> list[str]:
    """The command line that executes queued run `run_id` (its settings are in the run row)."""
    return [sys.executable, str(REPO_ROOT / "app.py"), "--data-dir", str(settings.data_dir.resolve()),
            "--db", settings.database_url, "--device", settings.device, "train", "--run", str(run_id), "--json"]


def launch_run(engine: Database, settings: Settings, project: str, overrides: Mapping[str, Any], *,
               base: str = "active") -> Launched:
    """Queue a run and start its process (own process group, own log); a watcher fails the run with the
    log's tail if the process ends without finishing it."""
    run_id = queue_run(engine, settings, project, overrides, base=base)
    log_path = run_log_path(settings, run_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(train_argv(settings, run_id), stdout=log_file, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, cwd=REPO_ROOT, start_new_session=True,
                                       env=thread_env(dict(os.environ)))  # passive OpenMP wait, usable CPUs
    except OSError as exc:
        finish_if_active(engine, run_id, f"could not start the training process: {exc}")
        raise
    with session_scope(engine) as session:
        update_training_run(session, run_id, pid=process.pid)
    threading.Thread(target=_watch, args=(engine, run_id, process, log_path), name=f"watch-run-{run_id}",
                     daemon=True).start()
    log.info("run %d of %s: pid %d, log %s", run_id, project, process.pid, log_path)
    return Launched(run_id=run_id, pid=process.pid, log_path=log_path)


def _watch(engine: Database, run_id: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    code = process.wait()  # also reaps the child: no zombie
    reason = f"the training process exited with code {code} before finishing the run"
    if code < 0:
        reason = f"the training process was killed by signal {-code}"
    cause = cause_from_log(log_tail(log_path)) if code > 0 else ""
    error = reason + (f": {cause}" if cause else "")
    for attempt in range(3):  # a busy database is retried; a lost data folder is reported once
        try:
            finish_if_active(engine, run_id, error)
            return
        except DatabaseBusyError:
            log.warning("run %d: the database is busy; marking it failed again (%d/3)", run_id, attempt + 1)
        except STORE_ERRORS as exc:
            if not isinstance(exc, DataDirUnavailableError) or exc.first:
                log.error("run %d ended (%s) but cannot be marked failed: %s", run_id, reason, exc)
            return
    log.error("run %d ended (%s); the next look at the runs marks it failed", run_id, reason)


def finish_if_active(engine: Database, run_id: int, error: str) -> bool:
    """Fail run `run_id` with `error` if it is still queued/running; True when it did."""
    with session_scope(engine) as session:
        run = get_training_run(session, run_id)
        if run.status not in ACTIVE_RUN_STATUSES:
            return False
        update_training_run(session, run_id, status="failed", error=error)
    log.warning("run %d failed: %s", run_id, error.splitlines()[0])
    return True


def _view(run: TrainingRun, state: Mapping[str, Any], settings: Settings) -> RunView:
    error = run.error or ""
    if error:  # one line: a failed run's cause and where its full log is, never a traceback
        error = failure_line(settings, run.id, error) if run.status == "failed" else failure_cause(error)
    end = run.finished or utcnow()
    elapsed = (end - run.started).total_seconds() if run.started else 0.0
    return RunView(id=run.id, status=run.status, progress=run.progress, message=run.message or "", error=error,
                   created=run.created, started=run.started, finished=run.finished,
                   step=int(state.get("step") or 0), steps_total=int(state.get("steps_total") or 0),
                   elapsed_s=elapsed, eta_s=state.get("eta_s") if run.status == "running" else None,
                   config=dict(run.config or {}), summary=dict(run.summary or {}))


def project_runs(engine: Database, settings: Settings, project: str, *, limit: int = 20) -> list[RunView]:
    """The project's runs, newest first (silent runs failed first, so the list never shows a dead run)."""
    with session_scope(engine) as session:
        fail_silent_runs(session, timeout_s=run_heartbeat_timeout_s())
    with session_scope(engine) as session:
        runs = list_training_runs(session, get_project(session, project).id, limit=limit)
        return [_view(run, read_run_progress(settings, run.id) if i == 0 else {}, settings)
                for i, run in enumerate(runs)]


def latest_progress(engine: Database, settings: Settings, project: str) -> RunProgress:
    """The project's newest run with its curves (empty when it has none)."""
    runs = project_runs(engine, settings, project, limit=1)
    if not runs:
        return RunProgress(run=None, losses=[], evals=[])
    state = read_run_progress(settings, runs[0].id)
    return RunProgress(run=runs[0], losses=list(state.get("losses", [])), evals=list(state.get("evals", [])))


def cancel_run(engine: Database, project: str) -> str:
    """Ask the project's running job to stop (SIGTERM to its process group); a process that is gone has
    its run failed at once. Returns what happened, for the user."""
    with session_scope(engine) as session:
        fail_silent_runs(session, timeout_s=run_heartbeat_timeout_s())
    with session_scope(engine) as session:
        run = active_training_run(session, get_project(session, project).id)
        if run is None:
            raise NotFoundError(f"no fine-tune of {project!r} is running")
        run_id, pid = run.id, run.pid
    if not pid:
        finish_if_active(engine, run_id, "cancelled before its process started")
        return f"Run {run_id} was cancelled before its process started."
    try:
        if os.getpgid(pid) == pid:  # started by the app in its own group: stop its workers too
            os.killpg(pid, signal.SIGTERM)
        else:  # started from a shell: never signal the shell's group
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        finish_if_active(engine, run_id, f"its process {pid} was gone when cancel was pressed")
        return f"Run {run_id}: its process {pid} is gone; the run is marked failed."
    except PermissionError:
        return f"Run {run_id} runs as another user or on another machine: stop process {pid} there."
    return f"Cancelling run {run_id}: it stops after the current step and keeps finished checkpoints."


__all__ = [
    "AT_CHANCE",
    "NO_IMPROVEMENT",
    "Launched",
    "RunProgress",
    "RunView",
    "build_config",
    "cancel_run",
    "cause_from_log",
    "failure_cause",
    "failure_line",
    "finish_if_active",
    "latest_progress",
    "launch_run",
    "log_tail",
    "project_runs",
    "queue_run",
    "read_run_progress",
    "run_line",
    "run_log_path",
    "run_outcome",
    "run_progress_path",
    "run_why",
    "train_argv",
    "write_run_progress",
]
