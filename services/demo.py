"""The built-in demo project: the synthetic shortcut data set in the store, with its baseline model.

On a fresh data dir `python app.py` (or `python app.py demo`) generates the data set into
`<data dir>/demo/`, imports it as project "demo" (labels, groups, imported boxes on ≤10% of the
training images, ground-truth boxes on val/test) and registers the shipped baseline checkpoint
`checkpoints/demo-baseline.pt` as the active model.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from sqlalchemy.orm import Session

from core.bcos import build_model
from core.data import GENERATOR_VERSION, generate_demo_dataset, load_manifest
from core.train import TrainConfig, file_sha256, read_checkpoint, save_checkpoint
from core.train.fine_tune import fine_tune
from services.database import Database
from services.datasets import project_train_data
from services.evaluation import evaluate_checkpoint
from services.settings import Settings
from store.boxes import add_box
from store.db import session_scope
from store.models import Project
from store.paths import stored_path
from store.projects import (
    ImageInput,
    add_images,
    create_project,
    get_project,
    list_classes,
    list_projects,
    set_image_labels,
)
from store.runs import active_checkpoint, register_checkpoint

log = logging.getLogger(__name__)

DEMO_PROJECT = "demo"
REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_BASELINE = REPO_ROOT / "checkpoints" / "demo-baseline.pt"
DEMO_AUTHOR = "demo-import"


def demo_dir(settings: Settings) -> Path:
    """Where the demo images live inside the data dir."""
    return settings.data_dir / "demo"


def ensure_demo(engine: Database, settings: Settings, *, only_if_empty: bool = True, evaluate: bool = True) -> bool:
    """Create the demo project unless it exists (or, with `only_if_empty`, unless any project exists).

    With `evaluate`, the baseline is also evaluated on the test split (seconds), so a new user's gallery
    sorts by EPG, finds wrong predictions and has a "before" to compare with from the first page.
    Returns True when it was created now.
    """
    with session_scope(engine) as session:
        names = {p.name for p in list_projects(session)}
    if DEMO_PROJECT in names:
        warn_if_outdated(settings)
    if DEMO_PROJECT in names or (only_if_empty and names):
        return False
    create_demo_project(engine, settings)
    if evaluate:
        evaluate_demo_baseline(engine, settings)
    return True


def warn_if_outdated(settings: Settings) -> bool:
    """Log a warning (and return True) when the existing demo's images predate the current generator.

    The shipped baseline is trained on the current version; on older images (version 1 paired the badges
    the other way round) its predictions and the README's numbers do not hold. Nothing is changed: the
    project may hold the user's own boxes.
    """
    try:
        version = load_manifest(demo_dir(settings)).get("version")
    except (OSError, ValueError):
        return False  # no manifest: nothing to compare (a demo made elsewhere, or files removed)
    if version == GENERATOR_VERSION:
        return False
    log.warning("the demo project in %s was made from demo data set version %s, but this release ships a baseline "
                "for version %d: its predictions and numbers will not match the README. Start with a fresh data "
                "dir (--data-dir) to get the current demo; your existing project is left as it is.",
                settings.data_dir, version, GENERATOR_VERSION)
    return True


def evaluate_demo_baseline(engine: Database, settings: Settings) -> None:
    """Evaluate the demo's active checkpoint on test; a failure is logged, never fatal (the app still starts)."""
    try:
        with session_scope(engine) as session:
            project = get_project(session, DEMO_PROJECT)
            checkpoint = active_checkpoint(session, project.id)
            if checkpoint is None:
                return
            log.info("evaluating the demo baseline on the test split (once, a few seconds)")
            evaluate_checkpoint(session, settings, project, checkpoint, split="test")
    except Exception:  # the demo must open even if this fails; the user can run `evaluate` later
        log.exception("could not evaluate the demo baseline; run `python app.py evaluate --project demo`")


