"""A tiny project on a temp data dir + SQLite: 8 images, 2 classes, a small B-cos checkpoint, an evaluation.

Also what every browser module shares: Chromium's launch arguments and the app launched in-process
(the page helpers are in tests/ui/browser.py).
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from services.settings import Settings
from store.db import session_scope
from store.projects import ImageInput, add_images, create_project, set_image_labels
from store.runs import EvaluationImageResult, record_evaluation, register_checkpoint
from ui.deps import AppDeps, build_deps

PROJECT = "tiny"
CLASSES = ["warm", "cool"]
SIZE = 32
CHROMIUM = "/usr/bin/chromium"  # Debian's; never `playwright install`
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-default-apps", "--disable-extensions"]


@dataclass(frozen=True)
class TinyProject:
    """What the fixture built."""

    deps: AppDeps
    name: str
    image_ids: list[int]
    checkpoint_id: int


def _write_images(directory: Path, count: int) -> list[ImageInput]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    inputs = []
    for i in range(count):
        pixels = np.full((SIZE, SIZE, 3), 120, dtype=np.uint8)
        colour = (220, 60, 30) if i % 2 == 0 else (30, 80, 220)
        pixels[8:20, 10:22] = colour
        pixels += rng.integers(0, 20, pixels.shape, dtype=np.uint8)
        path = directory / f"img_{i:02d}.png"
        PILImage.fromarray(pixels).save(path)
        split = "train" if i < 6 else "val"
        inputs.append(ImageInput(path=f"images/{path.name}", sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                                 width=SIZE, height=SIZE, split=split, group=f"{CLASSES[i % 2]}/g"))
    return inputs


def _checkpoint(data_dir: Path) -> Path:
    torch = pytest.importorskip("torch")
    from core.bcos import build_model
    from core.train import save_checkpoint

    torch.manual_seed(0)
    model = build_model("bcos_small", num_classes=len(CLASSES))
    return save_checkpoint(data_dir / "checkpoints", model, classes=CLASSES, metrics={"accuracy": 0.5, "epg": 0.3})


def build_tiny_project(data_dir: Path) -> TinyProject:
    """Create the tiny project in `data_dir` (SQLite there) and return the handles tests need."""
    from core.train import file_sha256

    deps = build_deps(Settings(data_dir=data_dir))
    ckpt = _checkpoint(data_dir)
    with session_scope(deps.engine) as session:
        project = create_project(session, name=PROJECT, task="single_label", image_size=SIZE, classes=CLASSES)
        images = [img for img, _ in add_images(session, project_id=project.id,
                                               images=_write_images(data_dir / "images", 8))]
        for i, image in enumerate(images):
            set_image_labels(session, image_id=image.id, class_names=[CLASSES[i % 2]])
        row = register_checkpoint(session, project_id=project.id, path=f"checkpoints/{ckpt.name}",
                                  sha256=file_sha256(ckpt), arch="bcos_small", activate=True,
                                  metrics={"accuracy": 0.5, "epg": 0.3})
        results = [EvaluationImageResult(image_id=img.id, correct=i % 3 != 0, score=0.5 + i / 20, epg=1.0 - i / 10,
                                         iou=0.2, predicted_index=i % 2) for i, img in enumerate(images)]
        record_evaluation(session, checkpoint_id=row.id, split="train", metrics={"accuracy": 0.5}, results=results)
        return TinyProject(deps, PROJECT, [img.id for img in images], row.id)


@pytest.fixture()
def tiny(tmp_path: Path) -> TinyProject:
    """A fresh tiny project per test."""
    return build_tiny_project(tmp_path / "data")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def launched(deps: AppDeps) -> Iterator[str]:
    """The app on `deps`, launched in-process on a free port for the `with` block: its URL."""
    from ui.layout import build_demo, launch_options

    demo = build_demo(deps)
    demo.queue(default_concurrency_limit=4)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options(deps.settings))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TinyProject]]:
    """The app on the tiny project, launched in-process on a free port: `(url, project)`."""
    project = build_tiny_project(tmp_path_factory.mktemp("served") / "data")
    with launched(project.deps) as url:
        yield url, project


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch arguments, overridden for every browser module here: Debian's Chromium."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}
