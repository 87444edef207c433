"""The protocol every localisation loss follows, and the post-processing steps they share.

Rao et al., *Studying How to Efficiently and Effectively Guide Models with Explanations*, ICCV 2023
(docs/science.md §3–4): each loss starts from the *raw* attribution map at the layer's resolution, applies
its own post-processing (clamp to ≥ 0, divide by the per-image max |A|) and only then upsamples
bilinearly to the mask size.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

# Below this much positive attribution an image counts as "no evidence" (docs/science.md §4–5).
ENERGY_EPS = 1e-7


class LocalisationLoss(Protocol):
    """A per-image localisation loss (Rao et al., ICCV 2023, §3.3).

    Called as ``loss(attributions, masks)`` with raw ``attributions: (B, h, w)`` at any resolution and
    ``masks: (B, H, W)`` bool (union of the target class's boxes); returns per-image values ``(B,)``.
    The training loss is ``λ · Σ_{annotated i} loss[i]`` (a sum, docs/science.md §4).
    """

    def __call__(self, attributions: Tensor, masks: Tensor) -> Tensor: ...


def check_maps_and_masks(attributions: Tensor, masks: Tensor) -> None:
    """Raise ``ValueError`` unless ``attributions: (B, h, w)`` and ``masks: (B, H, W)`` agree on B."""
    if attributions.dim() != 3 or masks.dim() != 3:
        raise ValueError(
            f"expected attributions (B, h, w) and masks (B, H, W), got {tuple(attributions.shape)} and "
            f"{tuple(masks.shape)}; did you forget to drop the channel dimension?"
        )
    if attributions.shape[0] != masks.shape[0]:
        raise ValueError(f"batch sizes differ: {attributions.shape[0]} attribution maps, {masks.shape[0]} masks")


def resize_to(maps: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Bilinearly upsample ``maps: (B, h, w)`` to ``size = (H, W)`` (align_corners=False); no-op when equal."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


def max_normalise(maps: Tensor) -> Tensor:
    """Divide each ``(h, w)`` map of ``maps: (B, h, w)`` by its max |A|; an all-zero map stays zero."""
    peak = maps.abs().amax(dim=(1, 2), keepdim=True)  # (B, 1, 1)
    return maps / torch.where(peak > 0, peak, torch.ones_like(peak))


def positive_energy(attributions: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """Positive evidence inside the mask and in total, ``(Σ_M A⁺, Σ A⁺)``, each ``(B,)``.

    The raw map is upsampled to the mask size first, then clamped (Energy loss and EPG use the raw map).
    """
    check_maps_and_masks(attributions, masks)
    positive = resize_to(attributions, masks.shape[-2:]).clamp_min(0)  # (B, H, W)
    inside = (positive * masks.to(positive.dtype)).sum(dim=(1, 2))
    return inside, positive.sum(dim=(1, 2))


def defined_images(masks: Tensor) -> Tensor:
    """Images whose mask is non-empty, ``(B,)`` bool: the only ones a localisation loss should count.

    PPCE is undefined (NaN in the reference code) on an empty mask; our losses return 0 there instead,
    so summing over all images equals summing over these.
    """
    return masks.flatten(1).any(dim=1)


def clamped_normalised_map(attributions: Tensor, masks: Tensor) -> Tensor:
    """The post-processing of L1 and PPCE (docs/science.md §3): clamp to ≥ 0, divide by the per-image max,
    upsample bilinearly to the masks' size.

    Args:
        attributions: ``(B, h, w)`` raw attributions.
        masks: ``(B, H, W)`` bool (checked against the maps).

    Returns:
        ``(B, H, W)`` in ``[0, 1]`` up to interpolation rounding.
    """
    check_maps_and_masks(attributions, masks)
    return resize_to(max_normalise(attributions.clamp_min(0)), masks.shape[-2:])
