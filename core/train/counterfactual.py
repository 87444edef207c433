"""Box-swap counterfactuals: the user's boxes turned into training images on which the shortcut lies.

Why: a localisation loss on 10% of the images tells the model *where* to look, but the classification loss on the
other 90% — where the cue agrees with the class — keeps paying for the cue, and a feature the model never learned
(a shape, issue 13) is not built by moving the map alone. A box says "the evidence is in here"; by the same premise
as the localisation loss, what lies outside every box cannot decide the label. So an annotated image's boxed pixels
keep their label on any other background. Each step draws pairs (i, j) of annotated images and composes

    x = x_i  inside (boxes of i ∪ boxes of j),   x_j  elsewhere,      label(x) = label(i),  boxes(x) = boxes(i)

— i's evidence on j's surroundings (j's shortcut: its badge, background, watermark), with j's own object covered
by i's pixels. The donor is drawn uniformly, so on these images the cue carries no information about the label
while the object does (the "mixed-rand" backgrounds of Xiao et al., ICLR 2021, built from boxes). The composites
join the batch as annotated images: the classification loss learns the object from them and the localisation loss
guides them like any annotated image. Uses only the boxes the run uses, of images whose every label is boxed; with
fewer than two such images, nothing is added.

Vectorised on the model's device; the annotated images are held as uint8 (3·S² bytes each, at most `MAX_IMAGES`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import Tensor

from core.data import GuidanceDataset, ImageRecord, collate_guidance
from core.guidance import boxes_to_masks

__all__ = ["MAX_IMAGES", "CounterfactualBank", "append_rows"]

log = logging.getLogger(__name__)

MAX_IMAGES = 4096  # annotated images held for composing (a seeded sample when there are more): 600 MiB at 224²


class CounterfactualBank:
    """The run's annotated training images with their box masks; `draw(n)` composes n counterfactuals."""

    def __init__(self, records: Sequence[ImageRecord], annotated_keys: Sequence[int], *, num_classes: int,
                 image_size: int, multi_label: bool, device: torch.device, seed: int) -> None:
        keys = set(annotated_keys)
        # only images whose every label has a box: an unboxed labelled object would be cut off yet keep its label
        chosen = [r for r in records if r.key in keys and r.boxes and set(r.labels) <= set(r.box_labels)]
        if len(chosen) > MAX_IMAGES:
            order = torch.randperm(len(chosen), generator=torch.Generator().manual_seed(seed))[:MAX_IMAGES]
            chosen = [chosen[i] for i in sorted(order.tolist())]
        self.size = len(chosen)
        if self.size < 2:  # a composite needs a donor other than itself
            self.size = 0
            return
        dataset = GuidanceDataset(chosen, num_classes=num_classes, image_size=image_size, multi_label=multi_label)
        batch = collate_guidance([dataset[i] for i in range(len(dataset))])
        self.images = batch["image"].mul(255).round().to(torch.uint8).to(device)  # (N, 3, S, S)
        self.rows = {k: batch[k].to(device) for k in ("target", "label", "boxes", "box_labels", "box_valid")}
        self.masks = boxes_to_masks(self.rows["boxes"], self.rows["box_valid"], image_size, image_size)  # (N, S, S)
        log.info("counterfactuals: %d annotated images to compose from", self.size)

    def __bool__(self) -> bool:
        return self.size > 0

    def draw(self, count: int, generator: torch.Generator) -> dict[str, Tensor]:
        """`count` composites as batch rows (`images`, `target`, `label`, boxes…, `group` -1, `annotated` True)."""
        first = torch.randint(self.size, (count,), generator=generator)
        donor = (first + torch.randint(1, self.size, (count,), generator=generator)) % self.size  # never itself
        first, donor = first.to(self.images.device), donor.to(self.images.device)
        keep = (self.masks[first] | self.masks[donor])[:, None]  # (n, 1, S, S)
        images = torch.where(keep, self.images[first], self.images[donor]).float().div_(255.0)
        rows = {k: v[first] for k, v in self.rows.items()}
        group = torch.full((count,), -1, dtype=torch.long, device=images.device)
        annotated = torch.ones(count, dtype=torch.bool, device=images.device)
        return {"images": images, **rows, "group": group, "key": group.clone(), "annotated": annotated}


def append_rows(batch: dict[str, Tensor], extra: dict[str, Tensor]) -> dict[str, Tensor]:
    """`batch` with `extra`'s rows appended; box tensors padded to the larger box count K."""
    k = max(batch["boxes"].shape[1], extra["boxes"].shape[1])
    pads = {"boxes": 0.0, "box_labels": -1, "box_valid": False}
    out = {}
    for name, value in batch.items():
        if name not in extra:
            out[name] = value
            continue
        parts = [value, extra[name]]
        if name in pads:
            parts = [_pad_k(p, k, pads[name]) for p in parts]
        out[name] = torch.cat(parts)
    return out


def _pad_k(value: Tensor, k: int, fill: float | int | bool) -> Tensor:
    """`value` (B, K, ...) padded along dim 1 to `k` with `fill`."""
    if value.shape[1] == k:
        return value
    shape = (value.shape[0], k - value.shape[1], *value.shape[2:])
    return torch.cat([value, value.new_full(shape, fill)], dim=1)
