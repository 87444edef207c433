"""`python app.py model new|list|activate`: a project's first model, its checkpoints, and which one is active.

`model new` builds an architecture of `core.methods.ARCHITECTURES` for the project's classes, from scratch or
from a weights file (the head is replaced when the class counts differ); `--recover-epochs N` then runs the
B-cosification recovery recipe (plain training, λ = 0, lr 1e-4; docs/science.md §2) in this process. Heavy
imports (torch) happen inside the commands, so `app.py --help` stays quick.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from core import methods
from services.checkpoints import activate, model_summaries
from services.database import open_store
from services.settings import Settings

log = logging.getLogger(__name__)

LIST_COLUMNS = ("id", "active", "arch", "created", "parent", "accuracy", "worst_group", "epg", "measured_on", "note")

NEW_EPILOG = """weights files (read with weights_only=True; nothing is downloaded):
  bcos_resnet18/34/50     a B-cos v2 release state dict (keys like conv1.linear.weight)
  bcosified_*             a torchvision state dict (e.g. resnet50-0676ba61.pth), B-cosified on loading
  any architecture        a Guidance Studio checkpoint of the same architecture (e.g. from another project)
The head is replaced by a new one when the file's class count differs from the project's (transfer from
ImageNet is the normal case). Without --weights the model starts from scratch (seeded): on small data a
B-cos network learns shapes slowly, so a pretrained backbone is the normal start.

A converted (bcosified_*) model is not accurate until fine-tuned: --recover-epochs N trains it without boxes
(lambda 0, lr 1e-4, norm layers learning), activating the result if the new model is active; or later:
  python app.py train --project P --base ID --lam 0 --lr 1e-4 --epochs N --activate"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `model` command group."""
    model = sub.add_parser("model", help="a project's models: make a first one, list them, activate one")
    actions = model.add_subparsers(dest="action", metavar="<action>", required=True)

    new = actions.add_parser("new", help="build a model for the project's classes (from scratch or a weights file)",
                             description="Build a model for a project's classes, save it as a checkpoint, register "
                                         "it and activate it when the project has no active model.",
                             epilog=NEW_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    new.add_argument("--project", required=True, help="project name")
    new.add_argument("--arch", required=True, choices=tuple(methods.ARCHITECTURES), metavar="ARCH",
                     help=f"architecture: {', '.join(methods.ARCHITECTURES)}")
    new.add_argument("--weights", type=Path, default=None, help="weights file to start from (see below)")
    new.add_argument("--seed", type=int, default=0, help="seed of the fresh weights (default 0)")
    new.add_argument("--activate", action="store_true",
                     help="activate the new model even when the project already has an active one")
    new.add_argument("--recover-epochs", type=int, default=None, metavar="N",
                     help="then train it N epochs without boxes (lambda 0, lr 1e-4): the B-cosification recipe")
    new.add_argument("--max-steps-per-epoch", type=int, default=None, help=argparse.SUPPRESS)  # smoke runs
    new.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    new.set_defaults(run=run_new)

    listing = actions.add_parser("list", help="the project's checkpoints, newest first, with headline metrics")
    listing.add_argument("--project", required=True, help="project name")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=run_list)

    activate = actions.add_parser("activate", help="make one of the project's checkpoints its active model")
    activate.add_argument("--project", required=True, help="project name")
    activate.add_argument("--checkpoint", required=True, metavar="ID", help="checkpoint id (see `model list`)")
    activate.add_argument("--yes", action="store_true",
                          help="activate it even when it is worse than the active model on accuracy/F1 or worst "
                               "group (without it such an activation is refused, saying by how much)")
    activate.set_defaults(run=run_activate)


def _emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def run_new(settings: Settings, args: argparse.Namespace) -> int:
    """Make the model; with --recover-epochs, train it too. Exit 2 on a user error, 1 when recovery fails."""
    from core.train import CheckpointError  # heavy (torch): only when the command runs
    from services.model_factory import new_model, recovery_settings  # heavy (torch): only when the command runs

    engine = open_store(settings, create=False)
    try:
        extra = {"max_steps_per_epoch": args.max_steps_per_epoch} if args.max_steps_per_epoch else {}
        overrides = recovery_settings(args.recover_epochs, **extra) if args.recover_epochs is not None else None
        made = new_model(engine, settings, args.project, args.arch, args.weights, seed=args.seed,
                         activate=True if args.activate else None)
    except (ValueError, CheckpointError, OSError) as exc:
        log.error("no model made: %s", exc)
        return 2
    finally:
        engine.dispose()
    sys.stdout.write(f"checkpoint {made.checkpoint.id}{' (active)' if made.checkpoint.active else ''}: "
                     f"{made.message}\n  file {made.path}\n")
    payload = made.to_json()
    code = 0
    if overrides is not None:
        code, payload["recovery"] = _recover(settings, args.project, made.checkpoint.id, overrides,
                                             activate=made.activated, progress_bar=not args.json)
    if args.json:
        _emit_json(payload)
    return code


