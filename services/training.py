"""Running a training job for a project: the run row, progress file, checkpoints, before/after.

The job runs in its own process (`python app.py train --run ID`, started by the UI in its own process
group). It reports through the database row (status, progress, message, heartbeat) and a JSON
progress file with the loss and metric curves, written atomically for the UI to poll (services/runs.py).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from core.train import TrainEvent, file_sha256
from services.database import Database
from services.models import checkpoint_file
from services.runs import write_run_progress
from services.settings import Settings
from store.db import session_scope
from store.paths import stored_path
from store.runs import delete_checkpoint, record_evaluation, register_checkpoint, run_checkpoints, update_training_run

log = logging.getLogger(__name__)

MAX_CURVE_POINTS = 2000


class RunReporter:
    """Receives trainer events: updates the run row and progress file (throttled) and registers
    every evaluated checkpoint with its validation metrics as it is written."""

    def __init__(self, engine: Database, settings: Settings, *, run_id: int, project_id: int,
                 parent_id: int | None, bar: Any = None, interval_s: float = 1.0) -> None:
        self.engine, self.settings, self.run_id, self.project_id = engine, settings, run_id, project_id
        self.parent_id, self.bar, self.interval_s = parent_id, bar, interval_s
        self.state: dict[str, Any] = {"run_id": run_id, "status": "running", "progress": 0.0, "losses": [],
                                      "evals": [], "message": ""}
        self._last_write = 0.0

    def __call__(self, event: TrainEvent) -> None:
        state = self.state
        state.update(progress=event.progress, eta_s=event.eta_s, epoch=event.epoch, epochs=event.epochs,
                     step=event.step, steps_total=event.steps_total)
        if event.kind == "start":
            state.update(base=event.metrics, message=event.message)
        elif event.kind == "step":
            if len(state["losses"]) >= MAX_CURVE_POINTS:  # keep curves light: drop every other point
                state["losses"] = state["losses"][::2]
            state["losses"].append({"step": event.step, "epoch": event.epoch, **event.losses})
            if self.bar is not None:
                self.bar.update(event.step - self.bar.n)
                self.bar.set_postfix(loss=f"{event.losses.get('loss', 0):.3f}",
                                     loc=f"{event.losses.get('localisation', 0):.2f}")
        elif event.kind == "eval":
            state["evals"].append({"epoch": event.epoch, **_plain(event.metrics)})
            state["message"] = _describe(event.epoch, event.epochs, event.metrics)
            if event.checkpoint:  # None: the epoch fell off the Pareto front at once and its file is gone
                self._register(event)
            else:
                state["message"] += " (not kept: dominated by an earlier epoch)"
        self.flush(force=event.kind in ("start", "eval", "done"))

    def _register(self, event: TrainEvent) -> None:
        path = Path(event.checkpoint or "")
        with session_scope(self.engine) as session:
            checkpoint = register_checkpoint(
                session, project_id=self.project_id, path=stored_path(path, self.settings.data_dir),
                sha256=file_sha256(path), arch=_arch_from_name(path), parent_id=self.parent_id, run_id=self.run_id,
                metrics={**_plain(event.metrics), "epoch": event.epoch}, note=f"run {self.run_id}, epoch {event.epoch}")
            record_evaluation(session, checkpoint_id=checkpoint.id, split="val", metrics=_plain(event.metrics),
                              results=[])

    def flush(self, *, force: bool = False) -> None:
        """Write the progress file and the run row if `interval_s` passed (or `force`)."""
        now = time.monotonic()
        if not force and now - self._last_write < self.interval_s:
            return
        self._last_write = now
        write_run_progress(self.settings, self.run_id, self.state)
        with session_scope(self.engine) as session:
            update_training_run(session, self.run_id, progress=self.state["progress"], message=self.state["message"])

    def finish(self, status: str, *, message: str = "", error: str | None = None,
               summary: dict[str, Any] | None = None) -> None:
        """Record the final status (and the run's `summary`: outcome, why it stopped, the epoch kept) in the
        progress file and the run row."""
        self.state.update(status=status, message=message or self.state["message"], error=error, summary=summary)
        if status == "succeeded":
            self.state["progress"] = 1.0
        write_run_progress(self.settings, self.run_id, self.state)
        with session_scope(self.engine) as session:
            update_training_run(session, self.run_id, status=status, progress=self.state["progress"],
                                message=self.state["message"], error=error, summary=summary)


def prune_dropped_checkpoints(engine: Database, settings: Settings, run_id: int) -> None:
    """Remove this run's checkpoint rows whose files fell off the Pareto front (and were deleted)."""
    with session_scope(engine) as session:
        for row in run_checkpoints(session, run_id):
            if not checkpoint_file(settings, row.path).exists() and not row.active:
                delete_checkpoint(session, row.id)


def _arch_from_name(path: Path) -> str:
    return path.stem.rsplit("-", 1)[0]


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(metrics, default=float))


def _describe(epoch: int, epochs: int, metrics: dict[str, Any]) -> str:
    parts = [f"epoch {epoch}/{epochs}"]
    for key in ("accuracy", "f1", "epg", "iou", "worst_group_accuracy"):
        value = metrics.get(key)
        if isinstance(value, float) and not (key == "f1" and not metrics.get("multi_label")):
            parts.append(f"{key} {value:.3f}")
    return ", ".join(parts)
