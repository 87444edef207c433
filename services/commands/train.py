"""`python app.py train` and `python app.py evaluate`: guided fine-tuning and evaluation of a project.

The `train` flags are generated from `TrainConfig`'s field metadata (core/train/config.py), so a new
setting needs no edit here. Heavy imports (torch) happen inside the commands, so `app.py --help` and
quick commands stay fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from core import methods
from core.train.config import TrainConfig, default_of, settings
from services.settings import Settings

log = logging.getLogger(__name__)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per `TrainConfig` setting with `cli=True`: type, choices and help from its metadata.
    Every flag defaults to None, meaning "the config's default" (or the run row's, with --run)."""
    for name, rule in settings():
        if not rule.cli:
            continue
        default = default_of(name)
        help_text = argparse.SUPPRESS if rule.hidden else f"{rule.help} (default {default}"
        if not rule.hidden and (rule.minimum is not None or rule.maximum is not None):
            help_text += f"; {rule.describe_range()}"
        if not rule.hidden:
            help_text += ")"
        kwargs: dict[str, Any] = {"default": None, "help": help_text}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = type(default)
            if rule.choices:
                kwargs["choices"] = rule.choices
        parser.add_argument(f"--{name.replace('_', '-')}", **kwargs)


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (None: not given)."""
    return {name: getattr(args, name) for name, rule in settings()
            if rule.cli and getattr(args, name, None) is not None}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `train` and `evaluate` commands."""
    p = sub.add_parser("train", help="guided fine-tuning of a project's model (defaults = the UI's one click)",
                       description="Queue a training run with these settings and execute it in this process; or, "
                                   "with --run ID, execute a run the app queued (its settings are in its row).")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--project", help="project name")
    target.add_argument("--run", type=int, dest="run_id", metavar="ID",
                        help="execute this queued run (the app starts the trainer this way)")
    p.add_argument("--base", default="active", help="checkpoint to start from: id, file path or 'active' (default)")
    add_config_flags(p)
    p.add_argument("--activate", action="store_true", help="activate the best checkpoint when the run succeeds")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(run=run_train)

    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a split and store per-image results")
    e.add_argument("--project", required=True, help="project name")
    e.add_argument("--checkpoint", default="active", help="checkpoint id, file path or 'active' (default)")
    e.add_argument("--split", default="test", help="split to evaluate (default test)")
    e.add_argument("--attribution", choices=tuple(methods.METHODS),
                   help="explanation method (default: bcos for B-cos models, else ixg)")
    e.add_argument("--layer", choices=tuple(methods.LAYERS), default="input", help="layer (default input)")
    e.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    e.set_defaults(run=run_evaluate)


def emit_json(payload: dict[str, Any]) -> None:
    """The machine-readable result: one JSON object on the last line of stdout (under torchrun, rank 0's only:
    the other ranks' figures are the same gathered ones, and their lines would interleave)."""
    if os.environ.get("RANK", "0") != "0":
        return
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def run_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    """Evaluate and store; exit 1 with a message on a user error."""
    from core.train import CheckpointError  # heavy (torch): only when the command runs
    from services.jobs import evaluate_reference  # heavy (torch): only when the command runs

    try:
        result = evaluate_reference(settings, args.project, args.checkpoint, split=args.split,
                                    attribution=args.attribution, layer=args.layer)
    except (ValueError, CheckpointError) as exc:
        log.error("%s", exc)
        return 1
    if args.json:
        emit_json(result)
    return 0


def run_train(settings: Settings, args: argparse.Namespace) -> int:
    """Run a guided fine-tune in this process; SIGTERM/SIGINT cancel it cleanly."""
    from services.jobs import execute_run, train_project  # heavy (torch): only when the command runs

    cancel = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.warning("received signal %d: cancelling after the current step", signum)
        cancel.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    overrides = config_overrides(args)
    progress_bar = not args.json or sys.stderr.isatty()
    if args.run_id is not None:
        if overrides:
            log.error("--run executes a queued run with the settings in its row; drop %s",
                      ", ".join(f"--{k.replace('_', '-')}" for k in overrides))
            return 2
        result = execute_run(settings, args.run_id, activate=args.activate, cancel=cancel, progress_bar=progress_bar)
    else:
        try:
            TrainConfig().with_overrides(**overrides)  # a usage error (exit 2), refused before any work
        except ValueError as exc:
            log.error("invalid training setting: %s", exc)
            return 2
        result = train_project(settings, project=args.project, overrides=overrides, base=args.base,
                               activate=args.activate, cancel=cancel, progress_bar=progress_bar)
    if result.summary.get("outcome") in ("no_improvement", "at_chance"):  # not errors, never a silent "succeeded"
        log.warning("run %s: %s", result.run_id, result.message)
    if result.summary:
        log.info("run %s: stopped: %s; kept epoch %s", result.run_id, result.summary.get("stop_reason"),
                 result.summary.get("kept_epoch"))
    if args.json:
        emit_json(result.to_json())
    return {"succeeded": 0, "cancelled": 130}.get(result.status, 1)


__all__ = ["add_config_flags", "config_overrides", "register", "run_evaluate", "run_train"]
