"""B-cos contributions (Böhle et al., CVPR 2022; docs/science.md §1 and §3): ``A = Σ_c W(x) ⊙ f``.

The forward runs in normal mode, so the same logits serve a classification loss; only the gradient call
runs inside :func:`core.bcos.explanation_mode`, which makes it return the dynamic-linear weights ``W(x)``
(reference semantics: the flag is read in backward). At the input layer the map sums to
``logit − model.logit_bias``.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from core.bcos import constant_factors, explanation_mode
from core.explain.base import Explainer, graph_free_block, usable_in_autograd

__all__ = ["BcosExplainer"]


class BcosExplainer(Explainer):
    """B-cos explanation at the chosen layer: ``maps[i] = Σ_c W(x)[i, c] ⊙ f[i, c]``, shape ``(B, h, w)``.

    On a network without B-cos modules explanation mode changes nothing and this equals Input×Gradient.
    """

    name = "bcos"

    def _gradient(self, score: Tensor, feature: Tensor, *, create_graph: bool, retain_graph: bool | None = None
                  ) -> Tensor:
        with explanation_mode(self.model):
            (grad,) = torch.autograd.grad(score, feature, create_graph=create_graph, retain_graph=retain_graph)
        return grad

    def _graph_free_context(self) -> contextlib.AbstractContextManager[object]:
        # Without a graph to keep, the factors can be constants from the forward on (same W(x), cheaper backward).
        return constant_factors(self.model)

    def _combine(self, feature: Tensor, grad: Tensor) -> Tensor:
        return (feature * grad).sum(dim=1)  # (B, h, w)

    def weights(self, images: Tensor, targets: Tensor, *, contrast: bool = False) -> Tensor:
        """The input-level dynamic-linear weights ``W(x)`` for the colour explanation, without a graph.

        Taken at the ``"input"`` layer whatever layer this explainer maps (a temporary hook is used then).

        Args:
            images: ``(B, 3, H, W)`` in [0, 1].
            targets: ``(B,)`` long class indices.
            contrast: weights of ``logit_t − max_{c≠t} logit_c`` instead of ``logit_t``.

        Returns:
            ``(B, 6, H, W)`` for a native B-cos net (weights on ``[x, 1-x]``); in general the shape of the
            input-layer feature.
        """
        self._check(images, targets)
        if self.layer != "input":
            with BcosExplainer(self.model, "input", channels_last=self.channels_last) as at_input:
                return at_input.weights(images, targets, contrast=contrast)
        with graph_free_block(), self._graph_free_context():
            images, targets = usable_in_autograd(images), usable_in_autograd(targets)
            logits, feature = self._forward(images, graph_free=True)
            score = self._score(logits, targets, contrast)
            return self._gradient(score, feature, create_graph=False)
