"""Executing a training run (inside the trainer process): base model, data, `fine_tune`, checkpoints,
before/after figures. The run's settings come from its row (services/runs.py queues it)."""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core import methods
from core.train import CheckpointError, TrainConfig, TrainData, TrainingCancelled, load_checkpoint
from core.train import distributed as dist_utils
from core.train.checkpoint import read_checkpoint
from core.train.fine_tune import FineTuneResult, fine_tune
from services.checkpoints import resolve_checkpoint
from services.database import Database, open_store, run_heartbeat_interval_s
from services.datasets import project_train_data
from services.errors import ConflictError, DatabaseBusyError, DatabaseMissingError, DataDirUnavailableError
from services.evaluation import announce_run_evaluations, evaluate_checkpoint, follow_run_evaluations
from services.model_factory import is_fresh
from services.models import checkpoint_file, model_device
from services.runs import AT_CHANCE, NO_IMPROVEMENT, failure_cause, queue_run, run_log_path
from services.settings import Settings
from services.training import RunReporter, prune_dropped_checkpoints
from store.db import check_database, session_scope
from store.models_runs import Checkpoint
from store.projects import get_project
from store.queries import count_images
from store.runs import (
    activate_checkpoint,
    active_checkpoint,
    get_checkpoint,
    get_training_run,
    heartbeat,
    mark_run_choice,
    run_checkpoints,
    update_training_run,
)

log = logging.getLogger(__name__)

