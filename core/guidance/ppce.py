"""Per-pixel cross-entropy loss (Rao et al., ICCV 2023, §3.3): ``−mean_M log A_n``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from core.guidance.base import clamped_normalised_map


def ppce_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Per-image PPCE loss: binary cross-entropy towards 1 inside the box, averaged over the box.

    ``attributions (B, h, w)`` raw, post-processed by `clamped_normalised_map`; ``masks (B, H, W)`` bool, the
    union of the target class's boxes. Returns ``(B,)`` values in ``[0, 100]`` (the log is clamped at −100,
    as torch's BCE does). An empty mask gives 0 rather than the reference's NaN, so such images drop out of
    the summed loss (see ``core.guidance.defined_images``).
    """
    normalised = clamped_normalised_map(attributions, masks)  # (B, H, W)
    # Bilinear upsampling is a convex combination, so this clamp only removes rounding error; BCE
    # clamps log at -100 and keeps the gradient finite at 0 (unlike log(x).clamp(-100)).
    probabilities = normalised.clamp(0, 1)
    nll = F.binary_cross_entropy(probabilities, torch.ones_like(probabilities), reduction="none")
    weights = masks.to(nll.dtype)
    count = weights.sum(dim=(1, 2))
    return (nll * weights).sum(dim=(1, 2)) / count.clamp_min(1)
