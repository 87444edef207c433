"""Guided fine-tuning (Rao et al., ICCV 2023): config, step, loop, evaluation, checkpoints, DDP."""

from core.train.checkpoint import (
    CheckpointError,
    LoadedCheckpoint,
    file_sha256,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from core.train.config import ATTRIBUTION_NAMES, LAYER_NAMES, LOSS_NAMES, TARGET_NAMES, TrainConfig
from core.train.events import TrainEvent, TrainingCancelled

__all__ = [
    "ATTRIBUTION_NAMES",
    "LAYER_NAMES",
    "LOSS_NAMES",
    "TARGET_NAMES",
    "CheckpointError",
    "LoadedCheckpoint",
    "TrainConfig",
    "TrainEvent",
    "TrainingCancelled",
    "file_sha256",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]
