"""Explanation mode with the reference semantics (docs/science.md §1): flag read in backward."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn
from torch.func import functional_call

from core.bcos import (
    BcosConv2d,
    BcosLinear,
    UncentredBatchNorm2d,
    explanation_mode,
    is_explaining,
    small_resnet,
)
from tests.core.bcos.helpers import bcos_contributions


def tiny_net() -> nn.Module:
    """(B, 2, 5, 5) → (B, 3): every kind of dynamic factor, in float64."""
    torch.manual_seed(0)
    return nn.Sequential(
        BcosConv2d(2, 3, 3, padding=1),
        UncentredBatchNorm2d(3),
        BcosConv2d(3, 4, 3, stride=2, padding=1, b=2.5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        BcosLinear(4, 3),
    ).double()


def input_gradient(net: nn.Module, x: torch.Tensor, explain: bool, create_graph: bool = False) -> torch.Tensor:
    out = net(x)
    with explanation_mode(net, enabled=explain):
        (grad,) = torch.autograd.grad(out[:, 0].sum(), x, create_graph=create_graph)
    return grad


def test_gradgradcheck_tiny_bcos_net():
    net = tiny_net().train()
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: net(t), (x,))
    # fast mode (random projections) also covers the parameters at a fraction of the cost
    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())
    names = [n for n, _ in net.named_parameters()]
    with_params = lambda *ps: functional_call(net, dict(zip(names, ps)), (x,))  # noqa: E731
    assert torch.autograd.gradgradcheck(with_params, params, fast_mode=True)


def test_explanation_gradient_is_differentiable_in_the_parameters():
    """Reference semantics: grad taken in explanation mode, second backward outside it differentiates
    the dynamic factors w.r.t. the parameters; gradcheck compares that with finite differences."""
    net = tiny_net().eval()
    with torch.no_grad():
        net[1].running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in net.named_parameters()]

    def explanation(*params: torch.Tensor) -> torch.Tensor:
        out = functional_call(net, dict(zip(names, params)), (x,))
        with explanation_mode(net):
            (grad,) = torch.autograd.grad(out[:, 0].sum(), x, create_graph=True)
        return grad * x  # (B, 2, 5, 5) contribution map

    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())
    assert torch.autograd.gradcheck(explanation, params, fast_mode=True)
    # and the same check in full on the first layer's weight (where every factor downstream matters)
    first = params[0]
    assert torch.autograd.gradcheck(lambda w: explanation(w, *params[1:]), (first,))


def test_explanation_gradient_differs_from_normal_gradient():
    net = tiny_net().eval()
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    explained = input_gradient(net, x, explain=True)
    plain = input_gradient(net, x, explain=False)
    assert not torch.allclose(explained, plain, rtol=1e-3, atol=1e-6)


def test_linear_contributions_sum_to_output_in_train_and_eval():
    net = tiny_net()
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    for mode in (True, False):
        net.train(mode)
        out = net(x)
        with explanation_mode(net):
            (grad,) = torch.autograd.grad(out[:, 0].sum(), x)
        torch.testing.assert_close((grad * x).sum(dim=(1, 2, 3)), out[:, 0].detach(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("train", [False, True])
def test_small_resnet_contributions_sum_to_logit_minus_bias(train):
    model = small_resnet(num_classes=3).double().train(train)
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    logits, contributions = bcos_contributions(model, images, model.explain_layers["input"], torch.tensor([0, 2]))
    torch.testing.assert_close(contributions, logits - model.logit_bias, rtol=1e-5, atol=0)


def test_one_forward_serves_loss_and_explanation():
    model = small_resnet(num_classes=2).train()
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    logits = model(images)
    with explanation_mode(model):
        (grad,) = torch.autograd.grad(logits[:, 1].sum(), images, create_graph=True)
    loss = nn.functional.cross_entropy(logits, torch.tensor([0, 1])) + (grad * images).sum().abs()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_flag_lives_on_modules_and_is_restored():
    net = tiny_net()
    net[0].explaining = True  # a pre-existing state must come back unchanged
    with explanation_mode(net) as same:
        assert same is net
        assert all(m.explaining for m in (net[0], net[1], net[2], net[5]))
        with explanation_mode(net, enabled=False):
            assert not is_explaining(net)
        assert net[1].explaining
    assert net[0].explaining and not net[1].explaining and not net[5].explaining


def test_flag_restored_after_exception():
    net = tiny_net()
    with pytest.raises(RuntimeError, match="boom"), explanation_mode(net):
        raise RuntimeError("boom")
    assert not is_explaining(net)


def test_backward_on_another_thread_sees_the_flag():
    """CUDA runs backward on worker threads; the flag must not be thread-local."""
    net = tiny_net().eval()
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    expected = input_gradient(net, x, explain=True)
    out = net(x)
    result: list[torch.Tensor] = []
    with explanation_mode(net):
        worker = threading.Thread(target=lambda: result.extend(torch.autograd.grad(out[:, 0].sum(), x)))
        worker.start()
        worker.join()
    torch.testing.assert_close(result[0], expected)
