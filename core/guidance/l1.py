"""L1 loss (Rao et al., ICCV 2023, §3.3): ``mean |A_n − M|`` on the clamped, max-normalised map."""

from __future__ import annotations

from torch import Tensor

from core.guidance.base import check_maps_and_masks, max_normalise, resize_to


def l1_loss(attributions: Tensor, masks: Tensor) -> Tensor:
    """Per-image L1 loss.

    Args:
        attributions: ``(B, h, w)`` raw attributions; clamped to ≥ 0, divided by the per-image max,
            then upsampled bilinearly to ``(H, W)``.
        masks: ``(B, H, W)`` bool, union of the target class's boxes.

    Returns:
        ``(B,)`` mean absolute difference over all ``H · W`` pixels, in ``[0, 1]``.
    """
    check_maps_and_masks(attributions, masks)
    normalised = resize_to(max_normalise(attributions.clamp_min(0)), masks.shape[-2:])  # (B, H, W)
    return (normalised - masks.to(normalised.dtype)).abs().mean(dim=(1, 2))
