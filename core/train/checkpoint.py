"""Checkpoints: one self-describing dict per file, written atomically, read with `weights_only=True`.

File layout (format 1)::

    {"format": 1, "arch": str, "classes": [str, ...], "config": dict, "metrics": dict,
     "parent": str | None (sha256 of the parent checkpoint file), "model": state_dict}

Files are named `<arch>-<sha256[:10]>.pt`; hyperparameters never live in file names.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common import write_atomically

CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used, with a message that says why and what to do."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A model rebuilt from a checkpoint file, with its metadata."""

    model: nn.Module
    arch: str
    classes: list[str]
    config: dict[str, Any]
    metrics: dict[str, Any]
    parent: str | None
    sha256: str
    path: Path


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    directory: Path,
    model: nn.Module,
    *,
    classes: list[str],
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    parent: str | None = None,
) -> Path:
    """Write `model` to `directory/<arch>-<sha[:10]>.pt` atomically and return the path.

    The bytes are serialised in memory, hashed, written to a temp file in the same directory,
    fsynced and renamed, so a crash never leaves a half-written checkpoint under a real name.
    """
    arch = getattr(model, "arch", None)
    if not arch:
        raise CheckpointError("model has no `arch` attribute; build it with core.bcos.build_model")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "arch": arch,
        "classes": list(classes),
        "config": dict(config or {}),
        "metrics": dict(metrics or {}),
        "parent": parent,
        # a copy in the standard layout: a model trained channels-last writes the same file as an NCHW one
        "model": {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
                  for k, v in model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{arch}-{sha[:10]}.pt"
    if final.exists():
        return final
    return write_atomically(final, lambda handle: handle.write(data), mode="wb")


def _first_line(exc: BaseException) -> str:
    """`Type: first non-blank line of the message` (some errors, e.g. EOFError, have no message at all)."""
    line = next((text.strip() for text in str(exc).splitlines() if text.strip()), "")
    return f"{type(exc).__name__}: {line[:200]}" if line else type(exc).__name__


def _non_finite(state: dict[str, Any]) -> tuple[str, int, int] | None:
    """(name, bad values, values) of the first floating-point tensor holding NaN or ±inf, else None."""
    for name, tensor in state.items():
        if isinstance(tensor, torch.Tensor) and (tensor.is_floating_point() or tensor.is_complex()):
            finite = torch.isfinite(tensor)
            if not bool(finite.all()):
                return name, int((~finite).sum()), tensor.numel()
    return None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The raw checkpoint dict (tensors on CPU), validated; never executes pickled code.

    Raises `CheckpointError` for a missing, empty, unreadable or foreign file, and for weights holding
    NaN or infinity (such a model predicts nothing useful and poisons any fine-tune started from it).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path.name} is empty (0 bytes); copy the checkpoint file again (an interrupted "
                              "copy or upload leaves an empty file)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt/unsafe files
        raise CheckpointError(f"{path.name} is not a readable checkpoint ({_first_line(exc)}); it may be truncated "
                              "or not a PyTorch file: copy it again or pick another") from exc
    if not isinstance(payload, dict) or "model" not in payload or "arch" not in payload:
        raise CheckpointError(f"{path.name} is a bare weights file, not a Guidance Studio checkpoint; "
                              "register it through 'Models' (or core.bcos loaders) with its architecture")
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path.name} has checkpoint format {payload.get('format')!r}; "
                              f"this version reads format {CHECKPOINT_FORMAT}")
    if not isinstance(payload["model"], dict):
        raise CheckpointError(f"{path.name}: 'model' is {type(payload['model']).__name__}, not a state dict; "
                              "the file was not written by Guidance Studio")
    bad = _non_finite(payload["model"])
    if bad is not None:
        name, count, total = bad
        raise CheckpointError(f"{path.name} holds non-finite weights (NaN or infinity) in {name} ({count} of "
                              f"{total} values); it cannot be used: pick an earlier checkpoint of its run, or "
                              "retrain with a lower learning rate")
    return payload


def load_checkpoint(
    path: Path,
    *,
    map_location: str | torch.device = "cpu",
    expected_arch: str | None = None,
    expected_classes: list[str] | None = None,
) -> LoadedCheckpoint:
    """Rebuild the model stored in `path` on `map_location`.

    Raises `CheckpointError` naming the mismatch when the file's architecture or class list
    differs from what the caller expects, or when the weights do not fit the architecture.
    """
    from core.bcos import build_model  # local: keeps this module importable on its own

    path = Path(path)
    payload = read_checkpoint(path)
    arch, classes = payload["arch"], list(payload.get("classes", []))
    if expected_arch is not None and arch != expected_arch:
        raise CheckpointError(f"{path.name} holds architecture {arch!r}, but {expected_arch!r} was expected")
    if expected_classes is not None and classes != list(expected_classes):
        raise CheckpointError(
            f"{path.name} was trained for {len(classes)} classes ({', '.join(classes[:5])}"
            f"{'…' if len(classes) > 5 else ''}), but the project has {len(expected_classes)} "
            f"({', '.join(expected_classes[:5])}{'…' if len(expected_classes) > 5 else ''})")
    try:
        model = build_model(arch, num_classes=len(classes))
        model.load_state_dict(payload["model"])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path.name}: weights do not fit architecture {arch!r}: {_first_line(exc)}") from exc
    model.to(map_location)
    return LoadedCheckpoint(model=model, arch=arch, classes=classes, config=dict(payload.get("config", {})),
                            metrics=dict(payload.get("metrics", {})), parent=payload.get("parent"),
                            sha256=file_sha256(path), path=path)
