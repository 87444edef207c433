"""A small demo data set generated once per test session (same code path as the full one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.data import SyntheticConfig, generate_demo_dataset

SMALL = SyntheticConfig(seed=3, train_size=400, val_size=80, test_size=160)


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding a generated 640-image demo set."""
    directory = tmp_path_factory.mktemp("demo")
    generate_demo_dataset(directory, SMALL)
    return directory