# The trainer waits longer than a person for another process's write lock (an import may hold it for seconds):
# a run must not fail because someone imported while it trained.
TRAINER_BUSY_TIMEOUT_S = 30.0
LOST_STORE = (DataDirUnavailableError, DatabaseMissingError)  # nothing can be recorded: the process stops


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced; `to_json()` is the `train --json` object."""

    run_id: int | None
    status: str
    error: str | None = None
    checkpoints: tuple[str, ...] = ()
    best_checkpoint: str | None = None
    best_checkpoint_id: int | None = None
    active_checkpoint_id: int | None = None
    seconds: float = 0.0
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    message: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    # what the run did, also stored on its row (`TrainingRun.summary`): outcome "improved" | "no_improvement" |
    # "at_chance", stop_reason, kept_epoch (0: the starting model), selection_rule, epochs (and "chance" when at chance)
    summary: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict of every field, with the run's outcome (`summary["outcome"]`) on top."""
        return {**asdict(self), "checkpoints": list(self.checkpoints), "outcome": self.summary.get("outcome")}


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs, read from its row and the project before training starts."""

    run_id: int
    project_id: int
    project_name: str
    base_id: int
    base_path: Path
    data: TrainData
    config: TrainConfig
    eval_split: str
    fresh: bool = False  # the base is new or just converted: not learning yet is not convergence


def evaluate_reference(settings: Settings, project: str, ref: str, *, split: str = "test",
                       attribution: str | None = None, layer: str = "input") -> dict[str, Any]:
    """`app.py evaluate`: evaluate checkpoint `ref` (id, file or 'active') of `project` on `split`, store
    the per-image results, return the summary. Under torchrun each rank evaluates a shard; rank 0 stores."""
    dist_utils.init_from_env(model_device(settings))
    try:
        with session_scope(open_store(settings, upgrade_schema=dist_utils.is_rank0(), create=False)) as session:
            proj = get_project(session, project)
            checkpoint = resolve_checkpoint(session, settings, proj, ref)
            return evaluate_checkpoint(session, settings, proj, checkpoint, split=split, attribution=attribution,
                                       layer=layer)
    finally:
        dist_utils.shutdown()


def train_project(settings: Settings, *, project: str, overrides: dict[str, Any], base: str = "active",
                  activate: bool = False, cancel: threading.Event, progress_bar: bool = True) -> TrainResult:
    """`app.py train --project P`: queue a run with these settings, then execute it in this process
    (under torchrun rank 0 queues it and every rank executes it)."""
    dist_utils.init_from_env(model_device(settings))
    try:
        run_id = 0
        if dist_utils.is_rank0():
            try:
                run_id = queue_run(open_store(settings, create=False), settings, project, overrides, base=base)
            except (ValueError, ConflictError) as exc:
                log.error("%s", exc)
                run_id = -1
                dist_utils.broadcast_int(run_id, model_device(settings))
                return TrainResult(run_id=None, status="failed", error=str(exc))
        run_id = dist_utils.broadcast_int(run_id, model_device(settings))
        if run_id < 0:
            return TrainResult(run_id=None, status="failed", error="rank 0 could not queue the run")
        return execute_run(settings, run_id, activate=activate, cancel=cancel, progress_bar=progress_bar)
    finally:
        dist_utils.shutdown()


def execute_run(settings: Settings, run_id: int, *, activate: bool = False, cancel: threading.Event,
                progress_bar: bool = True) -> TrainResult:
    """`app.py train --run ID`: execute a queued run. Rank 0 owns the row and the files; other ranks train
    alongside without writing."""
    dist_utils.init_from_env(model_device(settings))
    engine = open_store(settings, upgrade_schema=dist_utils.is_rank0(), create=False,
                        busy_timeout_s=TRAINER_BUSY_TIMEOUT_S)
    rank0 = dist_utils.is_rank0()
    try:
        plan = _plan(engine, settings, run_id, claim=rank0)
    except (ValueError, CheckpointError) as exc:
        log.error("run %d: %s", run_id, exc)
        if rank0:
            _fail(engine, run_id, str(exc))
        return TrainResult(run_id=run_id, status="failed", error=str(exc))
    except LOST_STORE:
        raise
    except Exception as exc:  # an unreadable image or checkpoint file: one line on the row, the traceback in the log
        check_database(engine)  # files missing because the data folder went: that is the cause to report
        cause = record_failure(settings, run_id, exc)
        if rank0:
            _fail(engine, run_id, cause)
        return TrainResult(run_id=run_id, status="failed", error=cause)
    if not rank0:
        base = load_checkpoint(plan.base_path, map_location=model_device(settings),
                               expected_classes=list(plan.data.classes))
        status = "succeeded"
        try:
            fine_tune(base.model, plan.data, plan.config, out_dir=settings.checkpoint_dir / "unused",
                      should_stop=cancel.is_set, fresh=plan.fresh)
        except TrainingCancelled:
            status = "cancelled"
        # rank 0's before/after evaluations are sharded: take part in them
        follow_run_evaluations(engine, settings, project_id=plan.project_id, base_id=plan.base_id,
                               split=plan.eval_split, attribution=plan.config.attribution)
        return TrainResult(run_id=run_id, status=status)
    with _heartbeats(engine, run_id, cancel):
        return _execute(engine, settings, plan, activate=activate, cancel=cancel, progress_bar=progress_bar)


def _plan(engine: Database, settings: Settings, run_id: int, *, claim: bool) -> RunPlan:
    """Read the run row (its config), the base checkpoint and the data; `claim` marks the row running."""
    with session_scope(engine) as session:
        run = get_training_run(session, run_id)
        if claim and run.status != "queued":
            raise ValueError(f"run {run_id} is {run.status}, not queued: start a new run instead")
        project = get_project(session, run.project_id)
        if run.base_checkpoint_id is None:
            raise ValueError(f"run {run_id} has no base checkpoint")
        base = get_checkpoint(session, run.base_checkpoint_id)
        base_path = checkpoint_file(settings, base.path)
        payload = read_checkpoint(base_path)
        arch = payload["arch"]
        # freeze_norm "auto": a fresh model (new or just converted) must learn its norm statistics
        fresh = is_fresh(payload.get("config"))
        config = TrainConfig.from_dict(run.config).resolved(is_bcos=methods.ARCHITECTURES[arch].bcos
                                                            if arch in methods.ARCHITECTURES else False, fresh=fresh)
        data = project_train_data(session, settings, project, val_split=config.eval_split)
        has_test = count_images(session, project_id=project.id, split="test") > 0
        if claim:
            update_training_run(session, run_id, status="running", pid=os.getpid(), message="loading the model")
        return RunPlan(run_id, project.id, project.name, base.id, base_path, data, config,
                       "test" if has_test else config.eval_split, fresh)


def record_failure(settings: Settings, run_id: int, exc: BaseException) -> str:
    """Append `exc`'s traceback to the run's log file (under the data dir) and return its one-line cause, which
    the run row keeps and the UI shows with the log's path. The traceback never reaches a user."""
    user_caused = isinstance(exc, (ValueError, CheckpointError, ConflictError, DatabaseBusyError, *LOST_STORE))
    cause = failure_cause(str(exc) if user_caused else f"{exc.__class__.__name__}: {exc}")
    path = run_log_path(settings, run_id)
    try:
        if settings.data_dir.is_dir():  # never re-create a data folder that was removed
            path.parent.mkdir(exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"run {run_id} failed: {cause}\n{''.join(traceback.format_exception(exc))}")
    except OSError as error:
        log.warning("run %d: could not write its traceback to %s (%s)", run_id, path, error.strerror)
    log.error("run %d failed: %s. Full log: %s", run_id, cause, path)
    return cause


