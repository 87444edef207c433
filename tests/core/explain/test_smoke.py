"""Smoke matrix: method × layer × batch size — shapes, finiteness, ranges, no graph from __call__."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.explain import EXPLAINERS, LAYER_NAMES

# layer -> (h, w) of a ResNet-18 feature map for 32×32 inputs
RESOLUTION = {"input": (32, 32), "mid1": (8, 8), "mid2": (4, 4), "mid3": (2, 2), "final": (1, 1)}
OPTIONS = {"intgrad": {"steps": 3}}


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("layer", LAYER_NAMES)
@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_shapes_ranges_and_finiteness(
    resnet18: nn.Module, images: torch.Tensor, method: str, layer: str, batch: int
) -> None:
    x, targets = images[:batch], torch.arange(batch)
    with EXPLAINERS[method](resnet18, layer=layer, **OPTIONS.get(method, {})) as explainer:
        out = explainer.attribute(x, targets)
        maps = explainer(x, targets)
    assert out.logits.shape == (batch, 10)
    assert out.maps.shape == (batch, *RESOLUTION[layer])
    assert maps.shape == (batch, 32, 32)
    assert torch.isfinite(out.maps).all() and torch.isfinite(maps).all()
    assert not maps.requires_grad
    assert torch.allclose(out.logits, resnet18(x), atol=1e-5)
    if method == "gradcam":
        assert (out.maps >= 0).all() and (maps >= 0).all()


@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_create_graph_gives_differentiable_maps(resnet18: nn.Module, images: torch.Tensor, method: str) -> None:
    with EXPLAINERS[method](resnet18, layer="mid2", **OPTIONS.get(method, {})) as explainer:
        out = explainer.attribute(images[:2], torch.tensor([0, 1]), create_graph=True)
    assert out.maps.requires_grad and out.logits.requires_grad
    (out.maps.square().sum() + out.logits.sum()).backward()
    assert resnet18.conv1.weight.grad is not None and torch.isfinite(resnet18.conv1.weight.grad).all()
    resnet18.zero_grad(set_to_none=True)


@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_call_matches_upsampled_attribute(resnet18: nn.Module, images: torch.Tensor, method: str) -> None:
    targets = torch.tensor([3, 1, 4])
    with EXPLAINERS[method](resnet18, layer="mid3", **OPTIONS.get(method, {})) as explainer:
        raw = explainer.attribute(images, targets).maps
        maps = explainer(images, targets)
    expected = torch.nn.functional.interpolate(raw[:, None], size=(32, 32), mode="bilinear", align_corners=False)
    torch.testing.assert_close(maps, expected[:, 0], rtol=1e-5, atol=1e-6)
