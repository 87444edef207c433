"""Guided fine-tuning: `fine_tune` composes `build_loader`, `train_one_epoch`, `evaluate`, checkpoints.

Every epoch ends with an evaluation on the validation split; each evaluated model is written as a
checkpoint file and only the Pareto front over (accuracy or F1, EPG, IoU) is kept on disk
(docs/science.md §5). Cancellation is polled every step and leaves finished checkpoints in place.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from core.data import GuidanceDataset, ImageRecord, collate_guidance
from core.explain import Explainer
from core.guidance import LOSSES
from core.train import distributed as dist_utils
from core.train.config import TrainConfig
from core.train.counterfactual import CounterfactualBank, append_rows
from core.train.evaluate import EvalResult, evaluate
from core.train.events import TrainEvent, TrainingCancelled
from core.train.step import GuidanceBatch, guided_step

log = logging.getLogger(__name__)

EventSink = Callable[[TrainEvent], None]


@dataclass(frozen=True)
class TrainData:
    """What to train on: records of the training and validation splits and the label space."""

    train: Sequence[ImageRecord]
    val: Sequence[ImageRecord]
    classes: Sequence[str]
    image_size: int
    multi_label: bool
    group_names: Sequence[str] = ()


@dataclass
class FineTuneResult:
    """Outcome of `fine_tune`: kept checkpoints (Pareto front), the chosen one, the history."""

    checkpoints: list[dict[str, Any]]
    best: dict[str, Any] | None
    base_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    pseudo_boxes: dict[str, Any] | None = None  # the last pseudo-box pass (core/train/pseudo_boxes.py), or None
    upweighted: dict[str, Any] | None = None  # the error set drawn more often (core/train/upweight.py), or None
    stop_reason: str = ""  # why the run ended (the adaptive schedule's decision, the epoch count, min_metric)
    selection_rule: str = ""  # how `best` was chosen, in words (core.train.selection.SELECTION_RULE)
    kept_epoch: int = 0  # the epoch `best` comes from; 0: the starting model won the selection (best is None)
    at_chance: dict[str, float] | None = None  # `best` is within noise of chance (core.train.validation.chance_level)
    epochs: int = 0  # epochs trained

    @property
    def improved(self) -> bool:
        """True when a trained epoch beat the starting model under the selection rule."""
        return self.best is not None


def resolve_device(name: str) -> torch.device:
    """`auto` → the first CUDA device when there is one, else CPU; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available; use --device cpu")
    return device


def channels_last(model: nn.Module) -> nn.Module:
    """`model` with its 4-D parameters in the channels-last memory layout, in place, when it has convolutions.

    Values, names and the state dict are unchanged (a checkpoint loads into either layout); convolutions and the
    B-cos norms run faster on it (bench/layout.py: the one click's guided step, CPU). Conv-free models are left alone.
    """
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model.to(memory_format=torch.channels_last)
    return model


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a generator for the trainer's own sampling."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def select_annotated(records: Sequence[ImageRecord], fraction: float, seed: int) -> list[int]:
    """Keys of the images whose boxes guide this run: a fixed, seeded `fraction` of those with boxes."""
    with_boxes = sorted(r.key for r in records if r.boxes)
    count = len(with_boxes) if fraction >= 1.0 else max(1, round(fraction * len(with_boxes))) if with_boxes else 0
    return sorted(random.Random(seed).sample(with_boxes, count))


def build_loader(records: Sequence[ImageRecord], data: TrainData, batch_size: int, *, shuffle: bool,
                 seed: int, cache: bool = True) -> DataLoader:
    """A DataLoader of collated guidance batches (distributed sampler when a process group is up)."""
    dataset = GuidanceDataset(list(records), num_classes=len(data.classes), image_size=data.image_size,
                              multi_label=data.multi_label, cache=cache)
    sampler = dist_utils.sampler(dataset, shuffle=shuffle, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      collate_fn=collate_guidance, num_workers=0, generator=generator)


def resampled(loader: DataLoader, sampler: torch.utils.data.Sampler) -> DataLoader:
    """`loader`'s dataset (and its decoded-image cache) drawn by `sampler` instead, same batch size."""
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, collate_fn=collate_guidance,
                      num_workers=0)


