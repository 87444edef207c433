"""The built-in demo project: the synthetic shortcut data set in the store, with its baseline model.

On a fresh data dir `python app.py` (or `python app.py demo`) generates the data set into
`<data dir>/demo/`, imports it as project "demo" (labels, groups, imported boxes on ≤10% of the
training images, ground-truth boxes on val/test) and registers the shipped baseline checkpoint
`checkpoints/demo-baseline.pt` as the active model. The server does it in the background
(`demo_preparation(...).start(...)`) while its page shows the progress.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sqlalchemy.orm import Session

from common import write_atomically
from core.bcos import build_model
from core.data import GENERATOR_VERSION, load_manifest
from core.train import TrainConfig, file_sha256, read_checkpoint, save_checkpoint
from core.train.fine_tune import fine_tune
from services.database import Database
from services.datasets import project_train_data
from services.demo_data import DEMO_PROJECT, DemoData, demo_dir, import_demo_data
from services.evaluation import evaluate_checkpoint
from services.settings import Settings
from store.db import session_scope
from store.models import Project
from store.paths import stored_path
from store.projects import get_project, list_projects
from store.runs import active_checkpoint, register_checkpoint

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_BASELINE = REPO_ROOT / "checkpoints" / "demo-baseline.pt"


@dataclass(frozen=True)
class DemoStatus:
    """Where building the demo project stands: `stage` is "images" (`done`/`total` written), "import",
    "evaluate" (the project is usable; its baseline is being evaluated), "ready" or "failed" (`error`)."""

    stage: str
    done: int = 0
    total: int = 0
    error: str = ""
    seconds: float = 0.0

    @property
    def usable(self) -> bool:
        """The project exists with its images, boxes and model."""
        return self.stage in ("evaluate", "ready")

    @property
    def finished(self) -> bool:
        """Nothing more will happen."""
        return self.stage in ("ready", "failed")

    def text(self) -> str:
        """One line for people, e.g. "Preparing the demo: 1,200/3,200 images…"."""
        if self.stage == "images":
            return f"Preparing the demo: {self.done:,}/{self.total:,} images…" if self.total else \
                "Preparing the demo: starting…"
        if self.stage == "import":
            return f"Preparing the demo: importing {self.total:,} images, labels and boxes…"
        if self.stage == "evaluate":
            return "The demo is ready. Evaluating its baseline on the test split (the EPG sort and Compare need it)…"
        if self.stage == "failed":
            return f"Could not prepare the demo ({self.error}); run `python app.py demo` to see why."
        return f"The demo is ready ({self.seconds:.0f} s)."


class DemoPreparation:
    """Progress of building the demo project in the background; one per server, read by every page."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._status = DemoStatus("images")

    def update(self, stage: str, done: int = 0, total: int = 0, error: str = "") -> None:
        """Record a new stage or count (thread-safe)."""
        with self._lock:
            self._status = DemoStatus(stage, done, total, error, time.monotonic() - self._started)

    def status(self) -> DemoStatus:
        """The latest status (a frozen copy)."""
        with self._lock:
            return self._status

    def start(self, engine: Database, settings: Settings, data: DemoData | None = None) -> threading.Thread:
        """Build the demo project in a background thread (a failure is logged and shown, never raised);
        `data`: its images already being drawn and imported (`ui.serve`), waited for instead of done again."""
        thread = threading.Thread(target=self._run, args=(engine, settings, data), name="prepare-demo", daemon=True)
        thread.start()
        return thread

    def _run(self, engine: Database, settings: Settings, data: DemoData | None) -> None:
        try:
            if not ensure_demo(engine, settings, only_if_empty=True, preparation=self, data=data):
                self.update("ready")  # a project appeared meanwhile: nothing to prepare
            log.info("the demo project is ready: %.1f s after the server started", self.status().seconds)
        except Exception as exc:  # the server keeps serving; the page says what failed
            log.exception("could not create the demo project; serving without it (try `python app.py demo`)")
            self.update("failed", error=f"{type(exc).__name__}: {exc}")


