"""`python app.py train` and `python app.py evaluate`: guided fine-tuning and evaluation of a project."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any

from services.settings import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `train` and `evaluate` commands."""
    from core.train.config import ATTRIBUTION_NAMES, LAYER_NAMES, LOSS_NAMES, TARGET_NAMES, TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="guided fine-tuning of a project's model (defaults = the UI's one click)")
    p.add_argument("--project", required=True, help="project name")
    p.add_argument("--base", default="active", help="checkpoint to start from: id, file path or 'active' (default)")
    p.add_argument("--loss", choices=LOSS_NAMES, help=f"localisation loss (default {d.loss})")
    p.add_argument("--attribution", choices=ATTRIBUTION_NAMES,
                   help="explanation method guided (default: bcos for B-cos models, else ixg)")
    p.add_argument("--layer", choices=LAYER_NAMES, help=f"layer the explanation is taken at (default {d.layer})")
    p.add_argument("--lam", type=float, help=f"λ, weight of the summed localisation loss (default {d.lam})")
    p.add_argument("--lr", type=float, help=f"learning rate, Adam (default {d.lr})")
    p.add_argument("--epochs", type=int, help=f"epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=int, help=f"batch size (default {d.batch_size})")
    p.add_argument("--annotated-fraction", type=float,
                   help="fraction of the training images with boxes whose boxes are used (default 1.0)")
    p.add_argument("--box-dilation", type=float, help="grow every box side by this fraction (default 0)")
    p.add_argument("--target", choices=TARGET_NAMES,
                   help=f"guided score: class logit, contrast, or auto = contrast for single-label and class for "
                        f"multi-label projects (default {d.target})")
    p.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    p.add_argument("--bf16", action="store_true", default=None, help="bf16 autocast (CUDA only)")
    p.add_argument("--min-metric", type=float, help="stop early when val accuracy/F1 falls below this")
    p.add_argument("--max-steps-per-epoch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(run=run_train)

    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a split and store per-image results")
    e.add_argument("--project", required=True, help="project name")
    e.add_argument("--checkpoint", default="active", help="checkpoint id, file path or 'active' (default)")
    e.add_argument("--split", default="test", help="split to evaluate (default test)")
    e.add_argument("--attribution", choices=ATTRIBUTION_NAMES, help="explanation method (default: bcos or ixg)")
    e.add_argument("--layer", choices=LAYER_NAMES, default="input", help="layer (default input)")
    e.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    e.set_defaults(run=run_evaluate)


def emit_json(payload: dict[str, Any]) -> None:
    """The machine-readable result: one JSON object on the last line of stdout."""
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def run_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    """Evaluate and store; exit 1 with a message on a user error."""
    from core.train import CheckpointError
    from services.database import open_store
    from services.evaluation import evaluate_checkpoint
    from services.jobs import resolve_checkpoint
    from store.db import session_scope
    from store.projects import get_project

    engine = open_store(settings)
    try:
        with session_scope(engine) as session:
            project = get_project(session, args.project)
            checkpoint = resolve_checkpoint(session, settings, project, args.checkpoint)
            result = evaluate_checkpoint(session, settings, project, checkpoint, split=args.split,
                                         attribution=args.attribution, layer=args.layer)
    except (ValueError, CheckpointError) as exc:
        log.error("%s", exc)
        return 1
    if args.json:
        emit_json(result)
    return 0


def run_train(settings: Settings, args: argparse.Namespace) -> int:
    """Run a guided fine-tune in this process; SIGTERM/SIGINT cancel it cleanly."""
    from services.jobs import TrainRequest, train_project

    cancel = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.warning("received signal %d: cancelling after the current step", signum)
        cancel.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    overrides = {k: getattr(args, k) for k in ("loss", "attribution", "layer", "lam", "lr", "epochs", "batch_size",
                                               "annotated_fraction", "box_dilation", "target", "seed", "bf16",
                                               "min_metric", "max_steps_per_epoch")}
    request = TrainRequest(project=args.project, base=args.base, overrides=overrides,
                           progress_bar=not args.json or sys.stderr.isatty())
    result = train_project(settings, request, cancel=cancel)
    if args.json:
        emit_json(result)
    return 0 if result.get("status") == "succeeded" else (130 if result.get("status") == "cancelled" else 1)


__all__ = ["register", "run_evaluate", "run_train"]
