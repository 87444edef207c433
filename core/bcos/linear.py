"""B-cos linear layer (docs/science.md §1), for heads on flat features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.bcos.conv import NORM_EPS, bcos_scale, constant_bcos_scale
from core.bcos.explanation import BcosTransform, gate_dynamic_factor

__all__ = ["BcosLinear"]


class BcosLinear(BcosTransform):
    """B-cos linear map ``out = |cos(x, ŵ)|^(B-1) · (ŵ · x)``; no bias.

    Weights live in ``self.linear`` (``<name>.linear.weight``), as in B-cos v2.

    Args:
        in_features, out_features: as ``nn.Linear``.
        b: the exponent B (B = 1 is linear).
        normalize_weights: unit-normalise each output row (native B-cos) or keep raw weights.

    Shapes:
        input (..., in_features) → output (..., out_features).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        b: float = 2.0,
        normalize_weights: bool = True,
        **factory: torch.device | torch.dtype | None,  # device=, dtype= as for nn.Linear
    ) -> None:
        super().__init__(nn.Linear(in_features, out_features, bias=False, **factory), b=b,
                         normalize_weights=normalize_weights)

    def forward(self, x: Tensor) -> Tensor:
        """(..., in_features) → (..., out_features)."""
        w = self.linear.weight
        if self.normalize_weights:
            w = w / torch.linalg.vector_norm(w, dim=1, keepdim=True)
        out = F.linear(x, w)
        if self.b == 1:
            return out
        norms = (x.pow(2).sum(-1, keepdim=True) + NORM_EPS).sqrt()  # (..., 1)
        if self.constant_factors:
            return out * constant_bcos_scale(out, norms, self.b)
        return gate_dynamic_factor(bcos_scale(out, norms, self.b), self) * out
