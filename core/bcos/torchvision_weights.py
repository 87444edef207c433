"""Torchvision models from a weights file the user gives; never downloads anything."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn

__all__ = ["TORCHVISION_ARCHS", "head_classes", "load_torchvision_weights", "torchvision_arch", "torchvision_builder",
           "torchvision_model_from_state", "torchvision_state_dict"]

logger = logging.getLogger(__name__)

TORCHVISION_ARCHS = ("resnet18", "resnet50", "densenet121")  # the torchvision models that can be B-cosified


def _check_arch(arch: str) -> None:
    if arch not in TORCHVISION_ARCHS:
        raise ValueError(f"unknown torchvision architecture {arch!r}; choose one of {sorted(TORCHVISION_ARCHS)}")


def torchvision_builder(arch: str) -> Callable[..., nn.Module]:
    """torchvision's builder of ``arch`` (one of :data:`TORCHVISION_ARCHS`), e.g. ``models.resnet18``."""
    _check_arch(arch)
    # Imported on first use: torchvision.models pulls in torch._dynamo (≈ 2.7 s), which the server's start
    # and every B-cos-only path would otherwise pay (bench/first_start.py).
    from torchvision import models

    return cast(Callable[..., nn.Module], getattr(models, arch))
_HEAD_WEIGHT = {"resnet18": "fc.weight", "resnet50": "fc.weight", "densenet121": "classifier.weight"}

# Old torchvision DenseNet files name layers "norm.1" etc.; torchvision renames them on load too.
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def torchvision_arch(keys: set[str]) -> str | None:
    """The torchvision architecture a state dict's keys look like (``densenet121``, ``resnet50``, ``resnet18``;
    ``resnet18`` stands for resnet18/34, which have the same first blocks), or None."""
    if any(k.startswith("features.denseblock") for k in keys):
        return "densenet121"
    if "layer1.0.conv3.weight" in keys:
        return "resnet50"
    if "layer1.0.conv2.weight" in keys:
        return "resnet18"
    return None


def _guess_arch(keys: set[str]) -> str:
    return torchvision_arch(keys) or "an unknown architecture"


def torchvision_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a torchvision state dict from ``path`` (``weights_only=True``), normalising key names.

    Accepts a plain state dict, or a dict holding one under ``"state_dict"`` or ``"model"``;
    strips a ``module.`` prefix (DataParallel) and renames old DenseNet keys.
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        raise ValueError(f"cannot read weights file {path}: {err}") from err
    except Exception as err:  # torch raises KeyError, RuntimeError, UnpicklingError… for a bad file
        first = (str(err).splitlines() or [""])[0]
        cause = err.__class__.__name__ + (f": {first}" if first and len(first) <= 60 else "")  # not torch's essays
        raise ValueError(f"{Path(path).name} is not a readable PyTorch weights file ({cause}): it may be truncated, "
                         "or not a .pth/.pt file; copy it again or pick another") from err
    for wrapper in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(wrapper), Mapping):
            loaded = loaded[wrapper]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping from names to tensors)")
    state: dict[str, Tensor] = {}
    for key, value in loaded.items():
        key = key.removeprefix("module.")
        match = _OLD_DENSENET_KEY.match(key)
        state[match.group(1) + match.group(2) if match else key] = value
    return state


def load_torchvision_weights(arch: str, path: str | Path, *, num_classes: int | None = None) -> nn.Module:
    """Build torchvision ``arch`` and load the weights file at ``path`` into it.

    Args:
        arch: ``"resnet18"``, ``"resnet50"`` or ``"densenet121"``.
        path: a local file saved with ``torch.save(model.state_dict(), path)`` (e.g. torchvision's
            released ``resnet50-*.pth``). Read with ``weights_only=True``.
        num_classes: if given and different from the file's head, the head is replaced by a freshly
            initialised ``nn.Linear`` with this many outputs (the backbone keeps the file's weights).

    Returns:
        The torchvision model (standard input normalisation, not B-cos); pass it to
        :func:`core.bcos.bcosify`. Logits (B, C) for ImageNet-normalised images (B, 3, H, W).

    Raises:
        ValueError: unknown ``arch``, unreadable file, or keys/shapes that do not fit ``arch``.
    """
    _check_arch(arch)  # before the file is read
    return torchvision_model_from_state(arch, torchvision_state_dict(path), path, num_classes=num_classes)


def head_classes(arch: str, state: Mapping[str, Tensor]) -> int | None:
    """The class count of the head of torchvision ``arch`` in ``state`` (None when it has no such head)."""
    head = state.get(_HEAD_WEIGHT[arch])
    return None if head is None else int(head.shape[0])


def torchvision_model_from_state(arch: str, state: Mapping[str, Tensor], path: str | Path, *,
                                 num_classes: int | None = None) -> nn.Module:
    """:func:`load_torchvision_weights` on a state dict already read from ``path`` (named in messages)."""
    head = state.get(_HEAD_WEIGHT[arch])
    if head is None:
        raise ValueError(
            f"{path} has no {_HEAD_WEIGHT[arch]!r}, so it is not a torchvision {arch} file; "
            f"its keys look like {_guess_arch(set(state))}"
        )
    model = torchvision_builder(arch)(weights=None, num_classes=head.shape[0])
    missing, unexpected = _compare_keys(model.state_dict(), state)
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit torchvision {arch} (its keys look like {_guess_arch(set(state))}): "
            f"missing {missing[:5]}{'…' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}"
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(f"{path} does not fit torchvision {arch}: {err}") from err
    if num_classes is not None and num_classes != head.shape[0]:
        logger.info("replacing the %d-class head of %s with a new %d-class head", head.shape[0], arch, num_classes)
        _replace_head(model, num_classes)
    return model


def _compare_keys(expected: Mapping[str, Tensor], given: Mapping[str, Tensor]) -> tuple[list[str], list[str]]:
    # Files from before PyTorch 0.4 lack `num_batches_tracked`; BatchNorm fills it in on load.
    missing = [k for k in set(expected) - set(given) if not k.endswith("num_batches_tracked")]
    return sorted(missing), sorted(set(given) - set(expected))


def _replace_head(model: nn.Module, num_classes: int) -> None:
    name = "fc" if isinstance(getattr(model, "fc", None), nn.Linear) else "classifier"  # ResNet / DenseNet
    old: nn.Linear = getattr(model, name)
    setattr(model, name, nn.Linear(old.in_features, num_classes).to(old.weight))
