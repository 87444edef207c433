"""Pixel rendering for the synthetic shortcut demo (see :mod:`core.data.synthetic` for the design).

Everything is plain numpy on a ``(S, S)`` grid with a per-image ``numpy.random.Generator``, so an
image depends only on (seed, split, index) and regenerating it gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CUE_COLOURS",
    "OBJECT_HUES",
    "SHAPES",
    "ObjectSpec",
    "RenderStyle",
    "draw_image",
    "sample_object",
]

SHAPES = ("circle", "square", "triangle", "ellipse", "cross")
# Class → hue range in degrees: 0 "warm" (red … orange), 1 "cool" (azure … blue).
OBJECT_HUES: tuple[tuple[float, float], ...] = ((0.0, 40.0), (200.0, 235.0))
# Cue mark → RGB, indexed by the class the badge suggests: green for "warm", magenta for "cool".
# Green and magenta differ in g - (r + b)/2, a direction orthogonal to the object's warm-vs-cool r - b,
# so a model can drop its cue detector without losing its object detector. Version 1 paired magenta
# with "warm": the magenta detector's red half then also fired on warm objects, so the baseline's
# positive evidence partly sat on the object and its EPG stayed well above the box-area floor. Paired
# this way, green has no red at all, and the baseline's evidence is the badge (bench/RESULTS.md, demo).
CUE_COLOURS: tuple[tuple[float, float, float], ...] = ((0.1, 0.8, 0.1), (0.85, 0.1, 0.85))
_CUE_MARGIN = 3  # objects keep at least this many pixels away from the badge
_RADIUS = (7.0, 13.0)  # object circumradius in pixels: extents ~14–26 px


@dataclass(frozen=True)
class RenderStyle:
    """The salience knobs of the demo: how strong the object's colour and how big the cue badge are.

    The object must be weaker than the cue (so an unguided model prefers the cue) yet plainly
    readable by a person (so the task is solvable from the object alone).
    """

    object_saturation: tuple[float, float] = (0.3, 0.5)
    object_value: tuple[float, float] = (0.6, 0.85)
    cue_size: int = 20

    @property
    def cue_region(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``, end-exclusive: the badge in the top-left corner, 2 px from the edges."""
        return (2, 2, 2 + self.cue_size, 2 + self.cue_size)


@dataclass(frozen=True)
class ObjectSpec:
    """One object: shape, circumradius (px), centre (px), rotation (rad) and HSV colour in [0, 1]."""

    shape: str
    radius: float
    cx: float
    cy: float
    angle: float
    hsv: tuple[float, float, float]


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """One HSV colour (hue in degrees) → ``(3,)`` RGB in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + h / 60.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """Value noise: a random ``(cells+1)²`` grid bilinearly upsampled to ``(size, size, channels)`` in [0, 1]."""
    grid = rng.random((cells + 1, cells + 1, channels))
    t = (np.arange(size) + 0.5) * cells / size
    i = np.minimum(t.astype(np.int64), cells - 1)
    f = (t - i)[:, None, None]
    rows = grid[i] * (1.0 - f) + grid[i + 1] * f  # (size, cells+1, channels)
    f = (t - i)[None, :, None]
    return rows[:, i] * (1.0 - f) + rows[:, i + 1] * f


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Grey, low-saturation textured background: ``(size, size, 3)`` float."""
    level = rng.uniform(0.3, 0.65)
    luminance = 0.16 * (_smooth_noise(rng, size, 4, 1) - 0.5) + 0.08 * (_smooth_noise(rng, size, 8, 1) - 0.5)
    tint = 0.05 * (_smooth_noise(rng, size, 3, 3) - 0.5)
    return level + luminance + tint


def _shape_mask(spec: ObjectSpec, size: int) -> np.ndarray:
    """``(size, size)`` bool mask of the object; every shape lies inside its circumscribed disc."""
    coords = np.arange(size) + 0.5
    dx = (coords[None, :] - spec.cx) / spec.radius
    dy = (coords[:, None] - spec.cy) / spec.radius
    cos, sin = np.cos(spec.angle), np.sin(spec.angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    if spec.shape == "circle":
        return u**2 + v**2 <= 1.0
    if spec.shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.7
    if spec.shape == "ellipse":
        return u**2 + (v / 0.55) ** 2 <= 1.0
    if spec.shape == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 0.95)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 0.95))
    if spec.shape == "triangle":  # inside iff p · (-vertex_k) <= 1/2 for the three unit vertices
        angles = np.pi / 2 + 2 * np.pi * np.arange(3) / 3
        return np.all(-(np.cos(angles)[:, None, None] * u + np.sin(angles)[:, None, None] * v) <= 0.5, axis=0)
    raise ValueError(f"unknown shape {spec.shape!r}; expected one of {SHAPES}")


def _centre_allowed(cx: float, cy: float, radius: float, cue_region: tuple[int, int, int, int]) -> bool:
    """True when the object's bounding square keeps ``_CUE_MARGIN`` pixels away from the cue badge."""
    x0, y0, x1, y1 = cue_region
    return (
        cx - radius >= x1 + _CUE_MARGIN
        or cy - radius >= y1 + _CUE_MARGIN
        or cx + radius <= x0 - _CUE_MARGIN
        or cy + radius <= y0 - _CUE_MARGIN
    )


def sample_object(rng: np.random.Generator, label: int, size: int, style: RenderStyle) -> ObjectSpec:
    """A random object of class ``label``, fully inside the image and away from the cue badge."""
    radius = rng.uniform(*_RADIUS)
    for _ in range(10_000):  # rejection sampling; about a fifth of a 64² image is excluded: ends quickly
        cx, cy = rng.uniform(radius + 1.0, size - 1.0 - radius, size=2)
        if _centre_allowed(cx, cy, radius, style.cue_region):
            break
    else:
        raise ValueError(f"a {size}×{size} image has no room for an object of radius {radius:.1f} beside the "
                         f"cue badge; use a larger image_size (64 or more) or a smaller cue_size")
    low, high = OBJECT_HUES[label]
    hsv = (rng.uniform(low, high), rng.uniform(*style.object_saturation), rng.uniform(*style.object_value))
    return ObjectSpec(SHAPES[rng.integers(len(SHAPES))], radius, cx, cy, rng.uniform(0.0, 2 * np.pi), hsv)


def draw_image(
    rng: np.random.Generator, obj: ObjectSpec, cue: int, size: int, style: RenderStyle
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Render background, cue badge and object.

    Returns:
        ``(size, size, 3)`` uint8 RGB image and the object's tight box ``(x0, y0, x1, y1)``, end-exclusive.
    """
    image = _background(rng, size)
    x0, y0, x1, y1 = style.cue_region
    image[y0:y1, x0:x1] = 0.95  # a thin light frame makes the badge read as a mark, not an object
    image[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] = CUE_COLOURS[cue]
    mask = _shape_mask(obj, size)
    colour = _hsv_to_rgb(*obj.hsv)
    shading = 1.0 + 0.2 * (_smooth_noise(rng, size, 2, 1) - 0.5)  # gentle lighting variation
    image = np.where(mask[:, :, None], colour * shading, image)
    image = image + rng.normal(0.0, 0.02, size=image.shape)  # sensor noise everywhere
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return pixels, box
