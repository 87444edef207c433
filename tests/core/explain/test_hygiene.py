"""Hooks never leak, inputs are never mutated, model mode is untouched, misuse fails clearly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.explain import EXPLAINERS, resolve_layer

OPTIONS = {"intgrad": {"steps": 2}}


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.mark.parametrize("layer", ["input", "mid2", "final"])
@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_no_hooks_left_after_exit(resnet18: nn.Module, images: torch.Tensor, method: str, layer: str) -> None:
    before = _hook_count(resnet18)
    with EXPLAINERS[method](resnet18, layer=layer, **OPTIONS.get(method, {})) as explainer:
        explainer(images[:1], torch.tensor([0]))
    assert _hook_count(resnet18) == before


@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_no_hooks_left_after_an_exception_which_propagates(resnet18: nn.Module, method: str) -> None:
    before = _hook_count(resnet18)
    with pytest.raises(KeyError, match="boom"), EXPLAINERS[method](resnet18, layer="mid1") as explainer:
        assert _hook_count(resnet18) == before + 1
        raise KeyError("boom")
    assert _hook_count(resnet18) == before
    with pytest.raises(ValueError, match="images must be"), EXPLAINERS[method](resnet18, layer="mid1") as explainer:
        explainer(torch.rand(3, 32, 32), torch.tensor([0]))
    assert _hook_count(resnet18) == before


@pytest.mark.parametrize("layer", ["input", "mid3"])
@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_inputs_are_not_mutated(resnet18: nn.Module, images: torch.Tensor, method: str, layer: str) -> None:
    targets = torch.tensor([2, 0, 1])
    images_copy, targets_copy = images.clone(), targets.clone()
    with EXPLAINERS[method](resnet18, layer=layer, **OPTIONS.get(method, {})) as explainer:
        explainer.attribute(images, targets, create_graph=True, contrast=True)
        explainer(images, targets)
    assert torch.equal(images, images_copy) and torch.equal(targets, targets_copy)
    assert not images.requires_grad and images.grad is None
    assert all(p.grad is None for p in resnet18.parameters())


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_train_eval_mode_is_untouched(resnet18: nn.Module, images: torch.Tensor, method: str, training: bool) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    model.train(training)
    with EXPLAINERS[method](model, layer="0", **OPTIONS.get(method, {})) as explainer:
        explainer(images, torch.tensor([0, 1, 0]))
    assert all(m.training == training for m in model.modules())


def test_calling_outside_the_with_block_fails_clearly(resnet18: nn.Module, images: torch.Tensor) -> None:
    explainer = EXPLAINERS["ixg"](resnet18, layer="mid1")
    with pytest.raises(RuntimeError, match="context manager"):
        explainer(images, torch.tensor([0, 1, 2]))
    with explainer:  # built once, usable again after a misuse
        assert explainer(images, torch.tensor([0, 1, 2])).shape == (3, 32, 32)


def test_bad_targets_fail_clearly(resnet18: nn.Module, images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="targets must be"), EXPLAINERS["ixg"](resnet18) as explainer:
        explainer(images, torch.tensor([0]))


def test_layer_names_resolve(resnet18: nn.Module) -> None:
    assert resolve_layer(resnet18, "input") is None
    assert resolve_layer(resnet18, "final") is resnet18.layer4
    assert resolve_layer(resnet18, "layer2.1.conv2") is resnet18.layer2[1].conv2
    model = nn.Sequential(nn.Identity(), nn.Conv2d(3, 3, 1))
    model.explain_layers = {"input": "0", "final": "1"}  # type: ignore[assignment]
    assert resolve_layer(model, "input") is model[0] and resolve_layer(model, "final") is model[1]
    with pytest.raises(ValueError, match="Did you mean 'layer3'"):
        resolve_layer(resnet18, "layer33")


def test_a_module_that_runs_twice_is_rejected() -> None:
    shared = nn.Conv2d(3, 3, 1)
    model = nn.Sequential(shared, shared, nn.Flatten(), nn.LazyLinear(2))
    model(torch.rand(1, 3, 4, 4))
    with pytest.raises(RuntimeError, match="ran twice"), EXPLAINERS["ixg"](model, layer="0") as explainer:
        explainer(torch.rand(1, 3, 4, 4), torch.tensor([0]))


@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_call_works_inside_inference_mode(resnet18: nn.Module, images: torch.Tensor, method: str) -> None:
    with EXPLAINERS[method](resnet18, layer="mid2", **OPTIONS.get(method, {})) as explainer:
        expected = explainer(images, torch.tensor([0, 1, 2]))
        with torch.inference_mode():
            maps = explainer(images.clone(), torch.tensor([0, 1, 2]))
    torch.testing.assert_close(maps, expected)
