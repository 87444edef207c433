"""A project's first model: built from scratch or from a weights file, saved, registered and (when the project
has none) activated; and the B-cosification recovery recipe that makes a converted model accurate again.

The checkpoint's config says `"fresh": true` until the model is trained: training reads it (`freeze_norm="auto"`)
and lets a fresh model learn its normalisation statistics; fine-tuning writes its own config, without the
marker. Every public function opens and owns its transactions and returns a frozen dataclass.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core import methods
from core.bcos import model_from_weights
from core.train import CheckpointError, file_sha256, read_checkpoint, save_checkpoint
from services.catalog import project_info, require_project
from services.checkpoints import CheckpointInfo, checkpoint_info
from services.database import Database
from services.runs import Launched, launch_run
from services.settings import MAX_UPLOAD_BYTES, Settings
from store.db import session_scope
from store.errors import did_you_mean
from store.paths import stored_path
from store.runs import active_checkpoint, register_checkpoint

log = logging.getLogger(__name__)

FRESH_KEY = "fresh"
# docs/science.md §2 step 5: plain fine-tuning (no boxes) at lr 1e-4 recovers a B-cosified model's accuracy
RECOVERY_SETTINGS: Mapping[str, Any] = {"lam": 0.0, "lr": 1e-4, "schedule": "fixed"}
DEFAULT_RECOVERY_EPOCHS = 5


@dataclass(frozen=True)
class NewModel:
    """A model made by `new_model`: its registered checkpoint and what the weights file gave it.

    `source`: "scratch", "state dict" or "torchvision" (B-cosified); `loaded`: tensors taken from the file;
    `replaced`: keys of the head freshly initialised because the file had `file_classes` classes.
    """

    checkpoint: CheckpointInfo
    arch: str
    classes: tuple[str, ...]
    source: str
    loaded: int
    replaced: tuple[str, ...]
    file_classes: int | None
    activated: bool
    message: str
    path: Path

    def to_json(self) -> dict[str, Any]:
        """The `model new --json` object."""
        return {"checkpoint_id": self.checkpoint.id, "path": str(self.path), "arch": self.arch,
                "classes": list(self.classes), "source": self.source, "loaded": self.loaded,
                "replaced": list(self.replaced), "file_classes": self.file_classes, "activated": self.activated,
                "active": self.checkpoint.active, "message": self.message}


def is_fresh(config: Mapping[str, Any] | None) -> bool:
    """Whether a checkpoint's config marks a model that was never trained (made by `new_model`)."""
    return bool((config or {}).get(FRESH_KEY, False))


def architecture_choices() -> dict[str, str]:
    """Architecture name -> label, for a form's dropdown (core/methods.py is the one registry)."""
    return {name: arch.label for name, arch in methods.ARCHITECTURES.items()}


def _check_arch(arch: str) -> None:
    if arch not in methods.ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}{did_you_mean(arch, methods.ARCHITECTURES)}; choose one of "
                         f"{', '.join(methods.ARCHITECTURES)}")


def _check_weights(path: Path | None) -> None:
    if path is None:
        return
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise ValueError(f"weights file {path.name} is larger than {MAX_UPLOAD_BYTES / 2**30:.0f} GiB; that is not a "
                         "ResNet or DenseNet state dict")


def _other_classes(weights: Path | None, classes: tuple[str, ...]) -> bool:
    """Whether `weights` is a Guidance Studio checkpoint trained for other classes than `classes` (same count or
    not): its head means something else, so the new model gets a fresh one."""
    if weights is None:
        return False
    try:
        trained_for = read_checkpoint(weights).get("classes")
    except CheckpointError:  # a bare state dict (B-cos v2, torchvision): no class names to compare
        return False
    return isinstance(trained_for, list) and trained_for != list(classes)


def new_model(db: Database, settings: Settings, project: str | None, arch: str, weights_path: Path | None = None,
              *, seed: int = 0, activate: bool | None = None) -> NewModel:
    """Build `arch` for the project's classes — from scratch (seeded) or from `weights_path` (a B-cos v2 release
    or Guidance Studio state dict of `arch`, or torchvision weights for a `bcosified_*` arch; the head is
    replaced when the class counts differ) — save it, register it, and activate it when the project has no
    active model (`activate` True: always; False: never).

    ValueError saying what to do for an unknown project or architecture, a project without classes, or a
    weights file that does not fit (its keys are named).
    """
    _check_arch(arch)
    weights = Path(weights_path) if weights_path else None
    _check_weights(weights)
    with session_scope(db) as session:
        info = project_info(session, require_project(session, project))
    if not info.classes:
        raise ValueError(f"project {info.name!r} has no classes yet: import its images first "
                         "(`python app.py import folder DIR --project NAME`)")
    torch.manual_seed(seed)
    model, transfer = model_from_weights(arch, len(info.classes), weights,
                                         new_head=_other_classes(weights, info.classes))
    message = transfer.describe(arch, len(info.classes))
    config = {FRESH_KEY: True, "source": transfer.source, "weights": weights.name if weights else None,
              "seed": seed, "image_size": info.image_size}
    path = save_checkpoint(settings.checkpoint_dir, model, classes=list(info.classes), config=config)
    note = f"new {arch}: " + (f"from {weights.name}" if weights else f"from scratch, seed {seed}")
    with session_scope(db) as session:
        row = require_project(session, info.name)
        had_active = active_checkpoint(session, row.id) is not None
        make_active = activate if activate is not None else not had_active
        checkpoint = register_checkpoint(session, project_id=row.id, path=stored_path(path, settings.data_dir),
                                         sha256=file_sha256(path), arch=arch, note=note, activate=make_active)
        registered = checkpoint_info(checkpoint)
    log.info("project %s: %s; checkpoint %d%s", info.name, message, registered.id,
             " (active)" if registered.active else "")
    return NewModel(registered, arch, info.classes, transfer.source, transfer.loaded, transfer.replaced,
                    transfer.file_classes, make_active, message, path)


def recovery_settings(epochs: int = DEFAULT_RECOVERY_EPOCHS, **extra: Any) -> dict[str, Any]:
    """Training settings of the recovery recipe (docs/science.md §2): no boxes (λ = 0), lr 1e-4, exactly `epochs`;
    norm layers train because the base is fresh. `extra` adds other `TrainConfig` settings."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"recovery epochs must be a whole number of at least 1, not {epochs!r}")
    return {**RECOVERY_SETTINGS, "epochs": epochs, **extra}


def launch_recovery(db: Database, settings: Settings, project: str, checkpoint_id: int,
                    epochs: int = DEFAULT_RECOVERY_EPOCHS) -> Launched:
    """Queue and start (in its own process) the recovery run of checkpoint `checkpoint_id` — the UI's button
    after converting a torchvision model; watch it like any fine-tune (`services.runs`)."""
    return launch_run(db, settings, project, recovery_settings(epochs), base=str(int(checkpoint_id)))


__all__ = ["DEFAULT_RECOVERY_EPOCHS", "FRESH_KEY", "RECOVERY_SETTINGS", "NewModel", "architecture_choices",
           "is_fresh", "launch_recovery", "new_model", "recovery_settings"]