def to_device(batch: dict[str, Tensor], device: torch.device, annotated: Tensor | None = None) -> GuidanceBatch:
    """Move a collated batch to `device`; add `annotated (B,)` bool from the run's key set."""
    out = {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}
    if "image" in out:  # the data layer's per-sample name; the engine speaks of a batch of images
        out["images"] = out.pop("image")
    if annotated is not None:
        out["annotated"] = torch.isin(out["key"], annotated)
    return GuidanceBatch(**out)


def train_one_epoch(model: nn.Module, explainer: Explainer, loader: DataLoader, optimizer: torch.optim.Optimizer,
                    cfg: TrainConfig, *, multi_label: bool, annotated: Tensor, generator: torch.Generator,
                    on_step: Callable[[int, dict[str, Tensor]], None], should_stop: Callable[[], bool],
                    counterfactuals: CounterfactualBank | None = None) -> int:
    """One pass over `loader`; returns the number of optimiser steps taken. With `counterfactuals`, each batch
    gains `cfg.counterfactuals ×` its size of box-swap composites (core/train/counterfactual.py)."""
    device = annotated.device
    loss_fn = LOSSES[cfg.loss]
    autocast = torch.bfloat16 if cfg.bf16 and device.type == "cuda" else None
    set_train_mode(model, freeze_norm=cfg.freezes_norm())
    steps = 0
    for batch in loader:
        if should_stop():
            raise TrainingCancelled("cancelled by the user")
        batch = to_device(batch, device, annotated)
        if counterfactuals:
            count = max(1, round(cfg.counterfactuals * batch["images"].shape[0]))
            batch = GuidanceBatch(**append_rows(dict(batch), counterfactuals.draw(count, generator)))
        loss, parts = guided_step(model, explainer, batch, loss_fn=loss_fn, lam=cfg.lam, multi_label=multi_label,
                                  contrast=cfg.guides_contrast(multi_label), dilation=cfg.box_dilation,
                                  generator=generator, autocast_dtype=autocast)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
        on_step(steps, {"loss": parts.total, "classification": parts.classification,
                        "localisation": parts.localisation, "annotated": parts.n_annotated})
        if cfg.max_steps_per_epoch and steps >= cfg.max_steps_per_epoch:
            break
    return steps


def norm_layers(model: nn.Module) -> list[nn.Module]:
    """Every batch-norm-like layer (torch's and the uncentred B-cos one): modules with `running_var`."""
    return [m for m in model.modules() if isinstance(getattr(m, "running_var", None), Tensor)]


def set_train_mode(model: nn.Module, *, freeze_norm: bool) -> None:
    """Training mode, with normalisation layers kept on running statistics when `freeze_norm`."""
    model.train()
    if freeze_norm:
        for layer in norm_layers(model):
            layer.eval()


@torch.no_grad()
def recalibrate_norm(model: nn.Module, loader: DataLoader, device: torch.device, max_batches: int = 50) -> None:
    """Re-estimate running statistics as a cumulative average over up to `max_batches` training batches.

    After training with batch statistics the running averages lag the weights; evaluation then sees a
    different network. One forward pass over training data fixes that (no parameter changes).
    """
    layers = norm_layers(model)
    if not layers:
        return
    saved = [(layer, layer.momentum) for layer in layers]
    was_training = model.training
    model.train()
    for layer in layers:
        if hasattr(layer, "reset_running_stats"):
            layer.reset_running_stats()
        else:
            layer.running_var.fill_(1.0)
            layer.num_batches_tracked.zero_()
        layer.momentum = None  # cumulative average
    try:
        for i, batch in enumerate(loader):
            if i >= max_batches:
                break
            model(batch["image"].to(device))
    finally:
        for layer, momentum in saved:
            layer.momentum = momentum
        model.train(was_training)


def run_evaluation(model: nn.Module, loader: DataLoader, data: TrainData, cfg: TrainConfig,
                   device: torch.device) -> EvalResult:
    """`evaluate` on a loader with the run's attribution method and layer."""
    batches = (to_device(b, device) for b in loader)
    return evaluate(dist_utils.unwrap(model), batches, multi_label=data.multi_label, attribution=cfg.attribution,
                    layer=cfg.layer, group_names=data.group_names)
