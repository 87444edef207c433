"""Loading a project's models: checkpoint paths, devices, and a small cache of loaded models."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

import torch

from core.train import LoadedCheckpoint, load_checkpoint
from core.train.loop import resolve_device
from services.settings import Settings

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]


def checkpoint_file(settings: Settings, stored_path: str) -> Path:
    """The file behind a checkpoint row's `path`: absolute, relative to the data dir, or to the repo."""
    path = Path(stored_path)
    if path.is_absolute():
        return path
    for base in (settings.data_dir, REPO_ROOT):
        if (base / path).exists():
            return base / path
    return settings.data_dir / path


def model_device(settings: Settings) -> torch.device:
    """The device models run on for this app (settings.device, `auto` picks CUDA when present)."""
    return resolve_device(settings.device)


class ModelCache:
    """Loaded checkpoints by (file, sha256, device), least recently used evicted first; thread-safe."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str, str], LoadedCheckpoint] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, device: torch.device, *, expected_classes: list[str] | None = None) -> LoadedCheckpoint:
        """The model in `path` on `device`, in eval mode, loaded once."""
        key = (str(path.resolve()), str(path.stat().st_mtime_ns), str(device))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        loaded = load_checkpoint(path, map_location=device, expected_classes=expected_classes)
        loaded.model.eval()
        with self._lock:
            self._items[key] = loaded
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        log.info("loaded %s (%s) on %s", path.name, loaded.arch, device)
        return loaded
