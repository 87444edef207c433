"""The demo project's data — its images drawn and imported with labels, groups and boxes — torch-free.

`ui.serve` starts `DemoData` on a fresh data dir before its heavy imports, so the 3,200 images are drawn
(worker processes) and imported into the store while torch and gradio load, instead of after them
(bench/first_start.py). `services.demo` then waits for it, registers the shipped baseline (which needs
torch) and evaluates it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from core.data.synthetic import generate_demo_dataset, load_manifest
from services.database import Database, open_store
from services.settings import Settings
from store.db import session_scope
from store.io.apply import apply_plan
from store.io.plan import ImportPlan, ImportSummary, PlannedBox, PlannedImage
from store.projects import create_project

log = logging.getLogger(__name__)

DEMO_PROJECT = "demo"
DEMO_AUTHOR = "demo-import"

Progress = Callable[[str, int, int], None]  # (stage "images" | "import", done, total)


def demo_dir(settings: Settings) -> Path:
    """Where the demo images live inside the data dir."""
    return settings.data_dir / "demo"


def import_demo_data(engine: Database, settings: Settings, config: Any = None,
                     on_progress: Progress | None = None) -> ImportSummary:
    """Draw the demo images (seconds, in parallel; skipped when already there) and import them as project
    "demo": labels, groups, user-style boxes on the flagged ≤10% of train, ground-truth boxes on val/test.

    `config` is a `core.data.SyntheticConfig` (None: the shipped demo's). No model is registered here.
    """
    directory = demo_dir(settings)
    generate_demo_dataset(directory, config,
                          on_progress=(lambda done, total: on_progress("images", done, total)) if on_progress else None)
    manifest = load_manifest(directory)
    if on_progress is not None:
        on_progress("import", 0, len(manifest["images"]))
    with session_scope(engine) as session:
        create_project(session, name=DEMO_PROJECT, task="single_label", image_size=manifest["image_size"],
                       classes=manifest["classes"])
        summary = _import_images(session, settings, directory, manifest)
    imported = sum(1 for e in manifest["images"] if e["split"] == "train" and e["imported_box"])
    log.info("imported the demo data: %d images, %d boxes (%d imported on train images)", summary.images_added,
             summary.boxes_added, imported)
    return summary


def _import_images(session: Session, settings: Settings, directory: Path, manifest: dict[str, Any]) -> ImportSummary:
    """The demo images as one bulk import (the importers' `apply_plan`)."""
    names = manifest["classes"]

    def boxes(entry: dict[str, Any]) -> list[PlannedBox]:
        if entry["split"] == "train" and not entry["imported_box"]:
            return []
        x0, y0, x1, y1 = (float(v) for v in entry["box"])
        return [PlannedBox(names[entry["label"]], x0, y0, x1, y1, where=entry["file"])]

    planned = [PlannedImage(file=directory / e["file"], split=e["split"], group=e["group"], labels=[names[e["label"]]],
                            boxes=boxes(e)) for e in manifest["images"]]
    plan = ImportPlan(task="single_label", classes=list(names), images=planned, root=directory)
    return apply_plan(session, plan, project_name=DEMO_PROJECT, data_dir=settings.data_dir, author=DEMO_AUTHOR)


class DemoData:
    """`import_demo_data` for a fresh data dir, run by a background thread from `begin` on.

    The thread opens (and creates) the store first; `wait_store` lets the caller open it only after that.
    `wait` blocks until the project's data is in, relaying `(stage, done, total)` to a callback meanwhile,
    and raises what the thread raised, so the caller fails as it would have doing the work itself.
    """

    def __init__(self, settings: Settings, config: Any = None) -> None:
        self.settings = settings
        self.config = config
        self._changed = threading.Condition()
        self._progress: tuple[str, int, int] | None = None
        self._store_ready = threading.Event()
        self._done = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="demo-data", daemon=True)

    def begin(self) -> DemoData:
        """Start the background thread; returns self."""
        self._thread.start()
        return self

    def _work(self) -> None:
        try:
            try:
                engine = open_store(self.settings)
            finally:
                self._store_ready.set()
            try:
                import_demo_data(engine, self.settings, self.config, on_progress=self._record)
            finally:
                engine.dispose()
        except BaseException as exc:  # handed to the waiter, who reports it as its own failure
            log.debug("preparing the demo data failed: %s", exc)
            with self._changed:
                self._error = exc
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def _record(self, stage: str, done: int, total: int) -> None:
        with self._changed:
            self._progress = (stage, done, total)
            self._changed.notify_all()

    def wait_store(self, timeout: float = 60.0) -> None:
        """Block until the thread has opened (created, upgraded) the store, so two openers never race."""
        self._store_ready.wait(timeout)

    def wait(self, on_progress: Progress | None = None) -> None:
        """Block until the demo's data is imported (raises the thread's error)."""
        seen = None
        with self._changed:
            while True:
                if on_progress is not None and self._progress is not None and self._progress != seen:
                    seen = self._progress
                    on_progress(*seen)
                if self._done:
                    break
                self._changed.wait(timeout=1.0)
            if self._error is not None:
                raise RuntimeError(f"preparing the demo data failed: {self._error}") from self._error
