"""A tiny demo project in a temp data dir with an untrained B-cos checkpoint as its active model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from services.settings import Settings

TINY = {"seed": 5, "image_size": 64, "train_size": 64, "val_size": 16, "test_size": 16, "imported_fraction": 0.5}


def make_tiny_project(data_dir: Path) -> Settings:
    """Create project "demo" (tiny) in `data_dir` with a random-init `bcos_small` as active checkpoint."""
    from core.bcos import build_model
    from core.data import SyntheticConfig
    from core.train import save_checkpoint
    from services.database import open_store
    from services.demo import create_demo_project

    settings = Settings(data_dir=data_dir, device="cpu")
    torch.manual_seed(0)
    path = save_checkpoint(data_dir / "checkpoints", build_model("bcos_small", 2), classes=["warm", "cool"])
    engine = open_store(settings)
    create_demo_project(engine, settings, config=SyntheticConfig(**TINY), baseline=path)
    engine.dispose()
    return settings


@pytest.fixture(scope="session")
def tiny_project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-project")
    make_tiny_project(root)
    return root


@pytest.fixture
def tiny_project(tiny_project_template: Path, tmp_path: Path) -> Settings:
    """A private copy of the tiny project (database and files) for one test."""
    import shutil

    target = tmp_path / "data"
    shutil.copytree(tiny_project_template, target)
    return Settings(data_dir=target, device="cpu")
