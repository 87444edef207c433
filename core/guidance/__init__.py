"""Model guidance with explanations (Rao et al., *Studying How to Efficiently and Effectively Guide
Models with Explanations*, ICCV 2023): box masks and the four localisation losses.

``LOSSES[name](attributions (B, h, w), masks (B, H, W)) -> (B,)`` with names ``"energy"``, ``"l1"``,
``"ppce"``, ``"rrr"``; each applies its own post-processing to the raw map (docs/science.md §3–4).
"""

from __future__ import annotations

import importlib

from core import methods
from core.guidance.base import ENERGY_EPS, LocalisationLoss, defined_images, max_normalise, resize_to
from core.guidance.energy import energy_loss
from core.guidance.l1 import l1_loss
from core.guidance.masks import boxes_to_masks
from core.guidance.ppce import ppce_loss
from core.guidance.rrr import rrr_loss


def _load(name: str) -> LocalisationLoss:
    """The loss `<name>_loss` of module `core/guidance/<name>.py`: a new loss is that file plus one line in
    core/methods.py (docs/ARCHITECTURE.md)."""
    try:
        return getattr(importlib.import_module(f"{__name__}.{name}"), f"{name}_loss")
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ImportError(f"loss {name!r} is declared in core/methods.py but core/guidance/{name}.py does not "
                          f"define {name}_loss") from exc


LOSSES: dict[str, LocalisationLoss] = {name: _load(name) for name in methods.LOSSES}

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
