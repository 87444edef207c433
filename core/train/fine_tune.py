"""`fine_tune`: the guided fine-tuning run, from a model and records to kept checkpoints."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from core.data import collate_guidance
from core.explain import EXPLAINERS
from core.train import distributed as dist_utils
from core.train.checkpoint import save_checkpoint
from core.train.config import TrainConfig
from core.train.counterfactual import CounterfactualBank
from core.train.events import TrainEvent, TrainingCancelled
from core.train.loop import (
    EventSink,
    FineTuneResult,
    TrainData,
    build_loader,
    channels_last,
    recalibrate_norm,
    resampled,
    resolve_device,
    run_evaluation,
    seed_everything,
    select_annotated,
    train_one_epoch,
)
from core.train.pseudo_boxes import coverage, propose_pseudo_boxes, unboxed_loader
from core.train.schedule import AdaptiveSchedule
from core.train.selection import SELECTION_RULE, ParetoArchive, best_by_decisions, selection_point
from core.train.upweight import error_sampler, training_errors
from core.train.validation import chance_level

log = logging.getLogger(__name__)


class _Progress:
    """Turns step counts into progress/ETA events."""

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int, emit: EventSink, epochs: int) -> None:
        per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch or steps_per_epoch)
        self.total = max(1, per_epoch * epochs)
        self.epochs = epochs
        self.cfg, self.emit, self.done, self.epoch = cfg, emit, 0, 0
        self.started = time.monotonic()

    def step(self, _: int, losses: dict[str, Tensor]) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        total = self._expected_total(elapsed)
        eta = elapsed / self.done * (total - self.done)
        if self._budgeted():  # the budget bounds the run, not the epoch cap
            eta = min(eta, max(0.0, self.cfg.budget_s - elapsed))
        values = {k: float(v) for k, v in losses.items()}  # one host sync per step
        self.emit(TrainEvent("step", epoch=self.epoch, epochs=self.epochs, step=self.done,
                             steps_total=total, progress=self._fraction(elapsed), eta_s=eta, losses=values))

    def _budgeted(self) -> bool:
        return self.cfg.schedule == "adaptive" and bool(self.cfg.budget_s)

    def _expected_total(self, elapsed: float) -> int:
        """The steps that will run: the epoch cap's, or fewer when the budget at this pace holds fewer."""
        if not self._budgeted() or elapsed <= 0:
            return self.total
        return max(self.done, min(self.total, int(self.done / elapsed * self.cfg.budget_s)))

    def _fraction(self, elapsed: float) -> float:
        done = self.done / self.total
        if self._budgeted():
            done = max(done, min(1.0, elapsed / self.cfg.budget_s))
        return done


