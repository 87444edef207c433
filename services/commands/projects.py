"""`python app.py projects` (list projects with their counts) and `python app.py project set P --image-size N`."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import store
from services.database import open_store
from services.own_data import carve_splits, set_image_size
from services.settings import Settings

log = logging.getLogger(__name__)

COLUMNS = ("name", "task", "classes", "images", "annotated_images", "boxes", "created")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `projects` and `project set` commands."""
    p = sub.add_parser("projects", help="list projects with their class, image and box counts")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)
    project = sub.add_parser("project", help="change a project's settings")
    actions = project.add_subparsers(dest="action", metavar="<action>", required=True)
    change = actions.add_parser("set", help="change a project's settings",
                                description="Change a project's settings; only the options given change.")
    change.add_argument("project", help="project name")
    change.add_argument("--image-size", type=int, metavar="N",
                        help="side in pixels of the square images are resized to for training, evaluation and "
                             "explanations: a multiple of 32 from 32 to 1024 (imports infer it)")
    change.set_defaults(run=run_set)
    split = actions.add_parser(
        "split", help="carve a validation/test split out of a project's training images",
        description="Move a stratified, seeded fraction of each class's training images into val (and/or test). "
                    "For a project imported without a validation split: training picks its best epoch on val. "
                    "A split that already has images is left alone, unless --grow: for a validation split too "
                    "small to judge a run (the app's warning names the fraction).")
    split.add_argument("project", help="project name")
    split.add_argument("--val-fraction", type=float, metavar="F", help="fraction of each class moved to val")
    split.add_argument("--test-fraction", type=float, metavar="F", help="fraction of each class moved to test")
    split.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    split.add_argument("--grow", action="store_true",
                       help="add to a split that already has images; checkpoints evaluated on it need evaluating "
                            "again, and models fine-tuned before saw the moved images in training")
    split.set_defaults(run=run_split)


def _table(rows: list[dict[str, str]]) -> list[str]:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    line = "  ".join(c.ljust(widths[c]) for c in COLUMNS)
    return [line, *("  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in rows)]


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Print the projects (a table, or JSON with --json)."""
    engine = open_store(settings, create=False)
    try:
        with store.session_scope(engine) as session:
            projects = store.list_projects(session)
    finally:
        engine.dispose()
    rows = [{c: (getattr(p, c).strftime("%Y-%m-%d %H:%M") if c == "created" else str(getattr(p, c)))
             for c in COLUMNS} for p in projects]
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    elif not rows:
        sys.stdout.write(f"no projects yet in {settings.database_url}; import one with "
                         "`python app.py import folder PATH --project NAME`\n")
    else:
        sys.stdout.write("\n".join(_table(rows)) + "\n")
    return 0


def run_set(settings: Settings, args: argparse.Namespace) -> int:
    """Apply the settings given; exit 2 with what is allowed when one is not valid or none is given."""
    if args.image_size is None:
        log.error("nothing to set: give --image-size N")
        return 2
    engine = open_store(settings, create=False)
    try:
        info = set_image_size(engine, args.project, args.image_size)
    except ValueError as exc:  # NotFoundError is a ValueError
        log.error("%s", exc)
        return 2
    finally:
        engine.dispose()
    sys.stdout.write(f"project {info.name}: image size {info.image_size} px (training, evaluation and explanations "
                     "use it from now on; fine-tune a model at the new size before comparing it)\n")
    return 0


def run_split(settings: Settings, args: argparse.Namespace) -> int:
    """Carve val/test out of train; exit 2 with what to do when refused."""
    engine = open_store(settings, create=False)
    try:
        moved = carve_splits(engine, args.project, val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                             seed=args.seed, grow=args.grow)
    except ValueError as exc:  # NotFoundError is a ValueError
        log.error("%s", exc)
        return 2
    finally:
        engine.dispose()
    sys.stdout.write(f"project {args.project}: " + ", ".join(f"{n} images moved from train to {s}"
                                                             for s, n in moved.items()) + "\n")
    return 0
