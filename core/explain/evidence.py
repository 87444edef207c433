"""The box around a map's strongest positive evidence: Annotate's "Propose box" and training's pseudo-boxes
(core/train/pseudo_boxes.py) both draw it this way."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["FRACTION", "evidence_box"]

FRACTION = 0.5  # pixels above this share of the blurred map's peak form the candidate components


def evidence_box(amap: np.ndarray, fraction: float = FRACTION) -> tuple[tuple[int, int, int, int], float] | None:
    """The box `(x0, y0, x1, y1)` (end-exclusive pixels) around the component of strongest positive evidence of
    `amap` `(H, W)`, and the share of all positive evidence inside it; None for a map with no positive evidence."""
    positive = np.clip(amap.astype(np.float32), 0.0, None)
    total = float(positive.sum())
    if total <= 0.0:
        return None
    smooth = cv2.GaussianBlur(positive, (0, 0), sigmaX=max(1.0, amap.shape[1] / 64))
    mask = (smooth >= fraction * smooth.max()).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return None
    evidence = np.bincount(labels.ravel(), weights=smooth.ravel(), minlength=count)[1:]
    best = 1 + int(np.argmax(evidence))
    x, y, w, h = (int(v) for v in stats[best, :4])
    share = float(positive[y:y + h, x:x + w].sum()) / total
    return (x, y, x + w, y + h), share
