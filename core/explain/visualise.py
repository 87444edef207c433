"""Attribution maps as pictures: OpenCV heatmap overlays and the B-cos colour explanation.

All outputs are ``uint8`` arrays in RGB(A) channel order, ready for an image widget.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

__all__ = ["bcos_colour", "colourise", "overlay_heatmap"]

ArrayLike = NDArray[np.generic] | torch.Tensor
_EPS = 1e-12


def _numpy(x: ArrayLike) -> NDArray[np.float64]:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _diverging_lut() -> NDArray[np.uint8]:
    """A blue–white–red lookup table ``(256, 1, 3)`` in OpenCV's BGR order (negative → blue)."""
    t = np.linspace(-1.0, 1.0, 256)
    red = np.where(t < 0, 1.0 + t, 1.0)
    blue = np.where(t > 0, 1.0 - t, 1.0)
    green = 1.0 - np.abs(t)
    bgr = np.stack([blue, green, red], axis=-1)[:, None, :]
    return np.round(bgr * 255).astype(np.uint8)


_BWR = _diverging_lut()


def colourise(
    attribution: ArrayLike,
    *,
    signed: bool | None = None,
    percentile: float = 99.5,
    colormap: int = cv2.COLORMAP_JET,
) -> NDArray[np.uint8]:
    """Colour a map: ``attribution (H, W)`` → ``(H, W, 3)`` uint8 RGB.

    Unsigned maps keep ``A⁺`` scaled by its ``percentile``-th value and use ``colormap``; signed maps are scaled
    by the percentile of ``|A|`` and use a blue (negative) – white (zero) – red (positive) diverging map.

    Args:
        attribution: ``(H, W)`` numpy array or tensor.
        signed: diverging colours; ``None`` picks them when the map has negative values.
        percentile: values above this percentile saturate (robust to a few extreme pixels).
        colormap: an OpenCV colour map for unsigned maps.
    """
    a = _numpy(attribution)
    if a.ndim != 2:
        raise ValueError(f"attribution must be (H, W), got shape {a.shape}")
    if signed is None:
        signed = bool((a < 0).any())
    if signed:
        scale = np.percentile(np.abs(a), percentile) + _EPS
        index = np.round((np.clip(a / scale, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
        bgr = cv2.applyColorMap(index, _BWR)
    else:
        positive = np.clip(a, 0.0, None)
        scale = np.percentile(positive, percentile) + _EPS
        index = np.round(np.clip(positive / scale, 0.0, 1.0) * 255).astype(np.uint8)
        bgr = cv2.applyColorMap(index, colormap)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _image_uint8(image: ArrayLike) -> NDArray[np.uint8]:
    """``(H, W, 3)`` uint8 or ``(3, H, W)`` float in [0, 1] → ``(H, W, 3)`` uint8."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        return image
    x = _numpy(image)
    if x.ndim == 3 and x.shape[0] == 3 and x.shape[-1] != 3:
        x = x.transpose(1, 2, 0)
    return np.round(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)


def overlay_heatmap(
    image: ArrayLike,
    attribution: ArrayLike,
    *,
    alpha: float = 0.5,
    signed: bool | None = None,
    percentile: float = 99.5,
    colormap: int = cv2.COLORMAP_JET,
) -> NDArray[np.uint8]:
    """Blend a coloured map over an image.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, or ``(3, H, W)`` float in [0, 1].
        attribution: ``(h, w)``; resized bilinearly to ``(H, W)`` when it differs.
        alpha: weight of the heatmap in the blend, in [0, 1].
        signed, percentile, colormap: as :func:`colourise`.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    rgb = _image_uint8(image)
    a = _numpy(attribution)
    if a.shape != rgb.shape[:2]:
        a = cv2.resize(a, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    heat = colourise(a, signed=signed, percentile=percentile, colormap=colormap)
    return cv2.addWeighted(heat, alpha, rgb, 1.0 - alpha, 0.0)


def bcos_colour(
    weights: ArrayLike, image: ArrayLike, *, smooth: int = 15, percentile: float = 99.5
) -> NDArray[np.uint8]:
    """The B-cos colour explanation (Böhle et al., CVPR 2022) as ``(H, W, 4)`` uint8 RGBA.

    A pixel's colour is the colour its dynamic weights align with: per colour channel, the share of the
    (per-pixel normalised, positive) weight on ``c`` against the weight on ``1 − c``, i.e.
    ``w[:3] / (w[:3] + w[3:])``. Opacity is the weight norm where the pixel's contribution is positive,
    box-smoothed and scaled by its ``percentile``-th value, so only positive evidence is visible.

    Args:
        weights: ``(6, H, W)`` dynamic weights ``W(x)`` on ``[x, 1-x]`` (``BcosExplainer.weights``).
        image: ``(3, H, W)`` in [0, 1] or its encoding ``(6, H, W)``.
        smooth: box-filter size for the opacity (1 disables smoothing).
        percentile: opacity saturates above this percentile.
    """
    w, x = _numpy(weights), _numpy(image)
    if x.ndim == 3 and x.shape[0] == 3:
        x = np.concatenate([x, 1.0 - x], axis=0)
    if w.ndim != 3 or w.shape[0] != 6 or x.shape != w.shape:
        raise ValueError(f"need weights (6, H, W) and image (3 or 6, H, W); got {w.shape} and {x.shape}")
    contribution = (w * x).sum(axis=0)  # (H, W)
    w_pos = np.clip(w / (np.abs(w).max(axis=0, keepdims=True) + _EPS), 0.0, None)
    rgb = w_pos[:3] / (w_pos[:3] + w_pos[3:] + _EPS)  # (3, H, W) in [0, 1]
    opacity = np.where(contribution > 0, np.linalg.norm(w, axis=0), 0.0)
    if smooth > 1:
        opacity = cv2.blur(opacity, (smooth, smooth), borderType=cv2.BORDER_CONSTANT)
    opacity = np.clip(opacity / (np.percentile(opacity, percentile) + _EPS), 0.0, 1.0)
    rgba = np.concatenate([rgb, opacity[None]], axis=0).transpose(1, 2, 0)
    return np.round(rgba * 255).astype(np.uint8)
