"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["write_atomically", "write_json_atomically"]


def write_atomically(path: str | os.PathLike[str], write: Callable[[IO[Any]], Any], *, mode: str = "w",
                     durable: bool = True) -> Path:
    """Call `write(handle)` on a temp file next to `path`, then rename it over `path`.

    `mode` is "w" (UTF-8 text) or "wb". `durable` fsyncs before the rename, so a power loss leaves the
    old file or the complete new one; progress files that are rewritten every second skip it.
    A failure removes the temp file and leaves `path` untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_json_atomically(path: str | os.PathLike[str], data: Any, *, indent: int | None = None,
                          durable: bool = True) -> Path:
    """`data` as JSON at `path`, atomically (see `write_atomically`)."""
    return write_atomically(path, lambda handle: json.dump(data, handle, indent=indent), durable=durable)
