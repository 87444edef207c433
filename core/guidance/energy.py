"""Energy loss (Rao et al., ICCV 2023, Eq. 3): ``1 − Σ_M A⁺ / Σ A⁺`` on the raw map."""

from __future__ import annotations

import torch
from torch import Tensor

from core.guidance.base import ENERGY_EPS, positive_energy


def energy_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Per-image Energy loss.

    Args:
        attributions: ``(B, h, w)`` raw attributions (upsampled bilinearly to the mask size, then clamped).
        masks: ``(B, H, W)`` bool, union of the target class's boxes.

    Returns:
        ``(B,)`` values in ``[0, 1]`` where ``Σ A⁺ ≥ 1e-7``; below that, the reference's ``1 − Σ_M A⁺``.
    """
    inside, total = positive_energy(attributions, masks)
    defined = total >= ENERGY_EPS
    # Divide by a safe denominator so the unused branch of torch.where cannot put NaN into gradients.
    fraction = inside / torch.where(defined, total, torch.ones_like(total))
    return torch.where(defined, 1 - fraction, 1 - inside)
