"""Hand-checkable values: linear models, contrast targets, GradCAM by formula, IG against IxG."""

from __future__ import annotations

import torch
from torch import nn

from core.explain import GradCAM, InputXGradient, IntegratedGradients, target_scores

from .conftest import BiasFreeReLUNet, TinyLinear


def _linear_setup() -> tuple[TinyLinear, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return TinyLinear(), torch.rand(2, 3, 4, 4), torch.tensor([2, 0])


def test_ixg_of_a_linear_model_is_weight_times_input() -> None:
    model, x, targets = _linear_setup()
    with InputXGradient(model) as explainer:
        maps = explainer.attribute(x, targets).maps
    w = model.fc.weight.detach().view(3, 3, 4, 4)  # (classes, C, H, W)
    torch.testing.assert_close(maps, (w[targets] * x).sum(1))
    torch.testing.assert_close(maps.sum((1, 2)), model(x)[torch.arange(2), targets].detach())


def test_contrast_explains_margin_over_strongest_other_class() -> None:
    model, x, targets = _linear_setup()
    logits = model(x).detach()
    rival = logits.masked_fill(torch.nn.functional.one_hot(targets, 3).bool(), float("-inf")).argmax(1)
    with InputXGradient(model) as explainer:
        maps = explainer.attribute(x, targets, contrast=True).maps
    w = model.fc.weight.detach().view(3, 3, 4, 4)
    torch.testing.assert_close(maps, ((w[targets] - w[rival]) * x).sum(1))


def test_target_scores_by_hand() -> None:
    logits = torch.tensor([[1.0, 5.0, 2.0], [4.0, -1.0, 3.5]])
    targets = torch.tensor([1, 2])
    torch.testing.assert_close(target_scores(logits, targets), torch.tensor([5.0, 3.5]))
    torch.testing.assert_close(target_scores(logits, targets, contrast=True), torch.tensor([3.0, -0.5]))


class _FeatureThenLinear(nn.Module):
    """The feature at module ``feat`` is the image itself, so GradCAM is computable by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Identity()
        self.fc = nn.Linear(3 * 4 * 4, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.feat(x).flatten(1))


def test_gradcam_by_formula() -> None:
    torch.manual_seed(0)
    model, x, targets = _FeatureThenLinear(), torch.rand(2, 3, 4, 4) - 0.5, torch.tensor([1, 2])
    with GradCAM(model, layer="feat") as explainer:
        maps = explainer.attribute(x, targets).maps
    grads = model.fc.weight.detach().view(3, 3, 4, 4)[targets]  # (B, C, H, W)
    alpha = grads.mean((2, 3), keepdim=True)
    torch.testing.assert_close(maps, (alpha * x).sum(1).clamp(min=0))


def test_intgrad_equals_ixg_on_a_bias_free_relu_net() -> None:
    torch.manual_seed(0)
    model, x, targets = BiasFreeReLUNet().eval(), torch.rand(2, 3, 16, 16), torch.tensor([0, 3])
    with InputXGradient(model) as ixg, IntegratedGradients(model, steps=64) as ig:
        torch.testing.assert_close(ig.attribute(x, targets).maps, ixg.attribute(x, targets).maps, rtol=1e-4, atol=1e-6)


def test_intgrad_completeness_with_biases() -> None:
    """Σ A ≈ score(x) − score(0) for a net with biases (the IG axiom), with many steps."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()
    x, targets = torch.rand(2, 3, 8, 8), torch.tensor([1, 2])
    with IntegratedGradients(model, steps=256) as ig:
        total = ig.attribute(x, targets).maps.sum((1, 2))
    with torch.no_grad():
        expected = (model(x) - model(torch.zeros_like(x)))[torch.arange(2), targets]
    torch.testing.assert_close(total, expected, rtol=1e-2, atol=1e-3)


def test_intgrad_chunking_matches_single_pass() -> None:
    torch.manual_seed(0)
    model, x, targets = BiasFreeReLUNet().eval(), torch.rand(3, 3, 8, 8), torch.tensor([0, 1, 2])
    with IntegratedGradients(model, layer="features.1", steps=5) as whole:
        expected = whole.attribute(x, targets)
    with IntegratedGradients(model, layer="features.1", steps=5, internal_batch_size=7) as chunked:
        out = chunked.attribute(x, targets)
    torch.testing.assert_close(out.maps, expected.maps)
    torch.testing.assert_close(out.logits, model(x).detach())
