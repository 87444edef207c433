"""Fixtures for the B-cos tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """Run these small-input tests on one thread.

    CI has 2 cores shared with other jobs; with small tensors, intra-op thread hand-offs under
    contention cost far more than they save (ResNet-50 at 32², batch 2: ~8 s on 2 busy threads,
    ~0.4 s on one). Restored after each test so other packages keep their settings.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
