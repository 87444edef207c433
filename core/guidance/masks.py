"""Boxes to masks, on the boxes' device in one vectorised operation (docs/science.md §4)."""

from __future__ import annotations

import torch
from torch import Tensor


def _dilate(boxes: Tensor, dilation: float) -> Tensor:
    """Grow each side of ``boxes: (B, K, 4)`` by ``dilation ×`` the box's own width (x) or height (y)."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    grow_x = dilation * (x1 - x0).clamp_min(0)
    grow_y = dilation * (y1 - y0).clamp_min(0)
    return torch.stack((x0 - grow_x, y0 - grow_y, x1 + grow_x, y1 + grow_y), dim=-1)


def _inside_1d(starts: Tensor, ends: Tensor, size: int) -> Tensor:
    """``(B, K, size)`` float: 1 where pixel centre ``p + 0.5`` lies in ``[start, end)``."""
    centres = torch.arange(size, device=starts.device, dtype=starts.dtype) + 0.5  # (size,)
    return ((centres >= starts[..., None]) & (centres < ends[..., None])).to(torch.float32)


def boxes_to_masks(boxes: Tensor, valid: Tensor, height: int, width: int, *, dilation: float = 0.0) -> Tensor:
    """Union mask of each image's valid boxes (Rao et al., ICCV 2023, §3.3: ``M`` in the losses).

    Rounding rule: pixel ``(r, c)`` covers ``[c, c+1) × [r, r+1)`` and is inside a box when its
    centre is, i.e. ``x0 ≤ c + 0.5 < x1`` and ``y0 ≤ r + 0.5 < y1``. Integer boxes are therefore
    end-exclusive (columns ``x0 … x1−1``), and a fractional edge takes a pixel when it covers at least
    half of it from the start side (``x0 = 2.5`` takes column 2, ``x1 = 4.5`` excludes column 4).

    Args:
        boxes: ``(B, K, 4)`` ``x0, y0, x1, y1`` in pixels, padded to K boxes per image.
        valid: ``(B, K)`` bool, which of the K slots hold a real box.
        height: mask height H.
        width: mask width W.
        dilation: grow each side by ``dilation ×`` box width (left/right) or height (top/bottom),
            then clamp to the image (coarse boxes, docs/science.md §4). Must be ≥ 0.

    Returns:
        ``(B, H, W)`` bool on ``boxes.device``; no host synchronisation.
    """
    if boxes.dim() != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (B, K, 4) as x0, y0, x1, y1; got shape {tuple(boxes.shape)}")
    if valid.shape != boxes.shape[:2]:
        raise ValueError(f"valid must be (B, K) = {tuple(boxes.shape[:2])}, got {tuple(valid.shape)}")
    if dilation < 0:
        raise ValueError(f"dilation must be ≥ 0 (a fraction of the box size, e.g. 0.1), got {dilation}")
    # At least float32: integer boxes, and half-precision pixel centres lose exactness beyond 2048 px.
    boxes = boxes.to(torch.promote_types(boxes.dtype, torch.float32))
    if dilation > 0:
        boxes = _dilate(boxes, dilation)
    limits = boxes.new_tensor([width, height, width, height])
    x0, y0, x1, y1 = torch.minimum(boxes.clamp_min(0), limits).unbind(-1)  # each (B, K)
    rows = _inside_1d(y0, y1, height) * valid[..., None].to(torch.float32)  # (B, K, H)
    cols = _inside_1d(x0, x1, width)  # (B, K, W)
    # Σ_k rows[k]ᵀ cols[k] counts the boxes covering each pixel; the union is where the count is > 0.
    return torch.bmm(rows.transpose(1, 2), cols) > 0.5  # (B, H, W)
