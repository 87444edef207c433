"""Up-weighting the starting model's own training errors (Just Train Twice, Liu et al., ICML 2021).

Why: a shortcut model is right on the training images where the cue agrees with the class and wrong on the few
where it lies. Those few are the only training images on which the object alone decides the label; the classification
loss on all the others keeps paying for the cue. JTT's second stage draws the first model's *error set* `λ_up` times
as often, so that on the distribution the model now trains on the cue carries (almost) no information and the
object carries all of it — on every training image, boxed or not, with no group labels.

Here the first model is the model the run starts from (the user's shortcut model); the error set is read once, before
the first epoch, in evaluation mode, over the whole training split:

    single-label: argmax_c logit_c ≠ label;   multi-label: any class where (logit_c > 0) ≠ target_c

and the run's training loader draws with replacement, image i with weight `λ_up` if i is in the error set else 1,
as many draws per epoch as there are training images (`torch.utils.data.WeightedRandomSampler`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

from core.data import ImageRecord

__all__ = ["ErrorSet", "error_sampler", "training_errors"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorSet:
    """The training images the starting model gets wrong: their keys and how many images were read."""

    keys: frozenset[int]
    images: int

    @property
    def share(self) -> float:
        """The error set's share of the training images (0 when there are none)."""
        return len(self.keys) / self.images if self.images else 0.0


@torch.no_grad()
def training_errors(model: nn.Module, loader: DataLoader, *, multi_label: bool, device: torch.device) -> ErrorSet:
    """Keys of the images of `loader` (collated guidance batches, not shuffled) that `model` gets wrong.

    Runs `model` in evaluation mode (running statistics, no dropout) and restores its mode after."""
    was_training = model.training
    model.eval()
    wrong: list[torch.Tensor] = []
    seen = 0
    try:
        for batch in loader:
            logits = model(batch["image"].to(device, non_blocking=True)).float()
            if multi_label:
                miss = ((logits > 0) != (batch["target"].to(device) > 0.5)).any(1)
            else:
                label = batch["label"].to(device)
                miss = (logits.argmax(1) != label) & (label >= 0)
            wrong.append(batch["key"].to(device)[miss])
            seen += int(logits.shape[0])
    finally:
        model.train(was_training)
    keys = torch.cat(wrong).tolist() if wrong else []
    return ErrorSet(keys=frozenset(int(k) for k in keys), images=seen)


def error_sampler(records: Sequence[ImageRecord], errors: ErrorSet, factor: float,
                  seed: int) -> WeightedRandomSampler | None:
    """A sampler over `records` (in order) drawing error-set images `factor` times as often as the others, with
    replacement, `len(records)` draws an epoch; None when it would change nothing (no errors, all errors, factor 1)."""
    if factor <= 1.0 or not errors.keys or len(errors.keys) >= len(records):
        return None
    weights = torch.tensor([factor if r.key in errors.keys else 1.0 for r in records], dtype=torch.double)
    return WeightedRandomSampler(weights, num_samples=len(records), replacement=True,
                                 generator=torch.Generator().manual_seed(seed))
