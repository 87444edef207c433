"""Input×Gradient at any layer: ``A = Σ_c g ⊙ f`` (docs/science.md §3), gradients in normal mode."""

from __future__ import annotations

from torch import Tensor

from core.explain.base import Explainer

__all__ = ["InputXGradient"]


class InputXGradient(Explainer):
    """Input×Gradient (Shrikumar et al., 2016) at the chosen layer.

    ``maps[i] = Σ_c f[i, c] · ∂ score / ∂ f[i, c]``, shape ``(B, h, w)``. For a bias-free piecewise-linear
    network it equals Integrated Gradients with a zero baseline.
    """

    name = "ixg"

    def _combine(self, feature: Tensor, grad: Tensor) -> Tensor:
        return (feature * grad).sum(dim=1)  # (B, h, w)
