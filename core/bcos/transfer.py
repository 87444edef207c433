"""A first model for a project: from scratch, or from a weights file with the head replaced (transfer learning).

Two kinds of weights file are read (always with ``weights_only=True``, never downloaded):

- a state dict of the architecture itself — a B-cos v2 release file for ``bcos_resnet18/34/50`` (keys like
  ``conv1.linear.weight``), or the weights of a Guidance Studio checkpoint of the same architecture;
- for ``bcosified_*``: a torchvision ResNet-18/50 or DenseNet-121 file, B-cosified after loading (docs/science.md §2).

When the file's class count differs from the project's, the head is replaced by a freshly initialised one and
the backbone keeps the file's weights: transfer from ImageNet is the normal case.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from core import methods
from core.bcos.bcosify import bcosify
from core.bcos.registry import build_model
from core.bcos.torchvision_weights import (
    head_classes,
    torchvision_arch,
    torchvision_model_from_state,
    torchvision_state_dict,
)

__all__ = ["Transfer", "describe_keys", "model_from_weights"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transfer:
    """What a weights file gave a new model.

    `source`: "scratch", "state dict" (the architecture's own keys) or "torchvision" (B-cosified);
    `loaded`: tensors taken from the file; `replaced`: state-dict keys freshly initialised because the file's
    head has `file_classes` outputs and the project another number (empty when the head was kept).
    """

    source: str
    loaded: int = 0
    replaced: tuple[str, ...] = ()
    file_classes: int | None = None

    def describe(self, arch: str, num_classes: int) -> str:
        """One sentence for the user."""
        if self.source == "scratch":
            return f"{arch} initialised from scratch (seeded) for {num_classes} classes"
        what = "torchvision weights, B-cosified" if self.source == "torchvision" else "weights"
        why = " (the file's classes are other classes)" if self.file_classes == num_classes else ""
        head = (f"; the {self.file_classes}-class head was replaced by a new {num_classes}-class head{why} "
                f"({', '.join(self.replaced)})" if self.replaced else f"; the {num_classes}-class head was kept")
        return f"{arch}: {self.loaded} tensors loaded from the {what}{head}"


def _head_prefix(arch: str) -> str:
    """The module whose outputs are the classes: `fc` of a native B-cos ResNet, `head` of a B-cosified net."""
    return "head." if methods.ARCHITECTURES[arch].torchvision else "fc."


_KEYS_ALSO_FIT = {"resnet18": "resnet18/34"}  # torchvision_arch's name -> what such keys may come from


def describe_keys(keys: set[str]) -> str:
    """What a state dict's keys look like, for messages ("a torchvision resnet50", "a B-cos ResNet", ...)."""
    if any(k.startswith("features.") and ".linear." in k for k in keys):
        return "a B-cosified torchvision network (use the matching bcosified_* architecture)"
    if "conv1.linear.weight" in keys:
        deep = "layer1.0.conv3.linear.weight" in keys
        return f"a B-cos ResNet{'-50' if deep else ''} (use {'bcos_resnet50' if deep else 'a bcos_* architecture'})"
    arch = torchvision_arch(keys)
    if arch is not None:
        return f"a torchvision {_KEYS_ALSO_FIT.get(arch, arch)} (use bcosified_{arch})"
    return "no architecture this app knows"


def _fresh_torchvision_head(model: nn.Module, num_classes: int) -> None:
    name = "classifier" if hasattr(model, "classifier") else "fc"
    old: nn.Linear = getattr(model, name)
    setattr(model, name, nn.Linear(old.in_features, num_classes).to(old.weight))


def _is_torchvision(keys: set[str]) -> bool:
    return not any(".linear." in k for k in keys) and ("fc.weight" in keys or "classifier.weight" in keys)


def _load_own_keys(model: nn.Module, state: Mapping[str, Tensor], arch: str, path: Path, new_head: bool) -> Transfer:
    """Load `state` into `model` (of `arch`), leaving the fresh head when the class counts differ or `new_head`."""
    own = model.state_dict()
    head = _head_prefix(arch)
    head_keys = sorted(k for k in own if k.startswith(head))
    file_head = state.get(f"{head}linear.weight")
    file_classes = None if file_head is None else int(file_head.shape[0])
    replace = file_classes is not None and (new_head or any(k in state and state[k].shape != own[k].shape
                                                            for k in head_keys))
    wanted = {k: v for k, v in state.items() if not (replace and k.startswith(head))}
    missing = sorted(k for k in own if k not in wanted and not k.endswith("num_batches_tracked")
                     and not (replace and k.startswith(head)))
    unexpected = sorted(set(wanted) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path.name} does not fit {arch}: its keys look like {describe_keys(set(state))}; "
                         f"missing {missing[:4]}{'…' if len(missing) > 4 else ''}, "
                         f"unexpected {unexpected[:4]}{'…' if len(unexpected) > 4 else ''}")
    wrong = [f"{k} {tuple(v.shape)} (needs {tuple(own[k].shape)})" for k, v in wanted.items()
             if v.shape != own[k].shape]
    if wrong:
        raise ValueError(f"{path.name} does not fit {arch}: shapes differ at {', '.join(wrong[:3])}")
    model.load_state_dict(wanted, strict=False)
    return Transfer("state dict", loaded=len(wanted), replaced=tuple(head_keys) if replace else (),
                    file_classes=file_classes)


def model_from_weights(arch: str, num_classes: int, path: str | Path | None = None, *,
                       new_head: bool = False) -> tuple[nn.Module, Transfer]:
    """A model of `arch` with `num_classes` outputs: untrained (`path` None; seed torch first for a reproducible
    one), or with the weights in `path` and, where the class count differs (or `new_head`: the file's classes
    are other classes), a fresh head.

    images (B, 3, H, W) in [0, 1] → logits (B, num_classes). ValueError naming the file and what its keys look
    like when the file does not fit `arch`.
    """
    if arch not in methods.ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(methods.ARCHITECTURES)}")
    if path is None:
        return build_model(arch, num_classes), Transfer("scratch")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    state = torchvision_state_dict(path)  # also unwraps {"state_dict": ...} / {"model": ...} and "module."
    bad = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise ValueError(f"{path.name} holds non-finite weights (NaN or infinity) in {bad}; it cannot start a model")
    keys = set(state)
    tv_arch = methods.ARCHITECTURES[arch].torchvision
    if _is_torchvision(keys):
        if tv_arch is None:
            raise ValueError(f"{path.name} holds torchvision weights ({describe_keys(keys)}); a native {arch} cannot "
                             "load them: pick the bcosified_* architecture to B-cosify them")
        file_classes = head_classes(tv_arch, state)
        torchvision_model = torchvision_model_from_state(tv_arch, state, path, num_classes=num_classes)
        if new_head and file_classes == num_classes:
            _fresh_torchvision_head(torchvision_model, num_classes)
        converted = bcosify(torchvision_model, arch=arch)
        replaced = () if file_classes == num_classes and not new_head else tuple(
            sorted(k for k in converted.state_dict() if k.startswith(_head_prefix(arch))))
        file_head = ("fc.", "classifier.")  # torchvision's head: not loaded when replaced
        loaded = sum(1 for k in state if not (replaced and k.startswith(file_head)))
        transfer = Transfer("torchvision", loaded=loaded, replaced=replaced, file_classes=file_classes)
        log.info("%s", transfer.describe(arch, num_classes))
        return converted, transfer
    model = build_model(arch, num_classes)
    transfer = _load_own_keys(model, state, arch, path, new_head)
    log.info("%s", transfer.describe(arch, num_classes))
    return model, transfer
