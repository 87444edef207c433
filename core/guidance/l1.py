"""L1 loss (Rao et al., ICCV 2023, §3.3): ``mean |A_n − M|`` on the clamped, max-normalised map."""

from __future__ import annotations

from torch import Tensor

from core.guidance.base import clamped_normalised_map


def l1_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Per-image L1 loss.

    ``attributions (B, h, w)`` raw, post-processed by `clamped_normalised_map`; ``masks (B, H, W)`` bool, the
    union of the target class's boxes. Returns ``(B,)``: the mean absolute difference over all ``H · W``
    pixels, in ``[0, 1]``.
    """
    normalised = clamped_normalised_map(attributions, masks)  # (B, H, W)
    return (normalised - masks.to(normalised.dtype)).abs().mean(dim=(1, 2))