def demo_preparation(engine: Database, settings: Settings) -> DemoPreparation | None:
    """A (not yet started) preparation of the demo project when the database has no project; None otherwise."""
    with session_scope(engine) as session:
        names = {p.name for p in list_projects(session)}
    if DEMO_PROJECT in names:
        warn_if_outdated(settings)
    return None if names else DemoPreparation()


def ensure_demo(engine: Database, settings: Settings, *, only_if_empty: bool = True, evaluate: bool = True,
                preparation: DemoPreparation | None = None, data: DemoData | None = None) -> bool:
    """Create the demo project unless it exists (or, with `only_if_empty`, unless any project exists).

    With `evaluate`, the baseline is also evaluated on the test split (seconds), so a new user's gallery
    sorts by EPG, finds wrong predictions and has a "before" to compare with from the first page.
    `preparation` receives the progress; `data` is the demo's data already being drawn and imported on a
    fresh data dir (`ui.serve` starts it before its heavy imports): the project it makes is this one.
    Returns True when it was created now.
    """
    if data is None:
        with session_scope(engine) as session:
            names = {p.name for p in list_projects(session)}
        if DEMO_PROJECT in names:
            warn_if_outdated(settings)
        if DEMO_PROJECT in names or (only_if_empty and names):
            return False
    create_demo_project(engine, settings, preparation=preparation, data=data)
    if evaluate:
        if preparation is not None:
            preparation.update("evaluate")
        evaluate_demo_baseline(engine, settings)
    if preparation is not None:
        preparation.update("ready")
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
                        baseline: Path | None = SHIPPED_BASELINE, preparation: DemoPreparation | None = None,
                        data: DemoData | None = None) -> None:
    """Generate the demo images (seconds, in parallel) and import them with labels, groups, boxes and the baseline.

    `config` is a `core.data.SyntheticConfig` (default: the shipped demo's); `baseline` the
    checkpoint registered as active (None: none); `preparation` receives the progress; `data`: the same
    data already being drawn and imported in the background (waited for, not done again).
    """
    on_progress = preparation.update if preparation is not None else None
    if data is not None:  # the same data, started earlier: never drawn twice into one folder
        data.wait(on_progress)
    else:
        import_demo_data(engine, settings, config, on_progress)
    if baseline is not None and baseline.exists():
        with session_scope(engine) as session:
            register_baseline(session, settings, get_project(session, DEMO_PROJECT), baseline)
    elif baseline is not None:
        log.warning("no shipped baseline at %s: train one with `python app.py demo --train-baseline`",
                    SHIPPED_BASELINE)


def register_baseline(session: Session, settings: Settings, project: Project, path: Path) -> int:
    """Register a baseline checkpoint file for the demo project and make it active; returns its id."""
    arch = read_checkpoint(path)["arch"]
    checkpoint = register_checkpoint(session, project_id=project.id, path=stored_path(path, settings.data_dir),
                                     sha256=file_sha256(path), arch=arch, note="demo baseline",
                                     activate=True)
    return checkpoint.id


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
    config = TrainConfig(lam=0.0, lr=lr, epochs=1, schedule="fixed", max_steps_per_epoch=steps, seed=seed,
                         device=settings.device, freeze_norm="no")
    work = settings.data_dir / "baseline-work"
    result = fine_tune(model, data, config, out_dir=work)
    written = save_checkpoint(work, model, classes=list(data.classes), config=config.to_dict(),
                              metrics={**(result.history[-1] if result.history else {}), "role": "demo baseline"})
    out.parent.mkdir(parents=True, exist_ok=True)
    with written.open("rb") as source:  # atomically: a crash never leaves a half-written shipped baseline
        write_atomically(out, lambda target: shutil.copyfileobj(source, target), mode="wb")
    shutil.rmtree(work, ignore_errors=True)
    with session_scope(engine) as session:
        register_baseline(session, settings, get_project(session, DEMO_PROJECT), out)
    log.info("baseline written to %s: %s", out, result.history[-1] if result.history else {})
    return out
