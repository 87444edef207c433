"""The shortcut benchmark suite (issues 13, 22): five deterministic synthetic sets, each with a planted cue.

The demo (:mod:`core.data.synthetic`) shows one kind of shortcut: a colour-defined object with a colour badge.
A recipe tuned on it learns that set, so the suite adds four other kinds of object and cue (``mark``'s cue moves:
no fixed region can be erased to remove it):

| name | classes | object (the true feature) | cue (the shortcut) |
|---|---|---|---|
| ``demo`` | warm, cool | colour family of a shape | green/magenta badge, top-left |
| ``shape`` | circle, square | outline: circle vs rotated square, any colour | yellow/blue 12 px square, bottom-right |
| ``texture`` | stripes, dots | fill pattern of a blob, random colour | background: "land" (olive) vs "water" (blue) |
| ``multilabel`` | stripes, dots, checks | 1–2 textured blobs, several labels per image | one badge per class, top row |
| ``mark`` | circle, square | as ``shape`` | yellow/blue thin bar, random place along a random edge (a ruler, ink) |

Every set: 64×64 RGB; train 2,000 images with the cue agreeing with the class on 95% of them (per class);
val 400 and test 800 with the cue lying on half the images; a tight object box for every object (ground truth
on val/test, 10% of train flagged ``imported_box`` as the user-style boxes); groups ``<class>/cue-<class the cue
suggests>`` (single-label) or ``cue-agrees``/``cue-lies`` (multi-label: on a lying image every badge is flipped,
so a shortcut model predicts exactly the absent classes). ``train_aligned=0.5`` makes the cue carry no information:
the learnability check ("is the object alone learnable?") trains on that.

Each image depends only on (benchmark, seed, split, index), so regenerating gives byte-identical PNGs; a
directory whose manifest has the same version and config is left alone. The demo entry delegates to
:func:`core.data.synthetic.generate_demo_dataset` (unchanged) and maps this config onto its own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from common import write_json_atomically
from core.data.records import ImageRecord
from core.data.split_sizes import SPLITS, SplitSizes
from core.data.synthetic import GROUPS as DEMO_GROUPS
from core.data.synthetic import SyntheticConfig, demo_records, generate_demo_dataset
from core.data.synthetic_draw import _background, _hsv_to_rgb, _smooth_noise

__all__ = [
    "BENCHMARKS",
    "SHORTCUTS_VERSION",
    "Benchmark",
    "ShortcutConfig",
    "aligned_groups",
    "generate_shortcut_dataset",
    "shortcut_records",
]

log = logging.getLogger(__name__)

SHORTCUTS_VERSION = 2  # 2: the texture benchmark's blob is fainter and smaller (v1's baseline ignored the cue)
MANIFEST_NAME = "manifest.json"
Rendered = tuple[np.ndarray, list[tuple[tuple[int, int, int, int], int]]]  # pixels, [(box, class)]


@dataclass(frozen=True)
class ShortcutConfig(SplitSizes):
    """Sizes and proportions of one benchmark's data set; every field is recorded in the manifest."""

    eval_aligned: float = 0.5  # the same on val and test
    imported_fraction: float = 0.10  # train images whose boxes a new project has

    def __post_init__(self) -> None:
        for split in SPLITS:
            if getattr(self, f"{split}_size") % 2 or getattr(self, f"{split}_size") < 2:
                raise ValueError(f"{split}_size must be even and at least 2")
        for name in ("train_aligned", "eval_aligned", "imported_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]")
        if self.image_size != 64:
            raise ValueError("the suite's geometry is drawn for 64×64 images; image_size must be 64")


@dataclass(frozen=True)
class Benchmark:
    """One shortcut benchmark: its label space, groups and what it tests."""

    name: str
    classes: tuple[str, ...]
    groups: tuple[str, ...]
    multi_label: bool
    object_kind: str
    cue_kind: str


# ---------------------------------------------------------------------------------------------------- drawing


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    coords = np.arange(size) + 0.5
    return np.meshgrid(coords, coords)  # x (columns), y (rows)


