"""How many CPUs this process may really use, and thread settings that do not spin on shared cores.

`os.cpu_count()` counts the machine's CPUs, not this process's share: a container limited by a CPU
quota, or a process pinned with `taskset`, sees every CPU of the host there. Thread pools sized from it
oversubscribe the cores, and OpenMP's default active wait then burns the share spinning (an uncached
explanation took 2 s instead of 50 ms with two spinning threads on two shared cores; bench/RESULTS.md, UI).

Standard library only: importable before torch, so `app.py` can set the OpenMP environment before torch
creates its thread pool.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

__all__ = ["CGROUP_ROOT", "THREAD_ENV", "cgroup_cpu_limit", "compute_threads", "thread_env", "usable_cpus"]

CGROUP_ROOT = Path("/sys/fs/cgroup")

# Set before torch starts: sleep instead of spinning when a parallel region ends (oversubscribed cores
# otherwise lose their time slice to spinning threads).
THREAD_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_cgroup_dirs(root: Path) -> list[Path]:
    """This process's cgroup directories (v2 unified path first, then v1 cpu controller), plus the roots."""
    dirs: list[Path] = []
    for line in (_read(Path("/proc/self/cgroup")) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        rel = rel.lstrip("/")
        if controllers == "":
            dirs.append(root / rel)
        elif "cpu" in controllers.split(","):
            dirs += [root / "cpu" / rel, root / "cpu,cpuacct" / rel]
    return [*dirs, root, root / "cpu", root / "cpu,cpuacct"]


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by a cgroup CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us / cpu.cfs_period_us`).

    Returns:
        The quota in CPUs (e.g. 1.5), or None when there is no quota or it cannot be read.
    """
    for directory in _own_cgroup_dirs(root):
        text = _read(directory / "cpu.max")  # v2: "<quota> <period>" or "max <period>"
        if text:
            quota, _, period = text.partition(" ")
            if quota == "max":
                return None
            try:
                return int(quota) / int(period or "100000")
            except ValueError:
                return None
        quota_text, period_text = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
        if quota_text and period_text:  # v1; a quota of -1 means none
            try:
                quota_us, period_us = int(quota_text), int(period_text)
            except ValueError:
                return None
            return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    return None


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may actually use: its affinity mask, capped by a cgroup quota (rounded up), ≥ 1.

    The environment variable `GUIDANCE_CPUS` overrides it (a positive integer).
    """
    override = os.environ.get("GUIDANCE_CPUS", "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        count = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        count = min(count, max(1, math.ceil(limit - 1e-9)))
    return max(1, count)


def compute_threads(env: Mapping[str, str] | None = None) -> int:
    """Intra-op threads for one compute process: `OMP_NUM_THREADS` when set (torchrun sets 1 per process),
    else the usable CPUs shared among the processes of this node (`LOCAL_WORLD_SIZE` under torchrun)."""
    source = os.environ if env is None else env
    given = source.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    local = source.get("LOCAL_WORLD_SIZE", "1").strip()
    processes = int(local) if local.isdigit() and int(local) > 0 else 1
    return max(1, usable_cpus() // processes)


def thread_env(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Put the thread settings in `env` (default `os.environ`) where not already set; returns it.

    `OMP_WAIT_POLICY=PASSIVE` and `OMP_NUM_THREADS` = :func:`compute_threads`. Call before torch is imported
    (its OpenMP pool reads them once); a child process started with this environment (the trainer) gets them too.
    """
    target = os.environ if env is None else env
    for key, value in THREAD_ENV.items():
        target.setdefault(key, value)
    target.setdefault("OMP_NUM_THREADS", str(compute_threads(target)))
    return target
