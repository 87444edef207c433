"""Resolve a layer name ("input", "mid1".."mid3", "final" or a dotted module name) to a module.

A model may carry ``model.explain_layers: dict[str, str]`` mapping the five layer names to dotted
module names whose *output* is the feature map at that layer (docs/ARCHITECTURE.md). Plain torchvision
ResNets have no such map: for them ``"input"`` is the image tensor itself and ``"mid1".."final"`` are the
outputs of ``layer1..layer4``. Any other model can be explained at any module by its dotted name, as
listed by ``model.named_modules()``.
"""

from __future__ import annotations

import difflib

from torch import nn

from core.methods import LAYERS

__all__ = ["LAYER_NAMES", "resolve_layer"]

LAYER_NAMES: tuple[str, ...] = tuple(LAYERS)
_RESNET_STAGES: dict[str, str] = {"mid1": "layer1", "mid2": "layer2", "mid3": "layer3", "final": "layer4"}


def _is_plain_resnet(model: nn.Module) -> bool:
    return all(hasattr(model, stage) for stage in _RESNET_STAGES.values())


def resolve_layer(model: nn.Module, layer: str) -> nn.Module | None:
    """Return the module whose output is the feature map at ``layer``, or ``None`` for the image itself.

    Args:
        model: the classifier; ``model.explain_layers`` is used when present.
        layer: one of :data:`LAYER_NAMES` or any dotted module name of ``model``.

    Raises:
        ValueError: when the name matches neither, with the closest names as a suggestion.
    """
    explain_layers: dict[str, str] | None = getattr(model, "explain_layers", None)
    if explain_layers and layer in explain_layers:
        return _submodule(model, explain_layers[layer])
    if layer in LAYER_NAMES and not explain_layers:
        if layer == "input":
            return None
        if _is_plain_resnet(model):
            return _submodule(model, _RESNET_STAGES[layer])
    return _submodule(model, layer)


def _submodule(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name in modules and name != "":
        return modules[name]
    candidates = [*LAYER_NAMES, *(n for n in modules if n)]
    close = difflib.get_close_matches(name, candidates, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"unknown layer {name!r} for {type(model).__name__}: use one of {LAYER_NAMES} or a dotted module name "
        f"from model.named_modules().{hint}"
    )
