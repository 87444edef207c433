"""Evaluation metrics (Rao et al., *Studying How to Efficiently and Effectively Guide Models with
Explanations*, ICCV 2023, §4 and docs/science.md §5): localisation (EPG, IoU), classification (F1, accuracy,
worst-group accuracy), Pareto selection of checkpoints, and streaming accumulators for batched
evaluation. Everything stays on the tensors' device; only ``compute()``/``pareto_front`` sync.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from core.guidance.base import ENERGY_EPS, check_maps_and_masks, positive_energy, resize_to


def energy_pointing_game(attributions: Tensor, masks: Tensor) -> Tensor:
    """Energy pointing game (Wang et al., 2020; used by Rao et al., ICCV 2023): ``Σ_M A⁺ / Σ A⁺``.

    Args:
        attributions: ``(B, h, w)`` raw attributions, upsampled bilinearly to ``(H, W)`` then clamped.
        masks: ``(B, H, W)`` bool, union of the explained class's boxes.

    Returns:
        ``(B,)`` in ``[0, 1]``; 0 where ``Σ A⁺ < 1e-7``.
    """
    inside, total = positive_energy(attributions, masks)
    defined = total >= ENERGY_EPS
    return torch.where(defined, inside / torch.where(defined, total, torch.ones_like(total)), 0.0)


def _min_max_normalise(maps: Tensor) -> Tensor:
    """Per-image ``(A − min) / (max − min)`` of ``maps: (B, H, W)``; a flat map becomes ``A / max`` (or 0)."""
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    spread = high - low
    flat = torch.where(high > 0, maps / torch.where(high > 0, high, 1.0), 0.0)
    return torch.where(spread >= ENERGY_EPS, (maps - low) / spread.clamp_min(ENERGY_EPS), flat)


def box_iou(attributions: Tensor, masks: Tensor, threshold: float = 0.5) -> Tensor:
    """IoU between the thresholded explanation and the box mask (Rao et al., ICCV 2023, §4).

    The raw map is upsampled bilinearly to ``(H, W)``, clamped to ``A⁺``, min-max normalised per image,
    and pixels with value ``≥ threshold`` form the explanation's region.

    Args:
        attributions: ``(B, h, w)`` raw attributions.
        masks: ``(B, H, W)`` bool.
        threshold: cut-off on the normalised map, in ``[0, 1]``.

    Returns:
        ``(B,)`` IoU in ``[0, 1]``; 0 where the union is empty.
    """
    check_maps_and_masks(attributions, masks)
    positive = resize_to(attributions, masks.shape[-2:]).clamp_min(0)
    region, masks = _min_max_normalise(positive) >= threshold, masks.bool()  # (B, H, W) each
    intersection = (region & masks).flatten(1).sum(1).to(positive.dtype)
    union = (region | masks).flatten(1).sum(1).to(positive.dtype)
    return torch.where(union > 0, intersection / union.clamp_min(1), 0.0)


def multilabel_counts(logits: Tensor, labels: Tensor) -> Tensor:
    """Micro true-positive, false-positive and false-negative counts, ``(3,)`` long.

    Args:
        logits: ``(N, C)``; a class is predicted when its logit is ≥ 0 (sigmoid ≥ 0.5).
        labels: ``(N, C)`` bool or {0, 1}.
    """
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} must have the same shape")
    predicted, actual = logits >= 0, labels.bool()
    return torch.stack(((predicted & actual).sum(), (predicted & ~actual).sum(), (~predicted & actual).sum()))


def precision_recall_f1(counts: Tensor) -> Tensor:
    """``(precision, recall, F1)`` as a ``(3,)`` float tensor from ``(tp, fp, fn)`` counts; 0 where undefined."""
    tp, fp, fn = counts.double().unbind()
    precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp_min(1), 0.0)
    recall = torch.where(tp + fn > 0, tp / (tp + fn).clamp_min(1), 0.0)
    f1 = torch.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn).clamp_min(1), 0.0)
    return torch.stack((precision, recall, f1))


def multilabel_f1(logits: Tensor, labels: Tensor) -> Tensor:
    """Micro-averaged multi-label F1 of ``logits: (N, C)`` against ``labels: (N, C)``, a 0-d tensor."""
    return precision_recall_f1(multilabel_counts(logits, labels))[2]


def accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """Single-label top-1 accuracy of ``logits: (N, C)`` against ``labels: (N,)`` long, a 0-d tensor."""
    return (logits.argmax(dim=1) == labels).double().mean()


def group_counts(logits: Tensor, labels: Tensor, groups: Tensor, num_groups: int) -> Tensor:
    """Correct and total counts per group, ``(2, G)`` long (row 0 correct, row 1 total).

    Args:
        logits: ``(N, C)``; labels: ``(N,)`` long; groups: ``(N,)`` long in ``[0, num_groups)``.
    """
    correct = (logits.argmax(dim=1) == labels).long()
    totals = torch.zeros(2, num_groups, dtype=torch.long, device=logits.device)
    totals[0].scatter_add_(0, groups, correct)
    totals[1].scatter_add_(0, groups, torch.ones_like(correct))
    return totals


def group_accuracy(counts: Tensor) -> Tensor:
    """Per-group accuracy ``(G,)`` from ``group_counts``; NaN for groups with no images."""
    correct, total = counts.double()
    return torch.where(total > 0, correct / total.clamp_min(1), torch.nan)


def worst_group_accuracy(counts: Tensor) -> Tensor:
    """Lowest accuracy over the groups that have images (Sagawa et al., 2020), a 0-d tensor."""
    accuracies = group_accuracy(counts)
    return torch.where(accuracies.isnan(), torch.inf, accuracies).min()


def pareto_front(points: Sequence[Sequence[float]], bin_width: float = 0.005) -> list[int]:
    """Indices of the checkpoints on the Pareto front (Rao et al., ICCV 2023, §4: F1, EPG, IoU).

    Each coordinate is rounded to the nearest multiple of ``bin_width`` (halves round up); a point is
    dropped if another is ≥ in every coordinate and > in one, or if an earlier point has the same
    rounded values (on ties the earliest survives).

    Args:
        points: ``N`` tuples of equal length, higher is better, in order of creation.
        bin_width: rounding step, > 0.

    Returns:
        Sorted indices into ``points``.
    """
    if bin_width <= 0:
        raise ValueError(f"bin_width must be > 0, got {bin_width}")
    if len(points) == 0:
        return []
    values = torch.as_tensor([list(map(float, point)) for point in points], dtype=torch.float64)
    binned = torch.floor(values / bin_width + 0.5 + 1e-9).long()  # (N, D); 1e-9 absorbs 0.015/0.005 = 2.999…
    ge = (binned[:, None] >= binned[None]).all(-1)  # ge[j, i]: j ≥ i everywhere
    gt = (binned[:, None] > binned[None]).any(-1)
    order = torch.arange(len(points))
    earlier_equal = ge & ~gt & (order[:, None] < order[None])
    beaten = (ge & gt) | earlier_equal
    return torch.nonzero(~beaten.any(0)).flatten().tolist()


class LocalisationMeter:
    """Streams mean EPG and IoU over (image, class) pairs across batches, without host syncs.

    ``update(attributions (P, h, w), masks (P, H, W))`` per batch of pairs; ``compute()`` returns
    ``{"epg": …, "iou": …, "pairs": …}`` as Python numbers (Rao et al., ICCV 2023, §4: averaged over pairs).
    """

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._sums: Tensor | None = None  # (3,) float64: Σ EPG, Σ IoU, number of pairs

    def update(self, attributions: Tensor, masks: Tensor) -> None:
        """Add a batch of pairs: ``attributions: (P, h, w)`` raw, ``masks: (P, H, W)`` bool."""
        with torch.no_grad():
            epg = energy_pointing_game(attributions, masks).double().sum()
            iou = box_iou(attributions, masks, self.threshold).double().sum()
            batch = torch.stack((epg, iou, epg.new_tensor(float(masks.shape[0]))))
        self._sums = batch if self._sums is None else self._sums + batch

    def compute(self) -> dict[str, float]:
        """Mean EPG and IoU over all pairs seen (0 when none)."""
        if self._sums is None:
            return {"epg": 0.0, "iou": 0.0, "pairs": 0}
        epg, iou, pairs = self._sums.tolist()
        return {"epg": epg / max(pairs, 1), "iou": iou / max(pairs, 1), "pairs": int(pairs)}


class ClassificationMeter:
    """Streams classification counts across batches, without host syncs until ``compute()``.

    Multi-label when ``labels`` are ``(N, C)`` (micro F1, precision, recall); single-label when they are
    ``(N,)`` (accuracy, and per-group / worst-group accuracy when ``num_groups > 0`` and groups are given).
    """

    def __init__(self, num_groups: int = 0) -> None:
        self.num_groups = num_groups
        self._multilabel: Tensor | None = None  # (3,) tp, fp, fn
        self._groups: Tensor | None = None  # (2, G) correct, total (G = 1 when ungrouped)

    def update(self, logits: Tensor, labels: Tensor, groups: Tensor | None = None) -> None:
        """Add a batch: ``logits: (N, C)``, ``labels: (N, C)`` or ``(N,)``, ``groups: (N,)`` long or None."""
        logits = logits.detach()
        if labels.dim() == 2:
            counts = multilabel_counts(logits, labels)
            self._multilabel = counts if self._multilabel is None else self._multilabel + counts
            return
        if self.num_groups > 0 and groups is None:
            raise ValueError(f"this meter tracks {self.num_groups} groups: pass groups (N,) with every batch")
        if self.num_groups == 0:
            groups = torch.zeros_like(labels)
        counts = group_counts(logits, labels, groups, max(self.num_groups, 1))
        self._groups = counts if self._groups is None else self._groups + counts

    def compute(self) -> dict[str, float | list[float]]:
        """The metrics the seen batches support, as Python numbers."""
        result: dict[str, float | list[float]] = {}
        if self._multilabel is not None:
            precision, recall, f1 = precision_recall_f1(self._multilabel).tolist()
            result |= {"f1": f1, "precision": precision, "recall": recall}
        if self._groups is not None:
            correct, total = self._groups.sum(1).tolist()
            result["accuracy"] = correct / max(total, 1)
            if self.num_groups > 0:
                result["group_accuracy"] = group_accuracy(self._groups).tolist()
                result["worst_group_accuracy"] = worst_group_accuracy(self._groups).item()
        return result
