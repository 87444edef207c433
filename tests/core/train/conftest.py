"""A tiny demo-like data set (48² images, every training image boxed) shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data import CLASSES, GROUPS, SyntheticConfig, demo_records, generate_demo_dataset
from core.train.loop import TrainData


@pytest.fixture(scope="session")
def tiny_demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-demo")
    config = SyntheticConfig(seed=3, image_size=64, train_size=96, val_size=32, test_size=32, imported_fraction=1.0)
    generate_demo_dataset(directory, config)
    return directory


@pytest.fixture(scope="session")
def tiny_data(tiny_demo_dir: Path) -> TrainData:
    return TrainData(train=demo_records(tiny_demo_dir, "train"), val=demo_records(tiny_demo_dir, "val"),
                     classes=list(CLASSES), image_size=64, multi_label=False, group_names=list(GROUPS))
