"""What several benches share: the machine they ran on, and runs each in a fresh temporary folder.

Benches import it as ``bench._common`` after putting the repository root on ``sys.path``.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.cpus import usable_cpus

__all__ = ["cpu_name", "fresh_runs", "machine"]


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else the machine type (``x86_64``)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return name or platform.machine()


def machine() -> dict[str, Any]:
    """What the numbers were measured on: the CPU, its logical and usable CPUs, the Python version."""
    return {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "usable_cpus": usable_cpus(),
            "python": platform.python_version()}


def fresh_runs(count: int, prefix: str, one_run: Callable[[Path], dict[str, Any]],
               log: logging.Logger) -> list[dict[str, Any]]:
    """`one_run` in each of `count` fresh temporary folders (named `prefix…`, removed after); each result logged."""
    runs = []
    for index in range(count):
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            runs.append(one_run(Path(tmp)))
            log.info("run %d: %s", index + 1, runs[-1])
    return runs
