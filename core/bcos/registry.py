"""Architectures by name, so checkpoints can rebuild their model (docs/ARCHITECTURE.md)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from core import methods
from core.bcos import resnet
from core.bcos.bcosify import bcosify
from core.bcos.torchvision_weights import TORCHVISION_ARCHS, torchvision_builder

__all__ = ["ARCHITECTURES", "build_model"]


def _bcosified(tv_arch: str, num_classes: int) -> nn.Module:
    """An untrained B-cosified torchvision ``tv_arch`` (same structure and keys as a converted one)."""
    return bcosify(torchvision_builder(tv_arch)(weights=None, num_classes=num_classes), arch=f"bcosified_{tv_arch}")


# name -> builder(num_classes) -> model following docs/ARCHITECTURE.md
ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {
    "bcos_resnet18": resnet.resnet18,
    "bcos_resnet34": resnet.resnet34,
    "bcos_resnet50": resnet.resnet50,
    "bcos_small": resnet.small_resnet,
    **{f"bcosified_{name}": partial(_bcosified, name) for name in TORCHVISION_ARCHS},
}
methods.check_implemented("architecture", ARCHITECTURES, methods.ARCHITECTURES)


def build_model(arch: str, num_classes: int) -> nn.Module:
    """Build an untrained model of architecture ``arch`` with ``num_classes`` outputs.

    Args:
        arch: a key of :data:`ARCHITECTURES`.
        num_classes: C.

    Returns:
        A model mapping images (B, 3, H, W) in [0, 1] to logits (B, C), with ``model.arch == arch``.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    model = ARCHITECTURES[arch](num_classes)
    model.arch = arch
    return model