def create_demo_project(engine: Database, settings: Settings, *, config: Any = None,
                        baseline: Path | None = SHIPPED_BASELINE) -> None:
    """Generate the demo images (seconds) and import them with labels, groups, boxes and the baseline.

    `config` is a `core.data.SyntheticConfig` (default: the shipped demo's); `baseline` the
    checkpoint registered as active (None: none).
    """
    directory = demo_dir(settings)
    generate_demo_dataset(directory, config)
    manifest = load_manifest(directory)
    with session_scope(engine) as session:
        project = create_project(session, name=DEMO_PROJECT, task="single_label", image_size=manifest["image_size"],
                                 classes=manifest["classes"])
        counts = _import_images(session, settings, project, directory, manifest)
        if baseline is not None and baseline.exists():
            register_baseline(session, settings, project, baseline)
        elif baseline is not None:
            log.warning("no shipped baseline at %s: train one with `python app.py demo --train-baseline`",
                        SHIPPED_BASELINE)
    log.info("created the demo project: %d images, %d boxes (%d imported on train images)", *counts)


def _import_images(session: Session, settings: Settings, project: Project, directory: Path,
                   manifest: dict[str, Any]) -> tuple[int, int, int]:
    size = manifest["image_size"]
    entries = manifest["images"]
    inputs = [ImageInput(path=stored_path(directory / e["file"], settings.data_dir),
                         sha256=_sha256(directory / e["file"]), width=size, height=size, split=e["split"],
                         group=e["group"]) for e in entries]
    images = [image for image, _ in add_images(session, project_id=project.id, images=inputs)]
    names = [c.name for c in list_classes(session, project.id)]
    boxes = imported = 0
    for entry, image in zip(entries, images):
        set_image_labels(session, image_id=image.id, class_names=[names[entry["label"]]])
        if entry["split"] != "train" or entry["imported_box"]:  # user-style boxes on ≤10% of train
            x0, y0, x1, y1 = (float(v) for v in entry["box"])
            add_box(session, image_id=image.id, label=names[entry["label"]], x0=x0, y0=y0, x1=x1, y1=y1,
                    author=DEMO_AUTHOR, source="imported")
            boxes += 1
            imported += entry["split"] == "train"
    return len(images), boxes, imported


def register_baseline(session: Session, settings: Settings, project: Project, path: Path) -> int:
    """Register a baseline checkpoint file for the demo project and make it active; returns its id."""
    arch = read_checkpoint(path)["arch"]
    checkpoint = register_checkpoint(session, project_id=project.id, path=stored_path(path, settings.data_dir),
                                     sha256=file_sha256(path), arch=arch, note="demo baseline",
                                     activate=True)
    return checkpoint.id


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_baseline(engine: Database, settings: Settings, *, out: Path, steps: int, lr: float, seed: int) -> Path:
    """Train the demo's unguided baseline from scratch (classification loss only) and write it to `out`.

    A few steps of plain training (batch statistics, re-estimated at the end) learn the salient corner
    badge but not yet the object: the baseline the demo needs. Reproducible: same seed, same data,
    same result on the same machine. The final model is kept, not a Pareto choice.
    """
    ensure_demo(engine, settings, only_if_empty=False, evaluate=False)
    with session_scope(engine) as session:
        data = project_train_data(session, settings, get_project(session, DEMO_PROJECT))
    torch.manual_seed(seed)
    model = build_model("bcos_small", num_classes=len(data.classes))
    config = TrainConfig(lam=0.0, lr=lr, epochs=1, max_steps_per_epoch=steps, seed=seed, device=settings.device,
                         freeze_norm="no")
    work = settings.data_dir / "baseline-work"
    result = fine_tune(model, data, config, out_dir=work)
    written = save_checkpoint(work, model, classes=list(data.classes), config=config.to_dict(),
                              metrics={**(result.history[-1] if result.history else {}), "role": "demo baseline"})
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(written, out)
    shutil.rmtree(work, ignore_errors=True)
    with session_scope(engine) as session:
        register_baseline(session, settings, get_project(session, DEMO_PROJECT), out)
    log.info("baseline written to %s: %s", out, result.history[-1] if result.history else {})
    return out
