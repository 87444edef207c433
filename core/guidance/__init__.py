"""Model guidance with explanations (Rao et al., *Studying How to Efficiently and Effectively Guide
Models with Explanations*, ICCV 2023): box masks and the four localisation losses.

``LOSSES[name](attributions (B, h, w), masks (B, H, W)) -> (B,)`` with names ``"energy"``, ``"l1"``,
``"ppce"``, ``"rrr"``; each applies its own post-processing to the raw map (SCIENCE.md §3–4).
"""

from __future__ import annotations

from core import methods
from core.guidance.base import ENERGY_EPS, LocalisationLoss, defined_images, max_normalise, resize_to
from core.guidance.energy import energy_loss
from core.guidance.l1 import l1_loss
from core.guidance.masks import boxes_to_masks
from core.guidance.ppce import ppce_loss
from core.guidance.rrr import rrr_loss

LOSSES: dict[str, LocalisationLoss] = {
    "energy": energy_loss,
    "l1": l1_loss,
    "ppce": ppce_loss,
    "rrr": rrr_loss,
}
methods.check_implemented("loss", LOSSES, methods.LOSSES)

__all__ = [
    "ENERGY_EPS",
    "LOSSES",
    "LocalisationLoss",
    "boxes_to_masks",
    "defined_images",
    "energy_loss",
    "l1_loss",
    "max_normalise",
    "ppce_loss",
    "resize_to",
    "rrr_loss",
]
