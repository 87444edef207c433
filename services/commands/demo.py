"""`python app.py demo`: create the built-in demo project (and, on request, retrain its baseline)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from services.settings import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `demo` command."""
    p = sub.add_parser("demo", help="create the demo project (synthetic shortcut data set + baseline model)")
    p.add_argument("--train-baseline", action="store_true",
                   help="retrain the unguided baseline from scratch and write it to --out")
    p.add_argument("--out", type=Path, default=None, help="baseline file (default checkpoints/demo-baseline.pt)")
    p.add_argument("--steps", type=int, default=4,
                   help="baseline optimiser steps of batch 64 (default 4: long enough to learn the corner badge, "
                        "too short to learn the object; see bench/RESULTS.md, demo)")
    p.add_argument("--lr", type=float, default=1e-3, help="baseline learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="baseline seed (default 0)")
    p.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Create the demo project if missing; optionally retrain the baseline."""
    # heavy (torch) imports only when the command runs, so `app.py --help` stays quick
    from services.database import open_store
    from services.demo import SHIPPED_BASELINE, ensure_demo, train_baseline

    engine = open_store(settings)
    if args.train_baseline:
        train_baseline(engine, settings, out=args.out or SHIPPED_BASELINE, steps=args.steps, lr=args.lr,
                       seed=args.seed)
        return 0
    created = ensure_demo(engine, settings, only_if_empty=False)
    log.info("demo project %s", "created" if created else "already exists")
    return 0
