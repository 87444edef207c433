"""Batched evaluation: classification metrics, EPG and IoU of the model's explanations, per group.

Classification: accuracy (single-label, argmax) or micro F1 (multi-label, logit ≥ 0).
Localisation (docs/science.md §5): EPG and IoU per (image, ground-truth class) pair that has at least
one box of that class, averaged over pairs; a multi-label image is forwarded once for all its classes
(`Explainer.attribute_multi`). Everything stays on the model's device until the end.

Under torchrun every rank evaluates its shard of the split (the loader's DistributedSampler) and the
per-image rows are gathered to every rank, so the metrics cover the whole split on each of them, as a
single process would compute them; every rank must call `evaluate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor, nn

from core import metrics
from core.explain import EXPLAINERS
from core.guidance import boxes_to_masks
from core.train import distributed as dist_utils


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
    epg_decision: list[Tensor] = field(default_factory=list)  # the decision's map, when asked (single-label)


def _multi_target(explainer: Any, images: Tensor, target: Tensor, chunk: int) -> tuple[Tensor, Tensor, Tensor]:
    """Every ground-truth (image, class) pair explained without a graph, each image forwarded once
    (`attribute_multi`): `target (B, C)` multi-hot → pairs (P, 2) sorted by image, maps (P, h, w), logits (B, C)."""
    classes = target.bool()
    pairs = classes.nonzero()  # (P, 2): image index, class, sorted by image then class
    per_image = torch.split(pairs[:, 1], classes.sum(1).tolist())  # one host sync per batch
    maps, logits = [], []
    for start in range(0, images.shape[0], chunk):
        out = explainer.attribute_multi(images[start:start + chunk], per_image[start:start + chunk])
        logits.append(out.logits)
        if out.pairs.shape[0]:
            maps.append(out.maps)
    return pairs, torch.cat(maps) if maps else images.new_zeros((0, 1, 1)), torch.cat(logits)


def _localisation(explainer: Any, batch: dict[str, Tensor], multi_label: bool, chunk: int, contrast: bool = False
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """Per-image mean EPG and IoU over its ground-truth classes with boxes (NaN: no box); logits (B, C).
    `contrast` (single-label): the maps explain `logit_t − max_{c≠t} logit_c`, the decision, instead of `logit_t`."""
    images = batch["images"]
    n = images.shape[0]
    if multi_label:  # one forward per image, one explanation backward per (image, class) pair
        pairs, maps, logits = _multi_target(explainer, images, batch["target"], chunk)
    else:  # one pair per image: its label; the explanation's forward gives the logits
        pairs = torch.stack([torch.arange(n, device=images.device), batch["label"]], 1)
        attribution = explainer.attribute_detached(images, batch["label"], contrast=contrast)
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
        out["group_sizes"] = {name: int(n) for name, n in zip(group_names, counts[1].tolist()) if n}
        out["worst_group_accuracy"] = float(metrics.worst_group_accuracy(counts))
    else:
        out["group_accuracy"], out["group_sizes"], out["worst_group_accuracy"] = {}, {}, None
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
    contrast: bool = False,
    decision: bool = False,
) -> EvalResult:
    """Evaluate `model` (in eval mode) on batches from `core.data.collate_guidance`.

    `chunk`: most images per multi-target explanation pass (multi-label batches; bounds memory). Under torchrun
    every rank must call it with its shard (see the module docstring). `contrast`: on single-label data, EPG and
    IoU of the decision's explanation (`logit_t − max_{c≠t} logit_c`) instead of the class logit's (the default,
    the paper's); ignored for multi-label data. `decision`: on single-label data, also `epg_decision`, the EPG of
    the decision's map beside the class logit's (docs/science.md §10), from a second explanation of each batch.

    Returns metrics {accuracy, f1 (multi-label), epg, iou, group_accuracy, worst_group_accuracy,
    n_images, n_localised, epg_decision (with `decision`, single-label)} and per-image rows keyed by the batch's
    `key`.
    """
    was_training = model.training
    model.eval()
    acc = _Accumulator()
    try:
        with EXPLAINERS[attribution](model, layer=layer) as explainer:
            for batch in batches:
                epg, iou, logits = _localisation(explainer, batch, multi_label, chunk, contrast)
                for name, value in (("logits", logits), ("targets", batch["target"]), ("labels", batch["label"]),
                                    ("groups", batch["group"]), ("keys", batch["key"]), ("epg", epg),
                                    ("iou", iou)):
                    getattr(acc, name).append(value.detach())
                if decision and not multi_label:  # the same images, the decision explained
                    acc.epg_decision.append(_localisation(explainer, batch, False, chunk, True)[0].detach())
    finally:
        model.train(was_training)
    if dist_utils.is_distributed():
        acc = _gathered(acc)
    return _summarise(acc, multi_label, group_names)


def _gathered(acc: _Accumulator) -> _Accumulator:
    """Every rank's rows on every rank, in the split's order, each image once.

    A DistributedSampler without shuffling gives rank `r` the images `r, r + W, r + 2W, …` and pads the
    last round with the first images again; interleaving the ranks' rows restores the order, and keeping the
    first row of each key drops the padding.
    """
    names = [f.name for f in fields(_Accumulator)]
    local = {name: torch.cat(getattr(acc, name)).cpu() if getattr(acc, name) else None for name in names}
    gathered = dist_utils.all_gather_objects(local)  # indexed by rank
    world = len(gathered)
    shards = [(r, shard) for r, shard in enumerate(gathered) if shard["keys"] is not None]
    out = _Accumulator()
    if not shards:
        return out
    position = torch.cat([torch.arange(shard["keys"].shape[0]) * world + r for r, shard in shards])
    order = position.argsort()
    keys = torch.cat([shard["keys"] for _, shard in shards])[order]
    unique, inverse = torch.unique(keys, return_inverse=True)
    first = torch.full((unique.numel(),), keys.numel()).scatter_reduce(0, inverse, torch.arange(keys.numel()), "amin")
    keep = torch.zeros(keys.numel(), dtype=torch.bool)
    keep[first] = True  # the first row of each image; later ones are the sampler's padding
    device = acc.logits[0].device if acc.logits else torch.device("cpu")
    for name in names:
        if any(shard.get(name) is None for _, shard in shards):
            continue  # an optional field no rank filled (`epg_decision` without `decision`)
        values = torch.cat([shard[name] for _, shard in shards])[order][keep]
        getattr(out, name).append(values.to(device))
    return out


def _summarise(acc: _Accumulator, multi_label: bool, group_names: Sequence[str]) -> EvalResult:
    if not acc.logits:
        return EvalResult(metrics={"n_images": 0, "multi_label": multi_label, "accuracy": 0.0, "f1": 0.0,
                                   "epg": None, "iou": None, "group_accuracy": {}, "worst_group_accuracy": None})
    out = _classification(acc, multi_label, group_names)
    epg, iou = torch.cat(acc.epg), torch.cat(acc.iou)
    localised = ~torch.isnan(epg)
    out["epg"] = float(epg[localised].mean()) if localised.any() else None
    out["iou"] = float(iou[localised].mean()) if localised.any() else None
    if acc.epg_decision:
        decision = torch.cat(acc.epg_decision)
        out["epg_decision"] = float(decision[localised].mean()) if localised.any() else None
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
