"""Guided fine-tuning (Rao et al., ICCV 2023): config, step, loop, evaluation, checkpoints, DDP.

Names are imported lazily so that `core.train.config` (used to build the command line) does not
pull in torch.
"""

from __future__ import annotations

from core.lazy import lazy_exports

_EXPORTS = {
    "CheckpointError": "core.train.checkpoint",
    "LoadedCheckpoint": "core.train.checkpoint",
    "file_sha256": "core.train.checkpoint",
    "load_checkpoint": "core.train.checkpoint",
    "read_checkpoint": "core.train.checkpoint",
    "save_checkpoint": "core.train.checkpoint",
    "METHOD_CHOICES": "core.train.config",
    "LAYER_NAMES": "core.train.config",
    "LOSS_NAMES": "core.train.config",
    "TARGET_NAMES": "core.train.config",
    "TrainConfig": "core.train.config",
    "TrainEvent": "core.train.events",
    "TrainingCancelled": "core.train.events",
    "fine_tune": "core.train.fine_tune",
    "evaluate": "core.train.evaluate",
    "EvalResult": "core.train.evaluate",
    "TrainData": "core.train.loop",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
