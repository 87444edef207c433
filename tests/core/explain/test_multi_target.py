"""`attribute_multi`: one forward per image, one backward per (image, class), the per-pair maps exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core import bcos as core_bcos
from core.explain import EXPLAINERS, pairs_of

# classes per image: none, one, two and three (groups of 1, 2 and 3 backward passes), in mixed order
TARGETS = [[2, 0], [1], [], [0, 1, 2], [2], [1, 0]]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return core_bcos.small_resnet(num_classes=3).eval().double()


def _images() -> torch.Tensor:
    return torch.rand(len(TARGETS), 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3))


def _forward_count(model: nn.Module) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    calls: list[int] = []
    return calls, model.register_forward_pre_hook(lambda _m, inputs: calls.append(inputs[0].shape[0]))


@pytest.mark.parametrize("method", ["bcos", "ixg", "gradcam", "intgrad"])
@pytest.mark.parametrize("layer", ["input", "mid2"])
@pytest.mark.parametrize("contrast", [False, True])
def test_multi_target_maps_equal_the_per_pair_maps(method: str, layer: str, contrast: bool) -> None:
    model, images = _model(), _images()
    pairs = pairs_of(TARGETS)
    with EXPLAINERS[method](model, layer=layer) as explainer:
        multi = explainer.attribute_multi(images, TARGETS, contrast=contrast)
        single = explainer.attribute_detached(images[pairs[:, 0]], pairs[:, 1], contrast=contrast)
        plain = explainer.attribute_detached(images, torch.zeros(len(TARGETS), dtype=torch.long))
    assert torch.equal(multi.pairs, pairs)
    assert multi.maps.shape == single.maps.shape and multi.maps.dtype == torch.float64
    assert not multi.maps.requires_grad and not multi.logits.requires_grad
    torch.testing.assert_close(multi.maps, single.maps, rtol=0, atol=0)
    torch.testing.assert_close(multi.logits, plain.logits, rtol=0, atol=0)  # every image, also the one without pairs


def test_kept_gradients_at_the_input_are_the_bcos_colour_weights() -> None:
    model, images = _model(), _images()
    pairs = pairs_of(TARGETS)
    with EXPLAINERS["bcos"](model, layer="input") as explainer:
        multi = explainer.attribute_multi(images, TARGETS, keep_gradients=True)
        weights = explainer.weights(images[pairs[:, 0]], pairs[:, 1])
    assert multi.gradients is not None and multi.gradients.shape == weights.shape
    torch.testing.assert_close(multi.gradients, weights, rtol=0, atol=0)


def test_each_image_is_forwarded_once_and_each_pair_backwarded_once() -> None:
    model, images = _model(), _images()
    calls, handle = _forward_count(model)
    backwards: list[int] = []
    grad = torch.autograd.grad

    def counting_grad(*args: object, **kwargs: object) -> tuple[torch.Tensor, ...]:
        backwards.append(1)
        return grad(*args, **kwargs)  # type: ignore[arg-type]

    try:
        with EXPLAINERS["bcos"](model, layer="input") as explainer:
            torch.autograd.grad = counting_grad  # type: ignore[assignment]
            try:
                explainer.attribute_multi(images, TARGETS)
            finally:
                torch.autograd.grad = grad
    finally:
        handle.remove()
    assert sum(calls) == len(TARGETS)  # one forward per image (grouped by class count)
    # one backward per class slot of each group: groups of 1, 2 and 3 classes -> 1 + 2 + 3 batched backwards
    assert len(backwards) == 1 + 2 + 3


def test_no_hooks_left_and_inputs_untouched() -> None:
    model, images = _model(), _images()
    before = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())
    copy = images.clone()
    with EXPLAINERS["bcos"](model, layer="mid2") as explainer:
        explainer.attribute_multi(images, TARGETS)
    after = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())
    assert after == before and torch.equal(images, copy)
    assert not any(m.constant_factors for m in model.modules() if isinstance(m, core_bcos.ExplainableModule))


def test_no_pairs_at_all_gives_logits_and_an_empty_stack() -> None:
    model, images = _model(), _images()[:2]
    with EXPLAINERS["ixg"](model) as explainer:
        out = explainer.attribute_multi(images, [[], []])
    assert out.maps.shape[0] == 0 and out.pairs.shape == (0, 2) and out.logits.shape == (2, 3)


def test_outside_the_context_manager_or_with_mismatched_lists_is_refused() -> None:
    model, images = _model(), _images()
    with pytest.raises(RuntimeError, match="context manager"):
        EXPLAINERS["bcos"](model).attribute_multi(images, TARGETS)
    with EXPLAINERS["bcos"](model) as explainer, pytest.raises(ValueError, match="one class list per image"):
        explainer.attribute_multi(images, TARGETS[:2])
