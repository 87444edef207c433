"""RRR* loss (Ross et al., 2017, as adapted by Rao et al., ICCV 2023, §3.3): ``Σ_{not M} A_n²``."""

from __future__ import annotations

from torch import Tensor

from core.guidance.base import check_maps_and_masks, max_normalise, resize_to


def rrr_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Per-image "right for the right reasons" loss: squared attribution outside the box, summed.

    Args:
        attributions: ``(B, h, w)`` raw attributions; divided by the per-image max |A| (not clamped),
            then upsampled bilinearly to ``(H, W)``.
        masks: ``(B, H, W)`` bool, union of the target class's boxes.

    Returns:
        ``(B,)`` sums in ``[0, H · W]``; a sum, not a mean, so it needs a much smaller λ.
    """
    check_maps_and_masks(attributions, masks)
    normalised = resize_to(max_normalise(attributions), masks.shape[-2:])  # (B, H, W)
    return (normalised.square() * (~masks.bool()).to(normalised.dtype)).sum(dim=(1, 2))
