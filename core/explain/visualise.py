"""Attribution maps as pictures: one colour convention for every method and layer, its legend, box outlines,
and the B-cos colour explanation.

The convention: a diverging map centred at 0, **red = positive evidence for the explained class, blue =
negative evidence (against it)**, white/transparent = none; the colour saturates at ±`scale` (a high
percentile of |A|, so a few extreme pixels do not wash out the rest). Non-negative methods (GradCAM) use
the red half only. Overlays blend the colour over the image with an opacity proportional to |A| / scale,
so where there is no evidence the image shows through unchanged.

All outputs are ``uint8`` arrays in RGB(A) channel order, ready for an image widget.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "NEGATIVE_RGB",
    "OUTLINE_RGB",
    "POSITIVE_RGB",
    "bcos_colour",
    "colourise",
    "draw_boxes",
    "evidence_scale",
    "legend",
    "note_picture",
    "overlay_heatmap",
]

ArrayLike = NDArray[np.generic] | torch.Tensor
_EPS = 1e-12
POSITIVE_RGB = (214, 39, 40)  # evidence for the class
NEGATIVE_RGB = (31, 119, 180)  # evidence against it
OUTLINE_RGB = (255, 214, 0)  # ground-truth boxes: neither red nor blue
_WHITE = np.array([255.0, 255.0, 255.0])


def _numpy(x: ArrayLike) -> NDArray[np.float64]:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def evidence_scale(attribution: ArrayLike, *, signed: bool, percentile: float = 99.5) -> float:
    """The value at which colours saturate: the `percentile`-th value of |A| (signed) or of A⁺ (non-negative).

    Returns 0.0 for a map without evidence (all zero, or no positive value in a non-negative map).
    """
    a = _numpy(attribution)
    values = np.abs(a) if signed else np.clip(a, 0.0, None)
    return float(np.percentile(values, percentile)) if values.size else 0.0


def _strength(a: NDArray[np.float64], signed: bool, scale: float) -> NDArray[np.float64]:
    """`a / scale` clipped to [-1, 1] (signed) or [0, 1]; all zero when `scale` is 0."""
    if scale <= _EPS:
        return np.zeros_like(a)
    return np.clip(a / scale, -1.0 if signed else 0.0, 1.0)


def _pure(t: NDArray[np.float64]) -> NDArray[np.float64]:
    """The saturated colour of each value's sign: `(…, 3)` RGB float."""
    return np.where(t[..., None] >= 0, np.array(POSITIVE_RGB, float), np.array(NEGATIVE_RGB, float))


def colourise(attribution: ArrayLike, *, signed: bool | None = None, percentile: float = 99.5,
              scale: float | None = None) -> NDArray[np.uint8]:
    """Colour a map: ``attribution (H, W)`` → ``(H, W, 3)`` uint8 RGB on white (red +, blue −).

    Args:
        attribution: ``(H, W)`` numpy array or tensor.
        signed: show negative values in blue; ``None`` picks it when the map has negative values. A
            non-negative map keeps ``A⁺`` only (the red half).
        percentile: colours saturate at this percentile of |A| (see :func:`evidence_scale`).
        scale: the saturation value itself (overrides ``percentile``), e.g. to share one scale across maps.
    """
    a = _numpy(attribution)
    if a.ndim != 2:
        raise ValueError(f"attribution must be (H, W), got shape {a.shape}")
    if signed is None:
        signed = bool((a < 0).any())
    if scale is None:
        scale = evidence_scale(a, signed=signed, percentile=percentile)
    t = _strength(a, signed, scale)[..., None]  # (H, W, 1)
    rgb = _WHITE * (1.0 - np.abs(t)) + _pure(t[..., 0]) * np.abs(t)
    return np.round(rgb).astype(np.uint8)


