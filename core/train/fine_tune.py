"""`fine_tune`: the guided fine-tuning run, from a model and records to kept checkpoints."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from core.explain import EXPLAINERS
from core.train import distributed as dist_utils
from core.train.checkpoint import save_checkpoint
from core.train.config import TrainConfig
from core.train.events import TrainEvent, TrainingCancelled
from core.train.loop import (
    EventSink,
    FineTuneResult,
    TrainData,
    build_loader,
    recalibrate_norm,
    resolve_device,
    run_evaluation,
    seed_everything,
    select_annotated,
    train_one_epoch,
)
from core.train.selection import ParetoArchive, selection_point

log = logging.getLogger(__name__)


class _Progress:
    """Turns step counts into progress/ETA events."""

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int, emit: EventSink) -> None:
        per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch or steps_per_epoch)
        self.total = max(1, per_epoch * cfg.epochs)
        self.cfg, self.emit, self.done, self.epoch = cfg, emit, 0, 0
        self.started = time.monotonic()

    def step(self, _: int, losses: dict[str, Tensor]) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        values = {k: float(v) for k, v in losses.items()}  # one host sync per step
        self.emit(TrainEvent("step", epoch=self.epoch, epochs=self.cfg.epochs, step=self.done,
                             steps_total=self.total, progress=self.done / self.total, eta_s=eta, losses=values))


def fine_tune(
    model: nn.Module,
    data: TrainData,
    cfg: TrainConfig,
    *,
    out_dir: Path,
    parent_sha: str | None = None,
    on_event: EventSink | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FineTuneResult:
    """Guided fine-tuning of `model` on `data` with `cfg` (Rao et al., ICCV 2023).

    Evaluates the starting model and every epoch on `data.val`, writes each epoch's model to
    `out_dir` and keeps the Pareto front. Raises `TrainingCancelled` when `should_stop()` turns
    true (checkpoints already written stay valid). Under torchrun only rank 0 evaluates and writes.
    """
    emit = on_event or (lambda event: None)
    stop = should_stop or (lambda: False)
    started = time.monotonic()
    cfg = cfg.resolved(is_bcos=bool(getattr(model, "is_bcos", False)))
    device = dist_utils.local_device(resolve_device(cfg.device))
    generator = seed_everything(cfg.seed + dist_utils.rank())
    model.to(device)
    rank0 = dist_utils.is_rank0()
    train_loader = build_loader(data.train, data, cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_loader = build_loader(data.val, data, max(cfg.batch_size, 32), shuffle=False, seed=cfg.seed)
    annotated = torch.tensor(select_annotated(data.train, cfg.annotated_fraction, cfg.seed), device=device,
                             dtype=torch.long)
    base = run_evaluation(model, val_loader, data, cfg, device).metrics if rank0 else {}
    emit(TrainEvent("start", epochs=cfg.epochs, metrics=base,
                    message=f"{len(data.train)} training images, {annotated.numel()} with boxes, device {device}"))
    archive, history = ParetoArchive(), []
    progress = _Progress(cfg, len(train_loader), emit)
    train_model = dist_utils.wrap(model)
    optimizer = torch.optim.Adam(train_model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    stopped_early = False
    for epoch in range(1, cfg.epochs + 1):
        progress.epoch = epoch
        if getattr(train_loader.sampler, "set_epoch", None):
            train_loader.sampler.set_epoch(epoch)
        with EXPLAINERS[cfg.attribution](train_model, layer=cfg.layer) as explainer:
            train_one_epoch(train_model, explainer, train_loader, optimizer, cfg, multi_label=data.multi_label,
                            annotated=annotated, generator=generator, on_step=progress.step,
                            should_stop=lambda: dist_utils.broadcast_flag(stop(), device))
        if not cfg.freezes_norm():
            recalibrate_norm(dist_utils.unwrap(train_model), train_loader, device)
        if rank0:
            metrics = run_evaluation(model, val_loader, data, cfg, device).metrics
            path = save_checkpoint(out_dir, model, classes=list(data.classes), config=cfg.to_dict(),
                                   metrics={**metrics, "epoch": epoch, "split": cfg.eval_split}, parent=parent_sha)
            kept = path not in archive.add(path, epoch, metrics)  # a dominated epoch's file is deleted at once
            history.append({"epoch": epoch, **metrics})
            emit(TrainEvent("eval", epoch=epoch, epochs=cfg.epochs, progress=epoch / cfg.epochs,
                            metrics=metrics, checkpoint=str(path) if kept else None))
            stopped_early = bool(cfg.min_metric) and selection_point(metrics)[0] < cfg.min_metric
        if dist_utils.broadcast_flag(stopped_early, device):
            log.warning("stopping early: accuracy/F1 fell below %.3f", cfg.min_metric)
            stopped_early = True
            break
        dist_utils.barrier()
    best = archive.best(selection_point(base)[0] if base else None, cfg.select_tolerance) if rank0 else None
    result = FineTuneResult(checkpoints=archive.front, best=best, base_metrics=base, history=history,
                            seconds=time.monotonic() - started, stopped_early=stopped_early)
    emit(TrainEvent("done", epoch=len(history), epochs=cfg.epochs, progress=1.0,
                    metrics=best["metrics"] if best else {}, checkpoint=best["path"] if best else None))
    return result


__all__ = ["TrainingCancelled", "fine_tune"]
