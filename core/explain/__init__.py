"""Batched explainers, layer capture and visualisation of attribution maps (docs/science.md §3).

Usage::

    with EXPLAINERS["bcos"](model, layer="mid2") as explainer:
        out = explainer.attribute(images, targets, create_graph=True)  # logits (B, C), maps (B, h, w)
        maps = explainer(images, targets)                                # (B, H, W), no graph
        multi = explainer.attribute_multi(images, [[0, 2], [1]])         # one forward per image, maps (P, h, w)
"""

from __future__ import annotations

import importlib
import pkgutil

from core import methods
from core.explain.base import Attribution, Explainer, MultiAttribution, pairs_of, target_scores, upsample
from core.explain.bcos_explainer import BcosExplainer
from core.explain.gradcam import GradCAM
from core.explain.intgrad import IntegratedGradients
from core.explain.ixg import InputXGradient
from core.explain.layers import LAYER_NAMES, resolve_layer
from core.explain.visualise import bcos_colour, colourise, overlay_heatmap

__all__ = [
    "EXPLAINERS",
    "LAYER_NAMES",
    "Attribution",
    "BcosExplainer",
    "Explainer",
    "GradCAM",
    "InputXGradient",
    "IntegratedGradients",
    "MultiAttribution",
    "bcos_colour",
    "colourise",
    "overlay_heatmap",
    "pairs_of",
    "resolve_layer",
    "target_scores",
    "upsample",
]



def _discover() -> dict[str, type[Explainer]]:
    """Every `Explainer` subclass that declares a `name`, from the modules of this package: a new method is
    one new file here plus one line in core/methods.py (docs/ARCHITECTURE.md)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    found: dict[str, type[Explainer]] = {}
    pending: list[type[Explainer]] = [Explainer]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if "name" in subclass.__dict__:
                found[subclass.name] = subclass
    return found


# name -> explainer class; build with ``EXPLAINERS[name](model, layer=..., **options)``.
EXPLAINERS: dict[str, type[Explainer]] = _discover()
methods.check_implemented("explainer", EXPLAINERS, methods.METHODS)
