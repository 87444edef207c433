"""GradCAM (Selvaraju et al., ICCV 2017): ``α = mean_{h,w} g``, ``A = ReLU(Σ_c α ⊙ f)``."""

from __future__ import annotations

from torch import Tensor, nn

from core.explain.base import Explainer

__all__ = ["GradCAM"]


class GradCAM(Explainer):
    """GradCAM at the chosen layer; meant for ``"final"`` (the default here), maps ``(B, h, w)`` ≥ 0."""

    name = "gradcam"

    def __init__(self, model: nn.Module, layer: str = "final", *, channels_last: bool | None = None) -> None:
        super().__init__(model, layer, channels_last=channels_last)

    def _combine(self, feature: Tensor, grad: Tensor) -> Tensor:
        alpha = grad.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1)
        return (alpha * feature).sum(dim=1).relu()  # (B, h, w)
