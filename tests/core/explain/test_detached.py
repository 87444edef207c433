"""The graph-free path (`attribute_detached`, `__call__`) gives the same values as `attribute`, and
`constant_factors` gives the same input gradient as explanation mode (it only skips work)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core import bcos as core_bcos
from core.explain import EXPLAINERS


def _net() -> nn.Module:
    """Every kind of dynamic factor (B = 2 and B ≠ 2 convs, a strided 1×1 conv, norm, linear), float64."""
    torch.manual_seed(0)
    return nn.Sequential(
        core_bcos.BcosConv2d(3, 4, 3, padding=1),
        core_bcos.UncentredBatchNorm2d(4),
        core_bcos.BcosConv2d(4, 6, 1, stride=2),
        core_bcos.BcosConv2d(6, 5, 3, padding=1, b=2.5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        core_bcos.BcosLinear(5, 3),
    ).double()


@pytest.mark.parametrize("training", [False, True])
def test_constant_factors_give_the_explanation_mode_gradient(training: bool) -> None:
    net = _net().train(training)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    grads = []
    for constant in (False, True):
        leaf = x.clone().requires_grad_()
        with core_bcos.constant_factors(net, enabled=constant):
            out = net(leaf)
        with core_bcos.explanation_mode(net):
            grads.append(torch.autograd.grad(out[:, 1].sum(), leaf)[0])
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-12, atol=1e-14)
    assert not any(m.constant_factors for m in net.modules() if isinstance(m, core_bcos.ExplainableModule))


@pytest.mark.parametrize("method", ["bcos", "ixg", "gradcam", "intgrad"])
@pytest.mark.parametrize("layer", ["input", "mid2"])
def test_attribute_detached_matches_attribute(method: str, layer: str) -> None:
    torch.manual_seed(0)
    model = core_bcos.small_resnet(num_classes=3).eval().double()
    images = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    targets = torch.tensor([0, 2, 1])
    with EXPLAINERS[method](model, layer=layer) as explainer:
        full = explainer.attribute(images, targets)
        detached = explainer.attribute_detached(images, targets)
    assert not detached.maps.requires_grad and not detached.logits.requires_grad
    torch.testing.assert_close(detached.maps, full.maps.detach(), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(detached.logits, full.logits.detach(), rtol=1e-12, atol=1e-12)
