"""How image paths are stored: relative to the data dir when inside it, absolute otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def stored_path(file: str | os.PathLike[str], data_dir: str | os.PathLike[str]) -> str:
    """The path to store for `file`: POSIX-style relative to `data_dir` when inside it, else absolute."""
    absolute = Path(os.path.abspath(file))
    root = Path(os.path.abspath(data_dir))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        return str(absolute)


def resolve_image_path(path: str, data_dir: str | os.PathLike[str]) -> Path:
    """The file a stored image path points at."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else Path(data_dir) / candidate
