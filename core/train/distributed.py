"""Multi-process training helpers: `torchrun --nproc-per-node N app.py train ...`.

NCCL on GPUs, gloo on CPU. The model is wrapped in DistributedDataParallel; the wrapper carries
the model's explanation attributes (with the `module.` prefix) so explainers work through it and
every forward goes through DDP. Every rank evaluates its shard and the rows are gathered
(`all_gather_objects`, core/train/evaluate.py); only rank 0 writes files or database rows.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler

log = logging.getLogger(__name__)


def launched_by_torchrun() -> bool:
    """True when the environment of `torchrun` is present with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device: torch.device) -> bool:
    """Initialise the default process group from torchrun's environment; False when not launched so."""
    if not launched_by_torchrun() or dist.is_initialized():
        return dist.is_initialized()
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    log.info("distributed: rank %d of %d (%s)", dist.get_rank(), dist.get_world_size(), backend)
    return True


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def is_rank0() -> bool:
    """Whether this process writes files and database rows."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """The CUDA device of this local rank, or `device` unchanged."""
    if device.type == "cuda" and is_distributed():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision (stop early, cancelled) shared with every rank."""
    return bool(broadcast_int(1 if flag else 0, device))


def broadcast_int(value: int, device: torch.device) -> int:
    """Rank 0's integer (a run id, a decision) shared with every rank; unchanged when not distributed."""
    if not is_distributed():
        return value
    backend_device = device if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor([value], device=backend_device, dtype=torch.long)
    dist.broadcast(tensor, src=0)
    return int(tensor.item())


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable `obj`, indexed by rank, on every rank; `[obj]` when not distributed.

    Collective: every rank must call it. Keep tensors on the CPU (they are pickled).
    """
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def sampler(dataset: Dataset, *, shuffle: bool, seed: int) -> DistributedSampler | None:
    """A DistributedSampler in a process group, else None (plain shuffling)."""
    if not is_distributed():
        return None
    return DistributedSampler(dataset, shuffle=shuffle, seed=seed)


def wrap(model: nn.Module) -> nn.Module:
    """DistributedDataParallel around `model` in a process group; the model itself otherwise."""
    if not is_distributed():
        return model
    device = next(model.parameters()).device
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    for name in ("arch", "is_bcos", "logit_bias"):
        if hasattr(model, name):
            setattr(ddp, name, getattr(model, name))
    layers: dict[str, Any] = getattr(model, "explain_layers", {})
    ddp.explain_layers = {k: f"module.{v}" if v else "module" for k, v in layers.items()}
    return ddp


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def shutdown() -> None:
    """Destroy the process group if this process created one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
