"""`attribute(..., rows=...)` explains only the selected images (guided training's annotated subset)."""

from __future__ import annotations

import pytest
import torch

from core.bcos import small_resnet
from core.explain import EXPLAINERS


@pytest.mark.parametrize("method", ["bcos", "ixg", "intgrad"])
def test_unselected_rows_get_zero_maps_and_selected_rows_are_unchanged(method: str) -> None:
    torch.manual_seed(0)
    model = small_resnet(2).eval().double()
    images = torch.rand(4, 3, 32, 32, dtype=torch.float64)
    targets = torch.tensor([0, 1, 1, 0])
    rows = torch.tensor([True, False, True, False])
    with EXPLAINERS[method](model, layer="input") as explainer:
        full = explainer.attribute(images, targets).maps
        part = explainer.attribute(images, targets, rows=rows).maps
    assert torch.all(part[~rows] == 0)
    torch.testing.assert_close(part[rows], full[rows])
