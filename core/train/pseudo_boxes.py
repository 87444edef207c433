"""Pseudo-boxes: once the model's evidence sits on the object, boxes proposed on the unboxed training images.

Why: box-swap counterfactuals (core/train/counterfactual.py) show the object on backgrounds where the cue lies, but
only the objects the user boxed — 10% of the training images. A feature the baseline lacks (a shape) is then learned
from a few hundred objects while the other 90% of the images keep paying for the cue. A guided model's explanation
puts its positive evidence on the object long before its decisions follow (EPG 0.8–0.9 while worst group is still
≈ 0.5 on the shape benchmark), so that explanation can box the object on every other training image, and the
composites can draw from all of them.

How: the input-level explanation of the guided score (the contrast for single-label data) of each unboxed image's
own label is blurred; the pixels above half its peak form components; the component holding the most positive
evidence is boxed (`core.explain.evidence.evidence_box`, as Annotate's "Propose box" does). A proposal
is kept only when it is *confident*:

- the box holds at least `MIN_SHARE` of the image's positive evidence (the evidence is on one thing), and
- it covers at most `MAX_AREA` of the image (not "everything"), and at least `MIN_SIDE` pixels a side.

Kept proposals feed the counterfactual bank only — never the localisation loss, never the database as human boxes.
The run records how many were made (`FineTuneResult.pseudo_boxes`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from core.data import ImageRecord
from core.explain import EXPLAINERS
from core.explain.evidence import evidence_box

__all__ = ["MAX_AREA", "MIN_SHARE", "coverage", "propose_pseudo_boxes", "unboxed_loader"]

log = logging.getLogger(__name__)

MIN_SHARE = 0.6  # a kept box holds at least this share of the image's positive evidence
MAX_AREA = 0.5  # … and covers at most this share of the image
MIN_SIDE = 3  # pixels


def propose_pseudo_boxes(model: nn.Module, loader: DataLoader, records: Sequence[ImageRecord], *, attribution: str,
                         contrast: bool, device: torch.device) -> tuple[list[ImageRecord], dict[int, float]]:
    """`records` with confident pseudo-boxes on the unboxed single-label images of `loader` (collated guidance
    batches of those records, in any order), and each kept box's evidence share by key. Boxed images and
    multi-label images are returned unchanged."""
    by_key = {r.key: r for r in records}
    kept: dict[int, tuple[tuple[float, float, float, float], float]] = {}
    was_training = model.training
    model.eval()
    try:
        with EXPLAINERS[attribution](model, layer="input") as explainer:
            for batch in loader:
                images = batch["image"].to(device, non_blocking=True)
                labels = batch["label"].to(device)
                maps = explainer.attribute_detached(images, labels.clamp(min=0), contrast=contrast).maps
                maps = F.interpolate(maps[:, None].float(), size=images.shape[-2:], mode="bilinear",
                                     align_corners=False)[:, 0].cpu().numpy()
                for key, label, amap in zip(batch["key"].tolist(), batch["label"].tolist(), maps):
                    record = by_key.get(key)
                    if record is None or record.boxes or label < 0 or len(record.labels) != 1:
                        continue
                    found = evidence_box(amap)
                    if found is None:
                        continue
                    (x0, y0, x1, y1), share = found
                    area = (x1 - x0) * (y1 - y0) / float(amap.size)
                    if share >= MIN_SHARE and area <= MAX_AREA and min(x1 - x0, y1 - y0) >= MIN_SIDE:
                        kept[key] = (_to_record_pixels((x0, y0, x1, y1), amap.shape, record), share)
    finally:
        model.train(was_training)
    out = [replace(r, boxes=(kept[r.key][0],), box_labels=(r.labels[0],)) if r.key in kept else r for r in records]
    return out, {k: v[1] for k, v in kept.items()}


def _to_record_pixels(box: tuple[int, int, int, int], shape: tuple[int, ...], record: ImageRecord
                      ) -> tuple[float, float, float, float]:
    """A box on the S×S input as pixels of the record's own image (the coordinates its boxes are stored in)."""
    height, width = shape[-2], shape[-1]
    sx = (record.width or width) / width
    sy = (record.height or height) / height
    x0, y0, x1, y1 = box
    return (x0 * sx, y0 * sy, x1 * sx, y1 * sy)


def unboxed_loader(loader: DataLoader, records: Sequence[ImageRecord]) -> DataLoader | None:
    """A loader (same dataset, in order) over the positions of `loader`'s dataset whose record has no box."""
    positions = [i for i, r in enumerate(records) if not r.boxes]
    if not positions:
        return None
    subset = torch.utils.data.Subset(loader.dataset, positions)
    return DataLoader(subset, batch_size=max(loader.batch_size or 1, 64), shuffle=False,
                      collate_fn=loader.collate_fn, num_workers=0)


def coverage(records: Sequence[ImageRecord], shares: dict[int, float]) -> dict[str, float]:
    """What a proposal pass made: boxes kept, unboxed images seen, mean evidence share of the kept boxes."""
    unboxed = sum(1 for r in records if not r.boxes or r.key in shares)
    return {"proposed": len(shares), "of": unboxed,
            "mean_share": round(float(np.mean(list(shares.values()))), 3) if shares else 0.0}