def _image_uint8(image: ArrayLike) -> NDArray[np.uint8]:
    """``(H, W, 3)`` uint8 or ``(3, H, W)`` float in [0, 1] → ``(H, W, 3)`` uint8."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        return image
    x = _numpy(image)
    if x.ndim == 3 and x.shape[0] == 3 and x.shape[-1] != 3:
        x = x.transpose(1, 2, 0)
    return np.round(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)


def overlay_heatmap(image: ArrayLike, attribution: ArrayLike, *, alpha: float = 0.8, signed: bool | None = None,
                    percentile: float = 99.5, scale: float | None = None, desaturate: float = 0.0
                    ) -> NDArray[np.uint8]:
    """Blend the coloured map over an image: opacity ``alpha · |A| / scale`` (clipped), so no evidence shows
    the image unchanged and saturated evidence shows pure red/blue at opacity ``alpha``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB, or ``(3, H, W)`` float in [0, 1].
        attribution: ``(h, w)``; resized bilinearly to ``(H, W)`` when it differs.
        alpha: opacity of saturated evidence, in [0, 1].
        signed, percentile, scale: as :func:`colourise`.
        desaturate: how far to grey the image first, in [0, 1] (its own reds and blues then cannot pass
            for evidence).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not 0.0 <= desaturate <= 1.0:
        raise ValueError(f"desaturate must be in [0, 1], got {desaturate}")
    rgb = _image_uint8(image).astype(np.float64)
    if desaturate > 0:
        grey = rgb @ np.array([0.299, 0.587, 0.114])
        rgb = rgb * (1.0 - desaturate) + grey[..., None] * desaturate
    a = _numpy(attribution)
    if a.shape != rgb.shape[:2]:
        a = cv2.resize(a, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    if signed is None:
        signed = bool((a < 0).any())
    if scale is None:
        scale = evidence_scale(a, signed=signed, percentile=percentile)
    t = _strength(a, signed, scale)
    weight = alpha * np.abs(t)[..., None]  # (H, W, 1)
    return np.round(rgb * (1.0 - weight) + _pure(t) * weight).astype(np.uint8)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans when the system has it (it draws − and ≥), else Pillow's built-in font."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _number(value: float) -> str:
    return f"{value:.2g}" if value else "0"


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
          width: float) -> list[str]:
    """`text` broken into lines no wider than `width` (at spaces)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def legend(width: int, *, scale: float, signed: bool, explained: str = "the class", note: str = "",
           extra: Sequence[str] = (), keys: tuple[str, str] | None = None, size: int | None = None
           ) -> NDArray[np.uint8]:
    """A legend strip ``(h, width, 3)`` uint8 RGB to put under an overlay drawn with the same convention.

    A colour bar (blue − … 0 … + red for signed maps; 0 … + red for non-negative ones) with its end values
    (±`scale`, where colours saturate), which colour is evidence for `explained` and which against (or the
    two texts `keys` say red and blue mean), then `note` and the `extra` lines (wrapped to the width).
    `size`: font pixels; by default 11, growing with pictures wider than 320 (they are shown scaled down).
    """
    unit = size / 11 if size else max(1.0, width / 320)
    font = _font(round(11 * unit))
    pad, bar_h, line = round(6 * unit), round(10 * unit), round(14 * unit)
    canvas = Image.new("RGB", (width, 1), "white")
    draw = ImageDraw.Draw(canvas)
    red, blue = keys or (f"red: evidence for {explained}", "blue: evidence against it" if signed else
                         "(no negative values in this method)")
    coloured = [(POSITIVE_RGB, red), (NEGATIVE_RGB if signed else (60, 60, 60), blue)]
    texts = [(colour, wrapped) for colour, text in coloured if text
             for wrapped in _wrap(draw, text, font, width - 2 * pad)]
    texts += [((60, 60, 60), wrapped) for text in (note, *extra) if text
              for wrapped in _wrap(draw, text, font, width - 2 * pad)]
    canvas = Image.new("RGB", (width, pad + bar_h + line * (1 + len(texts)) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    x0, x1 = pad, width - pad
    ramp = np.linspace(-1.0 if signed else 0.0, 1.0, max(2, x1 - x0))
    bar = colourise(ramp[None, :], signed=signed, scale=1.0)  # (1, n, 3)
    canvas.paste(Image.fromarray(np.repeat(bar, bar_h, axis=0)), (x0, pad))
    draw.rectangle((x0 - 1, pad - 1, x1, pad + bar_h), outline=(90, 90, 90))
    y = pad + bar_h + 1
    left = f"−{_number(scale)}" if signed else "0"
    draw.text((x0, y), left, fill=NEGATIVE_RGB if signed else (60, 60, 60), font=font)
    right = f"+{_number(scale)}"
    draw.text((x1 - draw.textlength(right, font=font), y), right, fill=POSITIVE_RGB, font=font)
    if signed:
        draw.text(((x0 + x1 - draw.textlength("0", font=font)) / 2, y), "0", fill=(60, 60, 60), font=font)
    for i, (colour, text) in enumerate(texts):
        draw.text((x0, y + line * (i + 1)), text, fill=colour, font=font)
    return np.asarray(canvas, dtype=np.uint8).copy()


def note_picture(text: str, width: int, *, height: int | None = None, grey: bool = False, size: int = 11
                 ) -> NDArray[np.uint8]:
    """`text` wrapped to `width` as ``(h, width, 3)`` uint8 RGB: one strip as tall as the text, or a `height`
    tall panel with the text centred (on light grey with `grey`, e.g. for an empty view that says why).
    `size`: font pixels at widths up to 320 (wider pictures are shown scaled down, so their text grows)."""
    unit = max(1.0, width / 320)
    font, pad, line = _font(round(size * unit)), round(size * unit / 2), round(size * 1.3 * unit)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines = [wrapped for paragraph in text.split("\n") for wrapped in _wrap(draw, paragraph, font, width - 2 * pad)]
    needed = 2 * pad + line * len(lines)
    canvas = Image.new("RGB", (width, max(height or 0, needed)), (236, 236, 236) if grey else "white")
    draw = ImageDraw.Draw(canvas)
    top = (canvas.height - line * len(lines)) // 2 if height else pad
    for i, wrapped in enumerate(lines):
        left = (width - draw.textlength(wrapped, font=font)) / 2 if height else pad
        draw.text((left, top + i * line), wrapped, fill=(40, 40, 40), font=font)
    return np.asarray(canvas, dtype=np.uint8).copy()


def draw_boxes(rgb: NDArray[np.uint8], boxes: Sequence[tuple[float, float, float, float]], labels: Sequence[str],
               *, scale: float = 1.0) -> NDArray[np.uint8]:
    """A copy of ``rgb (H, W, 3)`` with each box ``(x0, y0, x1, y1)`` (in pixels before `scale`) outlined in
    yellow with a dark halo and its label; coordinates are multiplied by `scale`."""
    out = np.ascontiguousarray(rgb.copy())
    thick = max(1, round(max(out.shape[:2]) / 256))
    corners = []
    for x0, y0, x1, y1 in boxes:
        p0 = (round(x0 * scale), round(y0 * scale))
        p1 = (max(p0[0], round(x1 * scale) - 1), max(p0[1], round(y1 * scale) - 1))
        cv2.rectangle(out, p0, p1, (20, 20, 20), thick + 2)
        cv2.rectangle(out, p0, p1, OUTLINE_RGB, thick)
        corners.append(p0)
    if not any(labels):
        return out
    canvas = Image.fromarray(out)
    draw, font = ImageDraw.Draw(canvas), _font(round(11 * thick))
    for (x, y), label in zip(corners, labels):
        top = y - round(14 * thick) if y > round(16 * thick) else y + 2 * thick  # above, or inside at the edge
        draw.text((x + 2 * thick, top), label, fill=OUTLINE_RGB, font=font, stroke_width=max(1, thick),
                  stroke_fill=(20, 20, 20))
    return np.asarray(canvas, dtype=np.uint8).copy()


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
