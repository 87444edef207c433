"""Explanation mode with the reference semantics (docs/science.md §1, "Explanation mode").

Every dynamic factor of a B-cos network (the B-cos scale ``|l|/n`` and a norm layer's ``1/std``)
is multiplied in through :class:`_DynamicFactorGate`, an identity in the forward pass whose
*backward* reads the owning module's ``explaining`` flag:

- flag off: the gradient flows through the factor as usual (the true gradient);
- flag on: the factor is a constant, so ``autograd.grad`` returns the dynamic-linear weights
  ``W(x)`` of ``y = W(x) x``.

Because the flag is read at backward time, one normal forward serves both the classification loss
and the explanation: only the ``autograd.grad(...)`` call is wrapped in :func:`explanation_mode`.
With ``create_graph=True`` the graph of that gradient still contains the factor's forward value, so
a later backward run outside explanation mode differentiates the factor with respect to the
parameters (the exact gradient of the explanation). This differs from the ``bcos`` package, which
detaches at forward time.

The flag lives on the modules (not in a global or thread-local) because autograd runs backward on
worker threads on CUDA.

:func:`constant_factors` is the cheaper variant for paths that only *read* explanations (no graph is
kept, nothing is trained): forward passes inside it compute every dynamic factor without a graph, as
the ``bcos`` package does, so the backward pass neither multiplies gradients into the factors nor
walks their subgraphs. The input gradient is the same ``W(x)``; parameter gradients would not be the
reference ones, which is why training never uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ExplainableModule", "constant_factors", "explanation_mode", "gate_dynamic_factor", "is_explaining"]


class ExplainableModule(nn.Module):
    """Base class of every module that owns a dynamic factor.

    Attributes:
        explaining: when True, backward passes treat this module's dynamic factor as a constant.
        constant_factors: when True, forward passes compute the dynamic factor without a graph
            (see :func:`constant_factors`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.explaining = False
        self.constant_factors = False


class BcosTransform(ExplainableModule):
    """Base of the B-cos linear maps: holds the wrapped bias-free layer as ``self.linear`` (the B-cos v2
    key layout ``<name>.linear.weight``), the exponent ``b`` and whether weights are unit-normalised."""

    def __init__(self, linear: nn.Module, *, b: float, normalize_weights: bool) -> None:
        super().__init__()
        self.linear = linear
        self.b = float(b)
        self.normalize_weights = normalize_weights

    def extra_repr(self) -> str:
        return f"B={self.b:g}, normalize_weights={self.normalize_weights}"


class _DynamicFactorGate(torch.autograd.Function):
    """Identity on the factor; its backward drops the gradient while the owner is explaining."""

    @staticmethod
    def forward(ctx: Any, factor: Tensor, owner: ExplainableModule) -> Tensor:  # type: ignore[override]
        ctx.owner = owner
        # A view (not the input itself) so autograd attaches this node's backward to the output.
        return factor.view_as(factor)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, None]:  # type: ignore[override]
        if ctx.owner.explaining:
            return None, None
        # Returning grad_output itself keeps the backward differentiable (create_graph=True).
        return grad_output, None


def gate_dynamic_factor(factor: Tensor, owner: ExplainableModule) -> Tensor:
    """Route a dynamic factor through the explanation gate of ``owner``.

    Args:
        factor: any shape; the data-dependent scale (e.g. ``|l|/n`` or ``1/std``).
        owner: the module whose ``explaining`` flag the backward pass reads.

    Returns:
        The same values as ``factor`` (same shape); only its backward behaviour differs.
    """
    if not factor.requires_grad:
        return factor
    return _DynamicFactorGate.apply(factor, owner)


def is_explaining(model: nn.Module) -> bool:
    """True when any explainable module of ``model`` is in explanation mode."""
    return any(m.explaining for m in model.modules() if isinstance(m, ExplainableModule))


@contextmanager
def explanation_mode(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Treat every dynamic factor of ``model`` as a constant in backward passes run inside.

    Typical use (one forward for loss and explanation)::

        logits = model(images)                       # normal forward, (B, C)
        with explanation_mode(model):
            (g,) = torch.autograd.grad(logits[range(B), t].sum(), features, create_graph=True)
        contributions = (g * features).sum(1)        # (B, H, W), sums to logit - logit_bias

    Args:
        model: any module; its :class:`ExplainableModule` submodules are switched.
        enabled: False makes the context a no-op switch to normal mode (useful to toggle by config).

    Yields:
        ``model`` itself. The previous flag of every module is restored on exit, also on exceptions.
    """
    with _switched(model, "explaining", enabled):
        yield model


@contextmanager
def constant_factors(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Compute every dynamic factor of ``model`` without a graph in forward passes run inside.

    For explanation-only paths (no ``create_graph``, no training): the gradient of an output w.r.t. the
    input is then the dynamic-linear weight ``W(x)`` in any mode, and the backward pass skips the
    factors' subgraphs (one full-size multiply per layer fewer, nothing saved for them). Parameter
    gradients taken inside are *not* the reference ones (the factors' dependence on the weights is cut).

    Args:
        model: any module; its :class:`ExplainableModule` submodules are switched.
        enabled: False leaves the factors differentiable (a no-op switch).

    Yields:
        ``model`` itself. The previous flags are restored on exit, also on exceptions.
    """
    with _switched(model, "constant_factors", enabled):
        yield model


@contextmanager
def _switched(model: nn.Module, flag: str, enabled: bool) -> Iterator[None]:
    modules = [m for m in model.modules() if isinstance(m, ExplainableModule)]
    previous = [getattr(m, flag) for m in modules]
    try:
        for m in modules:
            setattr(m, flag, enabled)
        yield
    finally:
        for m, value in zip(modules, previous):
            setattr(m, flag, value)
