"""Per-pixel cross-entropy loss (Rao et al., ICCV 2023, §3.3): ``−mean_M log A_n``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from core.guidance.base import check_maps_and_masks, max_normalise, resize_to


def ppce_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Per-image PPCE loss: binary cross-entropy towards 1 inside the box, averaged over the box.

    Args:
        attributions: ``(B, h, w)`` raw attributions; clamped to ≥ 0, divided by the per-image max,
            then upsampled bilinearly to ``(H, W)``.
        masks: ``(B, H, W)`` bool, union of the target class's boxes.

    Returns:
        ``(B,)`` values in ``[0, 100]`` (the log is clamped at −100, as torch's BCE does). An empty mask
        gives 0 rather than the reference's NaN, so such images drop out of the summed loss
        (see ``core.guidance.defined_images``).
    """
    check_maps_and_masks(attributions, masks)
    normalised = resize_to(max_normalise(attributions.clamp_min(0)), masks.shape[-2:])  # (B, H, W)
    # Bilinear upsampling is a convex combination, so this clamp only removes rounding error; BCE
    # clamps log at -100 and keeps the gradient finite at 0 (unlike log(x).clamp(-100)).
    probabilities = normalised.clamp(0, 1)
    nll = F.binary_cross_entropy(probabilities, torch.ones_like(probabilities), reduction="none")
    weights = masks.to(nll.dtype)
    count = weights.sum(dim=(1, 2))
    return (nll * weights).sum(dim=(1, 2)) / count.clamp_min(1)