def _recover(settings: Settings, project: str, checkpoint_id: int, overrides: dict[str, Any], *, activate: bool,
             progress_bar: bool) -> tuple[int, dict[str, Any]]:
    """Run the recovery recipe on the new checkpoint in this process; (exit code, the run's result)."""
    from services.jobs import train_project  # heavy (torch): only when the command runs

    log.info("recovery: training checkpoint %d without boxes (%s)", checkpoint_id,
             ", ".join(f"{k}={v}" for k, v in overrides.items()))
    result = train_project(settings, project=project, overrides=overrides, base=str(checkpoint_id),
                           activate=activate, cancel=threading.Event(), progress_bar=progress_bar)
    if result.status == "succeeded":
        sys.stdout.write(f"recovery run {result.run_id}: {result.message}; best checkpoint "
                         f"{result.best_checkpoint_id}{' (active)' if activate else ''}\n")
    else:
        log.error("recovery run %s %s: %s", result.run_id, result.status, result.error)
    return (0 if result.status == "succeeded" else 1), result.to_json()


def _row(summary: Any) -> dict[str, Any]:
    c, metrics = summary.checkpoint, summary.metrics

    def metric(name: str) -> float | None:
        value = (metrics or {}).get(name)
        return round(float(value), 4) if isinstance(value, int | float) else None

    return {"id": c.id, "active": c.active, "arch": c.arch, "created": c.created.strftime("%Y-%m-%d %H:%M"),
            "parent": c.parent_id, "run": c.run_id, "accuracy": metric("accuracy"),
            "worst_group": metric("worst_group_accuracy"), "epg": metric("epg"), "measured_on": summary.measured_on,
            "note": c.note, "path": c.path}


def _table(rows: list[dict[str, Any]]) -> list[str]:
    def cell(row: dict[str, Any], column: str) -> str:
        value = row[column]
        return ("●" if value else "") if column == "active" else "" if value is None else str(value)

    widths = {c: max(len(c), *(len(cell(r, c)) for r in rows)) for c in LIST_COLUMNS}
    return ["  ".join(c.ljust(widths[c]) for c in LIST_COLUMNS),
            *("  ".join(cell(r, c).ljust(widths[c]) for c in LIST_COLUMNS) for r in rows)]


def run_list(settings: Settings, args: argparse.Namespace) -> int:
    """Print the project's checkpoints (a table, or JSON with --json); exit 2 for an unknown project."""
    engine = open_store(settings, create=False)
    try:
        rows = [_row(s) for s in model_summaries(engine, args.project)]
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    finally:
        engine.dispose()
    if args.json:
        _emit_json(rows)
    elif not rows:
        sys.stdout.write(f"project {args.project} has no models yet; make one with "
                         f"`python app.py model new --project {args.project} --arch ARCH`\n")
    else:
        sys.stdout.write("\n".join(_table(rows)) + "\n")
    return 0


def run_activate(settings: Settings, args: argparse.Namespace) -> int:
    """Activate the checkpoint; exit 2 (nothing changed) for an unknown project or a checkpoint of another one."""
    from services.compare import worse_than_active  # heavy (torch, via the explanation service): only on use

    engine = open_store(settings, create=False)
    try:
        worse = None if args.yes else worse_than_active(engine, args.project, args.checkpoint)
        if worse:
            log.error("nothing activated: %s; add --yes to activate it anyway", worse)
            return 2
        info = activate(engine, args.project, args.checkpoint)
    except ValueError as exc:
        log.error("nothing activated: %s", exc)
        return 2
    finally:
        engine.dispose()
    sys.stdout.write(f"project {args.project}: checkpoint {info.id} ({info.arch}) is the active model\n")
    return 0
