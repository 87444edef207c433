"""Batched evaluation: classification metrics, EPG and IoU of the model's explanations, per group.

Classification: accuracy (single-label, argmax) or micro F1 (multi-label, logit ≥ 0).
Localisation (SCIENCE.md §5): EPG and IoU per (image, ground-truth class) pair that has at least
one box of that class, averaged over pairs. Everything stays on the model's device; one host
transfer per batch collects the per-image rows the compare view sorts on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from core import metrics
from core.explain import EXPLAINERS
from core.guidance import boxes_to_masks


@dataclass
class EvalResult:
    """Aggregate metrics and one row per image (`key`, `epg`, `iou`, `correct`, `score`, `predicted`)."""

    metrics: dict[str, Any]
    per_image: list[dict[str, Any]] = field(default_factory=list)

    @property
    def primary(self) -> float:
        """The classification metric model selection uses: F1 (multi-label) or accuracy."""
        return float(self.metrics["f1"] if self.metrics.get("multi_label") else self.metrics["accuracy"])


@dataclass
class _Accumulator:
    logits: list[Tensor] = field(default_factory=list)
    targets: list[Tensor] = field(default_factory=list)
    labels: list[Tensor] = field(default_factory=list)
    groups: list[Tensor] = field(default_factory=list)
    keys: list[Tensor] = field(default_factory=list)
    epg: list[Tensor] = field(default_factory=list)  # per image, NaN when it has no box of its classes
    iou: list[Tensor] = field(default_factory=list)


def _pair_maps(explainer: Any, images: Tensor, pairs: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    """Explanations for (image, class) pairs without a graph: pairs (P, 2) long → maps (P, h, w), logits (P, C)."""
    maps, logits = [], []
    for start in range(0, pairs.shape[0], chunk):
        part = pairs[start:start + chunk]
        out = explainer.attribute_detached(images[part[:, 0]], part[:, 1])
        maps.append(out.maps)
        logits.append(out.logits)
    if not maps:
        return images.new_zeros((0, 1, 1)), images.new_zeros((0, 0))
    return torch.cat(maps), torch.cat(logits)


def _image_logits(model: nn.Module, images: Tensor, pairs: Tensor, pair_logits: Tensor) -> Tensor:
    """Per-image logits (B, C) reusing the pair explanations' forwards: each image's first pair (pairs are
    sorted by image); only images without any pair get a forward of their own."""
    n = images.shape[0]
    first = torch.ones(pairs.shape[0], dtype=torch.bool, device=pairs.device)
    first[1:] = pairs[1:, 0] != pairs[:-1, 0]
    covered = torch.zeros(n, dtype=torch.bool, device=images.device)
    covered[pairs[first, 0]] = True
    if bool(covered.all()):  # one host sync per batch
        return pair_logits[first]
    with torch.no_grad():
        missing = model(images[~covered])
    logits = missing.new_empty((n, missing.shape[1]))
    logits[~covered] = missing
    if pairs.shape[0]:
        logits[pairs[first, 0]] = pair_logits[first].to(missing.dtype)
    return logits


def _localisation(model: nn.Module, explainer: Any, batch: dict[str, Tensor], multi_label: bool,
                  chunk: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per-image mean EPG and IoU over its ground-truth classes with boxes (NaN: no box); logits (B, C)."""
    images = batch["images"]
    n = images.shape[0]
    if multi_label:  # one explanation per (image, class) pair; their forwards also give the images' logits
        pairs = batch["target"].nonzero()  # (P, 2): image index, class, sorted by image
        maps, pair_logits = _pair_maps(explainer, images, pairs, chunk)
        logits = _image_logits(model, images, pairs, pair_logits)
    else:  # one pair per image: its label; the explanation's forward gives the logits
        pairs = torch.stack([torch.arange(n, device=images.device), batch["label"]], 1)
        attribution = explainer.attribute_detached(images, batch["label"])
        logits, maps = attribution.logits, attribution.maps
    valid = batch["box_valid"][pairs[:, 0]] & (batch["box_labels"][pairs[:, 0]] == pairs[:, 1:2])
    masks = boxes_to_masks(batch["boxes"][pairs[:, 0]], valid, images.shape[-2], images.shape[-1])
    has_box = valid.any(1).to(maps.dtype)
    epg = metrics.energy_pointing_game(maps, masks) * has_box
    iou = metrics.box_iou(maps, masks) * has_box
    counts = torch.zeros(n, device=images.device, dtype=maps.dtype).index_add_(0, pairs[:, 0], has_box)
    epg_img = torch.zeros_like(counts).index_add_(0, pairs[:, 0], epg) / counts
    iou_img = torch.zeros_like(counts).index_add_(0, pairs[:, 0], iou) / counts
    return epg_img, iou_img, logits


