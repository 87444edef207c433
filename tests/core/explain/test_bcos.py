"""B-cos explanations: completeness (Σ map = logit − logit_bias) and equality with the ``bcos`` package."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from core import bcos as core_bcos
from core.explain import EXPLAINERS, BcosExplainer, InputXGradient


@pytest.fixture(scope="module")
def small() -> nn.Module:
    """The 64×64 demo B-cos ResNet, randomly initialised, eval mode."""
    torch.manual_seed(0)
    return core_bcos.small_resnet(num_classes=3).eval()


@pytest.fixture(scope="module")
def small64(small: nn.Module) -> nn.Module:
    """The demo net in float64: a random net's logits sit ~1e-4 above the -6.9 bias, below float32's resolution."""
    return copy.deepcopy(small).double()


def _demo_images(batch: int = 2, size: int = 64) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("layer", ["input", "mid1", "mid2", "mid3", "final"])
def test_contributions_sum_to_logit_minus_bias(small64: nn.Module, layer: str) -> None:
    x, targets = _demo_images().double(), torch.tensor([0, 2])
    with BcosExplainer(small64, layer=layer) as explainer:
        out = explainer.attribute(x, targets)
    explained = out.logits[torch.arange(2), targets] - small64.logit_bias
    torch.testing.assert_close(out.maps.sum((1, 2)), explained.detach(), rtol=1e-5, atol=1e-12)


def test_contrast_contributions_sum_to_the_margin(small64: nn.Module) -> None:
    x, targets = _demo_images().double(), torch.tensor([1, 1])
    with BcosExplainer(small64) as explainer:
        out = explainer.attribute(x, targets, contrast=True)
    logits = out.logits.detach()
    rival = logits.masked_fill(torch.nn.functional.one_hot(targets, 3).bool(), float("-inf")).amax(1)
    torch.testing.assert_close(out.maps.sum((1, 2)), logits[torch.arange(2), targets] - rival, rtol=1e-5, atol=1e-12)


def test_bcos_differs_from_ixg_and_keeps_logits_for_training(small: nn.Module) -> None:
    """Only the gradient call is in explanation mode: the logits are the normal ones and carry a graph."""
    x, targets = _demo_images(), torch.tensor([0, 1])
    with BcosExplainer(small, layer="input") as bcos, InputXGradient(small, layer="input") as ixg:
        out = bcos.attribute(x, targets, create_graph=True)
        plain = ixg.attribute(x, targets).maps
    assert (out.maps - plain).abs().max() > 0.1 * plain.abs().max()
    assert out.logits.requires_grad and out.maps.requires_grad
    (out.maps.sum() + nn.functional.cross_entropy(out.logits, targets)).backward()
    assert small.conv1.linear.weight.grad is not None
    small.zero_grad(set_to_none=True)


def test_weights_times_encoded_input_is_the_map(small: nn.Module) -> None:
    x, targets = _demo_images(), torch.tensor([2, 0])
    with BcosExplainer(small, layer="mid2") as explainer:  # weights() always works at the input
        weights = explainer.weights(x, targets)
    with BcosExplainer(small, layer="input") as explainer:
        maps = explainer.attribute(x, targets).maps
    assert weights.shape == (2, 6, 64, 64) and not weights.requires_grad
    torch.testing.assert_close((weights * torch.cat([x, 1 - x], 1)).sum(1), maps, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_every_explainer_runs_on_a_bcos_net(small: nn.Module, method: str) -> None:
    x = _demo_images()
    options = {"steps": 2} if method == "intgrad" else {}
    with EXPLAINERS[method](small, layer="mid2", **options) as explainer:
        maps = explainer(x, torch.tensor([0, 1]))
    assert maps.shape == (2, 64, 64) and torch.isfinite(maps).all()


def test_matches_bcos_package_explain() -> None:
    """Same weights in the ``bcos`` package's ResNet-18: its per-image ``explain()`` gives our map and weights."""
    from bcos.models.pretrained import resnet18 as reference_resnet18

    torch.manual_seed(0)
    reference = reference_resnet18(pretrained=False).eval()
    ours = core_bcos.resnet18(num_classes=1000).eval()
    ours.load_state_dict(reference.state_dict())
    x, targets = _demo_images(2, 32), torch.tensor([3, 999])
    with BcosExplainer(ours, layer="input") as explainer:
        maps = explainer(x, targets)
        weights = explainer.weights(x, targets)
    for i in range(2):
        encoded = torch.cat([x[i : i + 1], 1 - x[i : i + 1]], 1).requires_grad_()
        expected = reference.explain(encoded, idx=int(targets[i]))
        torch.testing.assert_close(maps[i], expected["contribution_map"][0].detach(), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(weights[i], expected["dynamic_linear_weights"][0], rtol=1e-4, atol=1e-6)