@contextmanager
def _heartbeats(engine: Database, run_id: int, cancel: threading.Event) -> Iterator[None]:
    """Touch the run row every few seconds while the body runs (also during long evaluations). A data folder
    found gone or read-only stops the run (`cancel`): nothing it does could be recorded."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(run_heartbeat_interval_s()):
            try:
                with session_scope(engine) as session:
                    heartbeat(session, run_id)
            except LOST_STORE as exc:
                if getattr(exc, "first", True):
                    log.error("run %d stops: %s", run_id, exc)
                cancel.set()
                return
            except Exception:  # a missed beat is retried; the run must not die of it
                log.warning("run %d: heartbeat failed", run_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def _execute(engine: Database, settings: Settings, plan: RunPlan, *, activate: bool, cancel: threading.Event,
             progress_bar: bool) -> TrainResult:
    started = time.monotonic()
    bar = tqdm(total=None, desc=f"train {plan.project_name}", unit="step", dynamic_ncols=True) if progress_bar else None
    reporter = RunReporter(engine, settings, run_id=plan.run_id, project_id=plan.project_id, parent_id=plan.base_id,
                           bar=bar)
    status, error, result = "failed", None, None

    def report(event: Any) -> None:  # nothing is written (files or rows) once the data folder is gone
        check_database(engine)
        reporter(event)

    try:
        base = load_checkpoint(plan.base_path, map_location=model_device(settings),
                               expected_classes=list(plan.data.classes))
        result = fine_tune(base.model, plan.data, plan.config, out_dir=settings.checkpoint_dir,
                           parent_sha=base.sha256, on_event=report, should_stop=cancel.is_set, fresh=plan.fresh)
        status = "succeeded"
    except TrainingCancelled:
        status = "cancelled"
        check_database(engine)  # cancelled because the data folder went away: say that, record nothing
    except LOST_STORE:
        raise
    except Exception as exc:  # the run row must say what happened, whatever it was: in one line
        check_database(engine)  # images missing because the data folder went: that is the cause to report
        error = record_failure(settings, plan.run_id, exc)
    finally:
        if bar is not None:
            bar.close()
    prune_dropped_checkpoints(engine, settings, plan.run_id)
    outcome = _summarise(engine, settings, plan, result, status, error, time.monotonic() - started,
                         activate=activate)
    reporter.finish(status, message=outcome.message, error=error, summary=outcome.summary or None)
    return outcome


def _summarise(engine: Database, settings: Settings, plan: RunPlan, result: FineTuneResult | None, status: str,
               error: str | None, seconds: float, *, activate: bool) -> TrainResult:
    with session_scope(engine) as session:
        rows = run_checkpoints(session, plan.run_id)
        kept = tuple(str(checkpoint_file(settings, r.path)) for r in rows)
        summary = run_summary(result) if status == "succeeded" and result is not None else {}
        common = {"run_id": plan.run_id, "status": status, "checkpoints": kept, "seconds": round(seconds, 2),
                  "error": error, "config": plan.config.to_dict(), "summary": summary}
        if status != "succeeded" or result is None or result.best is None:
            if summary:  # Models and `model list` say why none of this run's checkpoints was chosen
                for row in rows:
                    row.note = f"{row.note} · not chosen: no epoch of run {plan.run_id} beat its starting model"
            announce_run_evaluations(settings, None, evaluating=False)
            current = active_checkpoint(session, plan.project_id)  # a run that found nothing better changes nothing
            return TrainResult(**common, active_checkpoint_id=current.id if current else None,
                               message=_not_improved(result) if summary else "")
        best_path = Path(result.best["path"]).resolve()
        best = next((r for r in rows if checkpoint_file(settings, r.path).resolve() == best_path), None)
        project = get_project(session, plan.project_id)
        # Before/after are measured as `evaluate` measures (where a person reads maps), whatever layer was guided.
        layer = methods.evaluation_layer(plan.config.attribution)

        def measure(checkpoint: Checkpoint) -> dict[str, Any]:
            return evaluate_checkpoint(session, settings, project, checkpoint, split=plan.eval_split,
                                       attribution=plan.config.attribution, layer=layer)

        if best is not None:
            mark_run_choice(session, best.id)  # Compare opens on it; every list names it
        announce_run_evaluations(settings, best.id if best is not None else None, evaluating=True)
        before = measure(get_checkpoint(session, plan.base_id))
        after = measure(best) if best is not None else None
        if activate and best is not None:
            activate_checkpoint(session, best.id)
        current = active_checkpoint(session, plan.project_id)
        outcome = TrainResult(**common, best_checkpoint=str(best_path), best_checkpoint_id=best.id if best else None,
                              active_checkpoint_id=current.id if current else None, before=before, after=after)
    return replace(outcome, message=_at_chance(result, before, after) if result.at_chance else _outcome(before, after))


def _fail(engine: Database, run_id: int, error: str) -> None:
    with session_scope(engine) as session:
        run = get_training_run(session, run_id)
        if run.status in ("queued", "running"):
            update_training_run(session, run_id, status="failed", error=error)


def run_summary(result: FineTuneResult) -> dict[str, Any]:
    """What a finished run did, in the words the run line, its history, Compare and `train --json` show."""
    outcome = "no_improvement" if not result.improved else "at_chance" if result.at_chance else "improved"
    summary = {"outcome": outcome, "stop_reason": result.stop_reason, "kept_epoch": result.kept_epoch,
               "selection_rule": result.selection_rule, "epochs": result.epochs}
    if result.upweighted:
        summary["upweighted"] = result.upweighted  # the starting model's training errors drawn more often
    if result.pseudo_boxes:
        summary["pseudo_boxes"] = result.pseudo_boxes  # boxes the model proposed itself, for the composites
    return {**summary, "chance": result.at_chance} if result.at_chance else summary


def _at_chance(result: FineTuneResult, before: dict[str, Any], after: dict[str, Any] | None) -> str:
    """The run line of a run whose kept epoch is no better than answering the commonest class (`before`/`after`:
    the test figures, measured the same way)."""
    chance = result.at_chance or {}
    kept = float((result.best or {}).get("metrics", {}).get("accuracy") or 0.0)
    done = _outcome(before, after)
    return (f"{AT_CHANCE}: the kept epoch's validation accuracy {kept:.3f} is within noise of always answering the "
            f"commonest class ({chance.get('majority', 0):.3f}; below {chance.get('threshold', 0):.3f} on "
            f"{chance.get('images', 0)} images). Train longer (a bigger time budget), check the labels, or start "
            f"from pretrained weights (`model new --weights`). ({done})")


def _not_improved(result: FineTuneResult | None) -> str:
    """The run line of a run whose epochs all lost to its starting model on validation."""
    if result is None:
        return NO_IMPROVEMENT
    base = result.base_metrics
    key = "f1" if base.get("multi_label") else "accuracy"
    trained = [h.get(key) for h in result.history if isinstance(h.get(key), int | float)]
    if not trained or not isinstance(base.get(key), int | float):
        return f"{NO_IMPROVEMENT}: no epoch beat it on validation"
    return (f"{NO_IMPROVEMENT}: no epoch beat it on validation (its {key} {base[key]:.3f}; the best epoch's "
            f"{max(trained):.3f}); nothing was activated")


def _outcome(before: dict[str, Any], after: dict[str, Any] | None) -> str:
    if not after:
        return "finished"
    parts = [f"{key} {before[key]:.3f} → {after[key]:.3f}" for key in ("accuracy", "epg", "worst_group_accuracy")
             if before.get(key) is not None and after.get(key) is not None]
    return "done: " + ", ".join(parts)


__all__ = ["RunPlan", "TrainResult", "evaluate_reference", "execute_run", "record_failure", "run_summary",
           "train_project"]