def _classification(acc: _Accumulator, multi_label: bool, group_names: Sequence[str]) -> dict[str, Any]:
    logits, targets, labels = torch.cat(acc.logits), torch.cat(acc.targets), torch.cat(acc.labels)
    groups = torch.cat(acc.groups)
    out: dict[str, Any] = {}
    if multi_label:
        precision, recall, f1 = metrics.precision_recall_f1(metrics.multilabel_counts(logits, targets)).tolist()
        out.update(precision=precision, recall=recall, f1=f1)
        correct = ((logits >= 0) == targets.bool()).all(1)  # exact match per image
    else:
        correct = logits.argmax(1) == labels
    out["accuracy"] = float(correct.double().mean())
    grouped = groups >= 0
    if group_names and bool(grouped.any()):
        # group_counts scores argmax == label: two-column logits whose argmax is 1 exactly when correct
        as_logits = torch.stack([(~correct).float(), correct.float()], 1)[grouped]
        counts = metrics.group_counts(as_logits, torch.ones_like(groups[grouped]), groups[grouped], len(group_names))
        per_group = metrics.group_accuracy(counts).tolist()
        out["group_accuracy"] = {name: a for name, a in zip(group_names, per_group) if a == a}
        out["worst_group_accuracy"] = float(metrics.worst_group_accuracy(counts))
    else:
        out["group_accuracy"], out["worst_group_accuracy"] = {}, None
    return out


def evaluate(
    model: nn.Module,
    batches: Iterable[dict[str, Tensor]],
    *,
    multi_label: bool,
    attribution: str = "bcos",
    layer: str = "input",
    group_names: Sequence[str] = (),
    chunk: int = 64,
) -> EvalResult:
    """Evaluate `model` (in eval mode) on batches from `core.data.collate_guidance`.

    Returns metrics {accuracy, f1 (multi-label), epg, iou, group_accuracy, worst_group_accuracy,
    n_images, n_localised} and per-image rows keyed by the batch's `key`.
    """
    was_training = model.training
    model.eval()
    acc = _Accumulator()
    try:
        with EXPLAINERS[attribution](model, layer=layer) as explainer:
            for batch in batches:
                epg, iou, logits = _localisation(model, explainer, batch, multi_label, chunk)
                for name, value in (("logits", logits), ("targets", batch["target"]), ("labels", batch["label"]),
                                    ("groups", batch["group"]), ("keys", batch["key"]), ("epg", epg),
                                    ("iou", iou)):
                    getattr(acc, name).append(value.detach())
    finally:
        model.train(was_training)
    return _summarise(acc, multi_label, group_names)


def _summarise(acc: _Accumulator, multi_label: bool, group_names: Sequence[str]) -> EvalResult:
    if not acc.logits:
        return EvalResult(metrics={"n_images": 0, "multi_label": multi_label, "accuracy": 0.0, "f1": 0.0,
                                   "epg": None, "iou": None, "group_accuracy": {}, "worst_group_accuracy": None})
    out = _classification(acc, multi_label, group_names)
    epg, iou = torch.cat(acc.epg), torch.cat(acc.iou)
    localised = ~torch.isnan(epg)
    out["epg"] = float(epg[localised].mean()) if localised.any() else None
    out["iou"] = float(iou[localised].mean()) if localised.any() else None
    logits = torch.cat(acc.logits).float()
    probs = torch.sigmoid(logits) if multi_label else torch.softmax(logits, 1)
    score, predicted = probs.max(1)
    labels = torch.cat(acc.labels)
    correct = (logits >= 0).eq(torch.cat(acc.targets).bool()).all(1) if multi_label else predicted == labels
    out.update(n_images=int(logits.shape[0]), n_localised=int(localised.sum()), multi_label=multi_label)
    rows = zip(torch.cat(acc.keys).tolist(), epg.tolist(), iou.tolist(), correct.tolist(), score.tolist(),
               predicted.tolist())
    per_image = [{"key": k, "epg": None if e != e else e, "iou": None if i != i else i, "correct": bool(c),
                  "score": s, "predicted": p} for k, e, i, c, s, p in rows]
    return EvalResult(metrics=out, per_image=per_image)