def _blob_mask(rng: np.random.Generator, size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    """An irregular rounded blob (a disc with a random low-frequency radial wobble) inside ``radius``."""
    x, y = _grid(size)
    angle = np.arctan2(y - cy, x - cx)
    wobble = sum(rng.uniform(0.0, 0.12) * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in (2, 3))
    return np.hypot(x - cx, y - cy) <= radius * (0.85 + wobble)


def _texture(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """``(size, size)`` float in {0, 1}: 1 where the pattern's dark ink is. Random angle, period and phase."""
    x, y = _grid(size)
    angle = rng.uniform(0.0, np.pi)
    u = np.cos(angle) * x + np.sin(angle) * y
    v = -np.sin(angle) * x + np.cos(angle) * y
    period = rng.uniform(4.5, 6.0)
    phase_u, phase_v = rng.uniform(0.0, period, size=2)
    fu, fv = ((u + phase_u) / period) % 1.0, ((v + phase_v) / period) % 1.0
    if kind == "stripes":
        return (fu < 0.45).astype(float)
    if kind == "dots":
        return (np.hypot(fu - 0.5, fv - 0.5) * period <= 1.5).astype(float)
    if kind == "checks":
        return ((fu < 0.5) ^ (fv < 0.5)).astype(float)
    raise ValueError(f"unknown texture {kind!r}")


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    """A random colour of any hue, medium saturation and value: carries no class information."""
    return _hsv_to_rgb(rng.uniform(0.0, 360.0), rng.uniform(0.25, 0.55), rng.uniform(0.65, 0.9))


def _textured_object(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, kind: str,
                     depth: float = 0.65) -> np.ndarray:
    """Paint ``mask`` with a two-tone ``kind`` pattern in a random colour (ink darker by ``depth`` of its value)."""
    colour = _muted_colour(rng)
    ink = _texture(rng, image.shape[0], kind)[:, :, None]
    fill = colour * (1.0 - depth * ink)
    return np.where(mask[:, :, None], fill, image)


def _finish(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    image = image + rng.normal(0.0, 0.02, size=image.shape)  # sensor noise everywhere
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


SHAPE_CUE_REGION = (50, 50, 62, 62)  # bottom-right 12 px square (x0, y0, x1, y1), end-exclusive
SHAPE_CUE_COLOURS = ((0.95, 0.8, 0.1), (0.1, 0.55, 0.95))  # yellow suggests "circle", blue "square"


def _render_shape(rng: np.random.Generator, labels: tuple[int, ...], cues: tuple[int, ...], size: int) -> Rendered:
    """Circle (0) or square (1), random colour, size and rotation; a coloured corner square as the cue."""
    image = _background(rng, size)
    x0, y0, x1, y1 = SHAPE_CUE_REGION
    radius = rng.uniform(10.0, 15.0)
    while True:  # keep the object's bounding square 3 px away from the cue square
        cx, cy = rng.uniform(radius + 1.0, size - 1.0 - radius, size=2)
        if cx + radius <= x0 - 3 or cy + radius <= y0 - 3:
            break
    image, mask = _paint_shape(rng, image, labels[0], cx, cy, radius)
    if cues:
        image[y0:y1, x0:x1] = SHAPE_CUE_COLOURS[cues[0]]
    return _finish(image, rng), [(_tight_box(mask), labels[0])]


def _paint_shape(rng: np.random.Generator, image: np.ndarray, label: int, cx: float, cy: float,
                 radius: float) -> tuple[np.ndarray, np.ndarray]:
    """A circle (0) or a randomly rotated square (1) of about the same area, in a random muted colour."""
    x, y = _grid(image.shape[0])
    if label == 0:
        mask = np.hypot(x - cx, y - cy) <= radius * 0.85  # about the area of the square below
    else:
        angle = rng.uniform(0.0, np.pi / 2)
        u = np.cos(angle) * (x - cx) + np.sin(angle) * (y - cy)
        v = -np.sin(angle) * (x - cx) + np.cos(angle) * (y - cy)
        mask = np.maximum(np.abs(u), np.abs(v)) <= radius * 0.7
    colour = _muted_colour(rng)
    shading = 1.0 + 0.2 * (_smooth_noise(rng, image.shape[0], 2, 1) - 0.5)
    return np.where(mask[:, :, None], colour * shading, image), mask


MARK_MARGIN = 6  # the edge band the moving mark lies in; objects stay inside it
MARK_THICKNESS = 3


def _render_mark(rng: np.random.Generator, labels: tuple[int, ...], cues: tuple[int, ...], size: int) -> Rendered:
    """The shape benchmark's circle (0) or square (1), with a cue that moves: a thin bar (3 px, 14-24 px long,
    yellow suggests "circle", blue "square") at a random place along a random edge, like a ruler or an ink mark."""
    image = _background(rng, size)
    radius = rng.uniform(10.0, 15.0)
    cx, cy = rng.uniform(MARK_MARGIN + radius + 1.0, size - MARK_MARGIN - 1.0 - radius, size=2)
    image, mask = _paint_shape(rng, image, labels[0], cx, cy, radius)
    edge = int(rng.integers(4))  # top, bottom, left, right
    length = int(rng.integers(14, 25))
    start = int(rng.integers(2, size - 2 - length))
    offset = int(rng.integers(1, MARK_MARGIN - MARK_THICKNESS + 1))  # inside the band, off the very border
    across = (offset, offset + MARK_THICKNESS) if edge in (0, 2) else (size - offset - MARK_THICKNESS, size - offset)
    along = (start, start + length)
    if cues:
        rows, cols = (across, along) if edge < 2 else (along, across)
        image[rows[0]:rows[1], cols[0]:cols[1]] = SHAPE_CUE_COLOURS[cues[0]]
    return _finish(image, rng), [(_tight_box(mask), labels[0])]


# Background cue: "land" (olive, suggests stripes) and "water" (blue, suggests dots); both textured.
TEXTURE_BACKGROUNDS = ((0.45, 0.42, 0.22), (0.2, 0.38, 0.55))
TEXTURE_CLASSES = ("stripes", "dots", "checks")


def _render_texture(rng: np.random.Generator, labels: tuple[int, ...], cues: tuple[int, ...], size: int) -> Rendered:
    """A stripes (0) or dots (1) blob, random colour, on a land or water background (the cue)."""
    base = np.asarray(TEXTURE_BACKGROUNDS[cues[0]]) if cues else np.full(3, rng.uniform(0.3, 0.6))
    image = base + 0.18 * (_smooth_noise(rng, size, 5, 1) - 0.5) + 0.06 * (_smooth_noise(rng, size, 4, 3) - 0.5)
    # Faint and small (v2): with v1's blob (radius 13-19, ink 65%) the texture was easier than the background and
    # the plain baseline did not take the shortcut (test worst group 0.93); Waterbirds' bird is the harder feature.
    radius = rng.uniform(10.0, 14.0)
    cx, cy = rng.uniform(radius + 1.0, size - 1.0 - radius, size=2)
    mask = _blob_mask(rng, size, cx, cy, radius)
    image = _textured_object(rng, image, mask, TEXTURE_CLASSES[labels[0]], depth=0.3)
    return _finish(image, rng), [(_tight_box(mask), labels[0])]


MULTI_CUE_COLOURS = ((0.1, 0.8, 0.1), (0.85, 0.1, 0.85), (0.95, 0.8, 0.1))  # green, magenta, yellow
MULTI_CUE_SIZE = 10
MULTI_TOP = 15  # objects stay below this row (the badges' row)


def _multi_badge(k: int) -> tuple[int, int, int, int]:
    x0 = 2 + k * (MULTI_CUE_SIZE + 4)
    return (x0, 2, x0 + MULTI_CUE_SIZE, 2 + MULTI_CUE_SIZE)


def _render_multi(rng: np.random.Generator, labels: tuple[int, ...], cues: tuple[int, ...], size: int) -> Rendered:
    """One textured blob per label (stripes, dots, checks) below a row of per-class badges (the cues)."""
    image = _background(rng, size)
    placed: list[tuple[float, float, float]] = []
    out = []
    for label in labels:
        for _ in range(10_000):
            radius = rng.uniform(9.0, 12.0)
            cx = rng.uniform(radius + 1.0, size - 1.0 - radius)
            cy = rng.uniform(MULTI_TOP + radius, size - 1.0 - radius)
            if all(np.hypot(cx - px, cy - py) >= radius + pr + 2 for px, py, pr in placed):
                break
        else:
            raise ValueError("no room for another object")
        placed.append((cx, cy, radius))
        mask = _blob_mask(rng, size, cx, cy, radius)
        image = _textured_object(rng, image, mask, TEXTURE_CLASSES[label])
        out.append((_tight_box(mask), label))
    for k in cues:
        x0, y0, x1, y1 = _multi_badge(k)
        image[y0:y1, x0:x1] = 0.95
        image[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] = MULTI_CUE_COLOURS[k]
    return _finish(image, rng), out


# ---------------------------------------------------------------------------------------------------- planning


def _single_groups(classes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{classes[label]}/cue-{classes[cue]}" for label in range(2) for cue in range(2))


BENCHMARKS: dict[str, Benchmark] = {
    "demo": Benchmark("demo", ("warm", "cool"), DEMO_GROUPS, False, "colour", "corner badge (colour)"),
    "shape": Benchmark("shape", ("circle", "square"), _single_groups(("circle", "square")), False, "shape",
                       "corner square (colour)"),
    "texture": Benchmark("texture", ("stripes", "dots"), _single_groups(("stripes", "dots")), False, "texture",
                         "background (colour)"),
    "multilabel": Benchmark("multilabel", TEXTURE_CLASSES, ("cue-agrees", "cue-lies"), True, "texture, 1-2 objects",
                            "one badge per class (colour)"),
    "mark": Benchmark("mark", ("circle", "square"), _single_groups(("circle", "square")), False, "shape",
                      "a thin bar anywhere along any edge (colour): a moving mark"),
}
_RENDERERS: dict[str, Callable[[np.random.Generator, tuple[int, ...], tuple[int, ...], int], Rendered]] = {
    "shape": _render_shape,
    "texture": _render_texture,
    "multilabel": _render_multi,
    "mark": _render_mark,
}


def _plan_split(name: str, config: ShortcutConfig, split_index: int) -> list[dict[str, Any]]:
    """Labels, cues, group and imported-box flag of every image of one split (deterministic)."""
    split = SPLITS[split_index]
    size = getattr(config, f"{split}_size")
    share = config.train_aligned if split == "train" else config.eval_aligned
    rng = np.random.default_rng([config.seed, 1000 + split_index, len(name)])
    rows: list[dict[str, Any]] = []
    if BENCHMARKS[name].multi_label:
        n = len(BENCHMARKS[name].classes)
        aligned_flags = np.arange(size) < round(size * share)
        for aligned in aligned_flags:
            count = 1 + int(rng.random() < 0.5)
            labels = tuple(sorted(int(c) for c in rng.choice(n, size=count, replace=False)))
            cues = labels if aligned else tuple(k for k in range(n) if k not in labels)
            rows.append({"labels": labels, "cues": cues, "group": 0 if aligned else 1})
        imported = rng.permutation(size)[: int(size * config.imported_fraction + 1e-9)]
    else:
        per_class = size // 2
        aligned_count = round(per_class * share)
        for label in range(2):
            for i in range(per_class):
                cue = label if i < aligned_count else 1 - label
                rows.append({"labels": (label,), "cues": (cue,), "group": 2 * label + cue})
        imported = np.concatenate([c * per_class + rng.permutation(per_class)[: int(per_class *
                                   config.imported_fraction + 1e-9)] for c in range(2)])  # stratified by class
    flags = np.zeros(len(rows), dtype=bool)
    if split == "train":
        flags[imported] = True
    for row, flag in zip(rows, flags):
        row["imported_box"] = bool(flag)
    order = rng.permutation(len(rows))  # interleave classes and groups
    return [rows[i] for i in order]


def _header(name: str, config: ShortcutConfig) -> dict[str, Any]:
    return json.loads(json.dumps({"format": 1, "generator": f"guidance-studio shortcut suite: {name}",
                                  "version": SHORTCUTS_VERSION, "benchmark": name, "config": asdict(config)}))


def _is_current(directory: Path, name: str, config: ShortcutConfig) -> bool:
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if any(manifest.get(key) != value for key, value in _header(name, config).items()):
        return False
    return all((directory / entry["file"]).is_file() for entry in manifest["images"])


def _demo_config(config: ShortcutConfig) -> SyntheticConfig:
    sizes = {f.name: getattr(config, f.name) for f in fields(SplitSizes)}
    return SyntheticConfig(**sizes, val_aligned=config.eval_aligned, test_aligned=config.eval_aligned,
                           imported_fraction=config.imported_fraction)


def generate_shortcut_dataset(name: str, directory: str | Path, config: ShortcutConfig | None = None) -> Path:
    """Write benchmark ``name`` into ``directory`` unless it is already there; returns the manifest path.

    Idempotent like the demo: a matching manifest leaves the directory untouched; otherwise every image is
    (re)written and the manifest replaced last, atomically.
    """
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    config = config or ShortcutConfig()
    directory = Path(directory)
    if name == "demo":
        return generate_demo_dataset(directory, _demo_config(config))
    manifest_path = directory / MANIFEST_NAME
    if _is_current(directory, name, config):
        log.info("%s data set in %s is up to date", name, directory)
        return manifest_path
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)  # an interrupted run must not look complete
    bench = BENCHMARKS[name]
    images = []
    for split_index, split in enumerate(SPLITS):
        (directory / split).mkdir(exist_ok=True)
        for index, row in enumerate(_plan_split(name, config, split_index)):
            rng = np.random.default_rng([config.seed, split_index, index, len(name)])
            pixels, boxes = _RENDERERS[name](rng, row["labels"], row["cues"], config.image_size)
            file = f"{split}/{split}_{index:05d}.png"
            ok, encoded = cv2.imencode(".png", pixels[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 3])
            if not ok:
                raise OSError(f"PNG encoding failed for {file}")
            (directory / file).write_bytes(encoded.tobytes())
            images.append({"file": file, "split": split, "labels": list(row["labels"]), "cues": list(row["cues"]),
                           "group": bench.groups[row["group"]], "aligned": row["group"] in _aligned_indices(bench),
                           "boxes": [list(b) for b, _ in boxes], "box_labels": [c for _, c in boxes],
                           "imported_box": row["imported_box"]})
    manifest = {**_header(name, config), "image_size": config.image_size, "classes": list(bench.classes),
                "groups": list(bench.groups), "multi_label": bench.multi_label, "images": images}
    write_json_atomically(manifest_path, manifest, indent=1)
    log.info("wrote %d %s images to %s in %.1f s", len(images), name, directory, time.perf_counter() - started)
    return manifest_path


def _aligned_indices(bench: Benchmark) -> tuple[int, ...]:
    """Indices of the groups where the cue agrees with the class."""
    if bench.multi_label:
        return (0,)
    return tuple(i for i, g in enumerate(bench.groups) if g.split("/cue-")[0] == g.split("/cue-")[1])


def aligned_groups(name: str) -> tuple[str, ...]:
    """Names of the cue-aligned groups of benchmark ``name``."""
    bench = BENCHMARKS[name]
    return tuple(bench.groups[i] for i in _aligned_indices(bench))


def shortcut_records(name: str, directory: str | Path, split: str | None = None,
                     boxes: Literal["available", "all"] = "available") -> list[ImageRecord]:
    """Records of a generated benchmark, in manifest order (``key`` = position in the manifest).

    ``boxes="available"``: what a new project has (imported boxes on flagged train images, ground truth on
    val/test); ``"all"``: every image's boxes (oracle runs and box-budget sweeps).
    """
    if name == "demo":
        return demo_records(directory, split, boxes)
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
    groups = manifest["groups"]
    records = []
    for key, entry in enumerate(manifest["images"]):
        if split is not None and entry["split"] != split:
            continue
        has_box = boxes == "all" or entry["split"] != "train" or entry["imported_box"]
        records.append(ImageRecord(
            path=directory / entry["file"], labels=tuple(entry["labels"]),
            boxes=tuple(tuple(float(v) for v in b) for b in entry["boxes"]) if has_box else (),
            box_labels=tuple(entry["box_labels"]) if has_box else (), group=groups.index(entry["group"]),
            key=key, width=manifest["image_size"], height=manifest["image_size"]))
    return records