def fine_tune(
    model: nn.Module,
    data: TrainData,
    cfg: TrainConfig,
    *,
    out_dir: Path,
    parent_sha: str | None = None,
    on_event: EventSink | None = None,
    should_stop: Callable[[], bool] | None = None,
    lr_plan: Sequence[float] | None = None,
    fresh: bool = False,
) -> FineTuneResult:
    """Guided fine-tuning of `model` on `data` with `cfg` (Rao et al., ICCV 2023).

    Evaluates the starting model and every epoch on `data.val`, writes each epoch's model to
    `out_dir` and keeps the Pareto front. With `cfg.schedule == "adaptive"` the learning rate and the stop are
    decided after each evaluation (core/train/schedule.py) within `cfg.budget_s`, `cfg.epochs` being the cap;
    `lr_plan` replays per-epoch learning rates exactly (the λ = 0 control of an adaptive run); `fresh`: the model is
    new or just converted (the schedule does not take "not learning yet" for convergence). The best checkpoint is
    chosen on decisions first (core/train/selection.py `SELECTION_RULE`), the starting model competing as epoch 0:
    when it wins, `result.best` is None (nothing better was found; the caller keeps the model it has). Raises
    `TrainingCancelled` when `should_stop()` turns true (checkpoints already written stay valid). Under torchrun
    every rank evaluates its shard of `data.val` (the figures cover the whole split); only rank 0 writes; it decides
    the schedule for every rank.
    """
    emit = on_event or (lambda event: None)
    stop = should_stop or (lambda: False)
    started = time.monotonic()
    cfg = cfg.resolved(is_bcos=bool(getattr(model, "is_bcos", False)))
    device = dist_utils.local_device(resolve_device(cfg.device))
    generator = seed_everything(cfg.seed + dist_utils.rank())
    channels_last(model.to(device))  # faster convolutions; values and state dict unchanged
    rank0 = dist_utils.is_rank0()
    train_loader = build_loader(data.train, data, cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_loader = build_loader(data.val, data, max(cfg.batch_size, 32), shuffle=False, seed=cfg.seed)
    annotated = torch.tensor(select_annotated(data.train, cfg.annotated_fraction, cfg.seed), device=device,
                             dtype=torch.long)
    bank = CounterfactualBank(data.train, annotated.tolist(), num_classes=len(data.classes),
                              image_size=data.image_size, multi_label=data.multi_label, device=device,
                              seed=cfg.seed) if cfg.counterfactuals > 0 and cfg.lam > 0 and annotated.numel() else None
    base = run_evaluation(model, val_loader, data, cfg, device).metrics  # every rank: its shard, gathered
    train_loader, upweighted = _upweight_errors(model, train_loader, data, cfg, device, fresh=fresh)
    emit(TrainEvent("start", epochs=cfg.epochs, metrics=base,
                    message=f"{len(data.train)} training images, {annotated.numel()} with boxes"
                    + (f", box-swap counterfactuals from {bank.size} of them" if bank else "")
                    + (f", {upweighted['images']} the starting model gets wrong drawn {upweighted['factor']:g}× as "
                       "often" if upweighted else "") + f", device {device}"))
    archive, history = ParetoArchive(), []
    plan = list(lr_plan) if lr_plan else None
    epochs = len(plan) if plan else cfg.epochs
    adaptive = AdaptiveSchedule(lr=cfg.lr, max_epochs=epochs, budget_s=cfg.budget_s, fresh=fresh) \
        if cfg.schedule == "adaptive" and plan is None else None
    if adaptive is not None and rank0:
        adaptive.start(base)
    progress = _Progress(cfg, len(train_loader), emit, epochs)
    train_model = dist_utils.wrap(model)
    lr = plan[0] if plan else cfg.lr
    optimizer = torch.optim.Adam(train_model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    best_state = _snapshot(model) if adaptive is not None else None  # the rollback target (epoch 0: the base)
    stopped_early, stop_reason = False, ""
    pseudo: dict[str, Any] | None = None
    for epoch in range(1, epochs + 1):
        epoch_started = time.monotonic()
        progress.epoch = epoch
        for group in optimizer.param_groups:
            group["lr"] = lr
        if getattr(train_loader.sampler, "set_epoch", None):
            train_loader.sampler.set_epoch(epoch)
        with EXPLAINERS[cfg.attribution](train_model, layer=cfg.layer) as explainer:
            train_one_epoch(train_model, explainer, train_loader, optimizer, cfg, multi_label=data.multi_label,
                            annotated=annotated, generator=generator, on_step=progress.step,
                            should_stop=lambda: dist_utils.broadcast_flag(stop(), device), counterfactuals=bank)
        if not cfg.freezes_norm():
            recalibrate_norm(dist_utils.unwrap(train_model), train_loader, device)
        decision: dict[str, Any] = {"stop": False, "lr": plan[min(epoch, epochs - 1)] if plan else lr}
        metrics = run_evaluation(model, val_loader, data, cfg, device).metrics  # the whole split on every rank
        if rank0:
            path = save_checkpoint(out_dir, model, classes=list(data.classes), config=cfg.to_dict(),
                                   metrics={**metrics, "epoch": epoch, "split": cfg.eval_split, "lr": lr,
                                            "selection_rule": SELECTION_RULE}, parent=parent_sha)
            kept = path not in archive.add(path, epoch, metrics)  # a dominated epoch's file is deleted at once
            history.append({"epoch": epoch, "lr": lr, **metrics})
            emit(TrainEvent("eval", epoch=epoch, epochs=epochs, progress=epoch / epochs,
                            metrics=metrics, checkpoint=str(path) if kept else None))
            if cfg.min_metric and selection_point(metrics)[0] < cfg.min_metric:
                decision.update(stop=True, reason=f"accuracy/F1 fell below {cfg.min_metric:.3f}")
            elif adaptive is not None:
                previous_best = adaptive.best_epoch
                step = adaptive.after_epoch(metrics, elapsed_s=time.monotonic() - started,
                                            epoch_s=time.monotonic() - epoch_started)
                decision.update(stop=step.stop, lr=step.lr, rollback=step.rollback, reason=step.reason,
                                new_best=adaptive.best_epoch != previous_best)
        if dist_utils.is_distributed():
            decision = dist_utils.all_gather_objects(decision)[0]  # rank 0 decides for every rank
        if best_state is not None and decision.get("new_best"):
            best_state = _snapshot(model)
        if best_state is not None and decision.get("rollback"):
            dist_utils.unwrap(train_model).load_state_dict(best_state)
            log.info("epoch %d: %s", epoch, decision["reason"])
        if decision["stop"]:
            stop_reason = decision.get("reason", "")
            stopped_early = epoch < epochs
            log.info("stopping after epoch %d: %s", epoch, stop_reason)
            break
        if bank is not None and cfg.pseudo_boxes and not data.multi_label and not dist_utils.is_distributed() \
                and float(metrics.get("epg") or 0.0) >= cfg.pseudo_boxes:
            bank, pseudo = _pseudo_bank(model, train_loader, data, cfg, device, annotated, epoch) or (bank, pseudo)
        lr = decision["lr"]
        dist_utils.barrier()
    stop_reason = stop_reason or f"ran the {epochs} epochs"
    # the starting model competes (epoch 0): a run that finds nothing better keeps it, never a worse epoch
    start = [{"path": None, "epoch": 0, "metrics": base}] if cfg.keep_start else []
    chosen = best_by_decisions([*start, *archive.front], cfg.select_tolerance) if rank0 else None
    best = chosen if chosen and chosen["epoch"] > 0 else None
    at_chance = None if best is None or data.multi_label else chance_level(
        [r.labels[0] for r in data.val if r.labels], float(best["metrics"].get("accuracy") or 0.0))
    result = FineTuneResult(checkpoints=archive.front, best=best, base_metrics=base, history=history,
                            seconds=time.monotonic() - started, stopped_early=stopped_early, stop_reason=stop_reason,
                            selection_rule=SELECTION_RULE, kept_epoch=chosen["epoch"] if chosen else 0,
                            epochs=len(history), at_chance=at_chance, upweighted=upweighted,
                            pseudo_boxes=pseudo)
    kept = f"kept epoch {result.kept_epoch}" if best else "no epoch beat the starting model: it is kept"
    emit(TrainEvent("done", epoch=len(history), epochs=epochs, progress=1.0,
                    metrics=best["metrics"] if best else {}, checkpoint=best["path"] if best else None,
                    message=f"stopped: {stop_reason}; {kept}; selection: {SELECTION_RULE}"))
    return result


def _upweight_errors(model: nn.Module, loader: DataLoader, data: TrainData, cfg: TrainConfig, device: torch.device,
                     *, fresh: bool) -> tuple[DataLoader, dict[str, Any] | None]:
    """The training loader, drawing the starting model's training errors `cfg.upweight_errors` times as often
    (core/train/upweight.py), and what was up-weighted; the loader unchanged when that is off, the model is new
    (its errors are noise) or the run is distributed (the sampler is per process)."""
    if cfg.upweight_errors <= 1.0 or fresh:
        return loader, None
    if dist_utils.is_distributed():
        log.warning("up-weighting the starting model's errors is not done in distributed runs; training unweighted")
        return loader, None
    ordered = DataLoader(loader.dataset, batch_size=max(loader.batch_size or 1, 64), shuffle=False,
                         collate_fn=collate_guidance, num_workers=0)
    errors = training_errors(dist_utils.unwrap(model), ordered, multi_label=data.multi_label, device=device)
    sampler = error_sampler(data.train, errors, cfg.upweight_errors, cfg.seed)
    log.info("starting model: %d of %d training images wrong (%.1f%%)%s", len(errors.keys), errors.images,
             100 * errors.share, f"; drawn {cfg.upweight_errors:g}× as often" if sampler else "; nothing up-weighted")
    if sampler is None:
        return loader, None
    return resampled(loader, sampler), {"images": len(errors.keys), "of": errors.images,
                                        "factor": cfg.upweight_errors}


def _pseudo_bank(model: nn.Module, loader: DataLoader, data: TrainData, cfg: TrainConfig, device: torch.device,
                 annotated: Tensor, epoch: int) -> tuple[CounterfactualBank, dict[str, Any]] | None:
    """A counterfactual bank from the run's boxed images plus confident pseudo-boxes on the others
    (core/train/pseudo_boxes.py), and what the pass made; None when it proposed nothing."""
    started = time.monotonic()
    unboxed = unboxed_loader(loader, data.train)
    if unboxed is None:
        return None
    records, shares = propose_pseudo_boxes(dist_utils.unwrap(model), unboxed, data.train,
                                           attribution=cfg.attribution, contrast=cfg.guides_contrast(False),
                                           device=device)
    if not shares:
        return None
    keys = sorted({*annotated.tolist(), *shares})
    bank = CounterfactualBank(records, keys, num_classes=len(data.classes), image_size=data.image_size,
                              multi_label=data.multi_label, device=device, seed=cfg.seed + epoch)
    info = {**coverage(records, shares), "epoch": epoch, "seconds": round(time.monotonic() - started, 1)}
    log.info("epoch %d: %d pseudo-boxes on %d unboxed training images (mean evidence share %.2f) in %.1f s", epoch,
             info["proposed"], info["of"], info["mean_share"], info["seconds"])
    return bank, info


def _snapshot(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of the model's state (the adaptive schedule's rollback target)."""
    return {k: v.detach().clone() for k, v in dist_utils.unwrap(model).state_dict().items()}


__all__ = ["TrainingCancelled", "fine_tune"]
