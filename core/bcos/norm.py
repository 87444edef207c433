"""Uncentred, bias-free batch norm ``y = γ · x / sqrt(var + eps)`` (docs/science.md §1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from core.bcos.explanation import ExplainableModule, gate_dynamic_factor

__all__ = ["UncentredBatchNorm2d"]


class UncentredBatchNorm2d(ExplainableModule):
    """Batch norm without mean subtraction and without β.

    Training mode divides by the batch's (biased, per-channel) standard deviation and tracks it in
    ``running_var``; eval mode divides by ``running_var``. The factor ``1/std`` goes through the
    explanation gate, so in explanation mode the layer is linear in its input.

    State dict keys match B-cos v2's ``BatchNormUncentered2d`` with its bias removed:
    ``weight, running_mean, running_var, num_batches_tracked`` (``running_mean`` is kept only for
    key compatibility; it is never used or updated).

    Args:
        num_features: channels C.
        eps: added to the variance.
        momentum: running-average factor; None means a cumulative average.

    Shapes:
        input (B, C, H, W) → output (B, C, H, W).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features, **factory))
        self.register_buffer("running_mean", torch.zeros(num_features, **factory))
        self.register_buffer("running_var", torch.ones(num_features, **factory))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))

    def _update_running_var(self, batch_var: Tensor) -> None:
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_var.lerp_(batch_var.detach().to(self.running_var.dtype), factor)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) → (B, C, H, W)."""
        if self.training:
            # Biased variance over (B, H, W), as B-cos v2 does; the mean is still subtracted here
            # (it is the spread that is normalised), only the output is uncentred.
            var = x.var(dim=(0, 2, 3), unbiased=False)
            with torch.no_grad():
                self._update_running_var(var)
        else:
            var = self.running_var
        if self.constant_factors:  # explanation-only forward: 1/std without a graph
            with torch.no_grad():
                constant = self.weight * (var + self.eps).rsqrt()
            return constant[None, :, None, None] * x
        inv_std = (var + self.eps).rsqrt()
        # γ stays outside the gate (it is a parameter, not data-dependent); one full-size multiply.
        scale = self.weight * gate_dynamic_factor(inv_std, self)
        return scale[None, :, None, None] * x

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
