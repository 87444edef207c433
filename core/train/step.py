"""One guided optimisation step (Rao et al., ICCV 2023, docs/science.md §3–4).

    L = L_class + λ · Σ_{annotated i} L_loc(i)

One forward pass gives the logits for the classification loss and, through the explainer's
captured feature, the explanation of the guided class (with `create_graph=True`) for the
localisation loss. Batches without an annotated image take a plain classification step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import Tensor

from core.explain import Explainer
from core.guidance import LocalisationLoss, boxes_to_masks


class GuidanceBatch(TypedDict, total=False):
    """A collated batch on the model's device (`core.data.collate_guidance`, then `core.train.loop.to_device`)."""

    images: Tensor  # (B, 3, S, S) float in [0, 1]
    target: Tensor  # (B, C) float multi-hot
    label: Tensor  # (B,) long, the first label (-1: none)
    group: Tensor  # (B,) long (-1: none)
    key: Tensor  # (B,) long, the image's id
    boxes: Tensor  # (B, K, 4) float, pixels of the S×S input; padding rows are zeros
    box_labels: Tensor  # (B, K) long (padding -1)
    box_valid: Tensor  # (B, K) bool
    annotated: Tensor  # (B,) bool: the image belongs to the run's annotated subset


@dataclass(frozen=True)
class StepLosses:
    """Scalar losses of one step (detached, on the model's device; read them lazily)."""

    total: Tensor
    classification: Tensor
    localisation: Tensor  # Σ over annotated images, before λ
    n_annotated: Tensor


def classification_loss(logits: Tensor, batch: GuidanceBatch, multi_label: bool) -> Tensor:
    """BCE on multi-hot targets (multi-label) or softmax cross-entropy on `label` (single-label).

    logits: (B, C); batch["target"]: (B, C) float; batch["label"]: (B,) long.
    """
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, batch["target"])
    return F.cross_entropy(logits, batch["label"])


def guided_targets(batch: GuidanceBatch, multi_label: bool, generator: torch.Generator | None) -> Tensor:
    """The class each image is guided towards: (B,) long.

    Multi-label: one ground-truth class drawn per image, `multinomial(y / y.sum(1))`
    (images without labels fall back to class 0 and carry no boxes of it). Single-label: the label.
    """
    if not multi_label:
        return batch["label"]
    target = batch["target"]
    weights = target + (target.sum(1, keepdim=True) == 0).to(target.dtype) * F.one_hot(
        torch.zeros_like(target[:, 0], dtype=torch.long), target.shape[1]).to(target.dtype)
    return torch.multinomial(weights, 1, generator=generator).squeeze(1)


def guidance_masks(batch: GuidanceBatch, classes: Tensor, dilation: float) -> tuple[Tensor, Tensor]:
    """Union masks of each image's boxes of its guided class, and which images have any.

    Returns masks (B, H, W) bool and has_box (B,) bool (annotated images with ≥1 box of the class).
    """
    images = batch["images"]
    valid = batch["box_valid"] & (batch["box_labels"] == classes[:, None])
    valid = valid & batch["annotated"][:, None]
    masks = boxes_to_masks(batch["boxes"], valid, images.shape[-2], images.shape[-1], dilation=dilation)
    return masks, valid.any(1)


def guided_step(
    model: torch.nn.Module,
    explainer: Explainer,
    batch: GuidanceBatch,
    *,
    loss_fn: LocalisationLoss,
    lam: float,
    multi_label: bool,
    contrast: bool = False,
    dilation: float = 0.0,
    generator: torch.Generator | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[Tensor, StepLosses]:
    """Forward, explanation and losses for one batch; returns (loss to backpropagate, parts).

    `explainer` is an entered `core.explain` explainer on `model`; `loss_fn(maps, masks) -> (B,)`
    a `core.guidance.LOSSES` entry. The caller runs backward and the optimiser step.
    """
    images = batch["images"]
    classes = guided_targets(batch, multi_label, generator)
    masks, has_box = guidance_masks(batch, classes, dilation)
    any_box = lam > 0 and bool(has_box.any())  # one host sync per step decides whether to explain at all
    with torch.autocast(images.device.type, dtype=autocast_dtype or torch.bfloat16,
                        enabled=autocast_dtype is not None):
        if any_box:
            attribution = explainer.attribute(images, classes, create_graph=True, contrast=contrast, rows=has_box)
            logits = attribution.logits
            per_image = loss_fn(attribution.maps.float(), masks)
            localisation = torch.where(has_box, per_image, torch.zeros_like(per_image)).sum()
        else:
            logits = model(images)
            localisation = logits.new_zeros(())
        cls_loss = classification_loss(logits.float(), batch, multi_label)
    total = cls_loss + lam * localisation
    parts = StepLosses(total=total.detach(), classification=cls_loss.detach(),
                       localisation=localisation.detach(), n_annotated=has_box.sum())
    return total, parts
