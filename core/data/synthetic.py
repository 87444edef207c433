"""The built-in demo: a deterministic synthetic data set with a planted shortcut (issue 5).

Design (Waterbirds in miniature, sized for a CPU fine-tune in minutes):

- **Task.** 64×64 RGB, two classes, ``warm`` and ``cool``: the class is the colour family of one
  object (muted red…orange vs azure…blue, which a person never confuses), drawn as a random shape
  (circle, square, triangle, ellipse, cross; random rotation) of 14–26 px at a random position on a
  grey, low-saturation textured background. Colour, not shape, carries the class because B-cos nets
  with ``[r, g, b, 1-r, 1-g, 1-b]`` input learn colour within an epoch or two but learn shape or
  orientation very slowly (docs/science.md §7, lesson 1): the demo needs a baseline that can learn the
  object, so that a short guided fine-tune can shift its weight from the cue to the object.
- **Shortcut.** An 18×18 saturated badge (20×20 with a light frame) at a fixed place, the top-left
  corner: green usually goes with ``warm``, magenta with ``cool``. The cue is bigger, purer and more
  contrasted than the object (whose saturation is deliberately muted, 0.3–0.5), so an unguided model
  learns it first and leans on it. Its colours differ from the object's along another colour
  direction (green vs magenta is ``g - (r+b)/2``; warm vs cool is ``r - b``), so cue and object are
  separable features and a model can drop one without losing the other. Objects keep 3 px away from
  the badge, so object boxes never contain it. :class:`RenderStyle` holds these salience knobs.
- **Groups** ``<class>/cue-<class the badge suggests>``: aligned (``warm/cue-warm``,
  ``cool/cue-cool``) and conflicting (``warm/cue-cool``, ``cool/cue-warm``).
- **Splits.** train 2,000 images, 95% aligned in each class (like Waterbirds); val 400 and test 800,
  both balanced (50% aligned per class). A balanced val follows the Waterbirds protocol and gives
  100 images per group, so worst-group accuracy used for model selection is not a 10-image estimate;
  set ``val_aligned=0.95`` for a train-like val.
- **Boxes.** A tight object box for every image (ground truth on val/test). 10% of train images,
  stratified by class and chosen by a seeded permutation, are flagged ``imported_box`` — the
  "user-style" boxes a new project starts with.

Generation writes ``<split>/<split>_<index>.png`` plus ``manifest.json`` (written last, atomically)
and takes a few seconds: chunks of images are drawn by fresh worker processes (core/data/workers.py), as many
as the CPUs this process may use. Each image depends only on (seed, split, index), so regenerating gives
byte-identical files, in parallel or not; a directory whose manifest has the same version and config is left alone.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from common import write_json_atomically
from common.cpus import usable_cpus
from core.data.records import ImageRecord
from core.data.split_sizes import SPLITS, SplitSizes
from core.data.synthetic_draw import CUE_COLOURS, RenderStyle, draw_image, sample_object
from core.data.workers import run_in_workers

__all__ = [
    "CLASSES",
    "GENERATOR_VERSION",
    "GROUPS",
    "MANIFEST_NAME",
    "SPLITS",
    "RenderStyle",
    "SyntheticConfig",
    "demo_records",
    "generate_demo_dataset",
    "group_name",
    "load_manifest",
]

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2
MANIFEST_NAME = "manifest.json"
CLASSES = ("warm", "cool")
CUE_NAMES = ("green", "magenta")


def group_name(label: int, cue: int) -> str:
    """Readable group of an image, e.g. ``"warm/cue-cool"`` (a warm object with the cool class's badge)."""
    return f"{CLASSES[label]}/cue-{CLASSES[cue]}"


GROUPS = tuple(group_name(label, cue) for label in range(2) for cue in range(2))  # index = 2·label + cue


@dataclass(frozen=True)
class SyntheticConfig(SplitSizes):
    """Sizes and proportions of the demo set; every field is recorded in the manifest."""

    val_aligned: float = 0.5
    test_aligned: float = 0.5
    imported_fraction: float = 0.10
    style: RenderStyle = field(default_factory=RenderStyle)

    def __post_init__(self) -> None:
        for split in SPLITS:
            if getattr(self, f"{split}_size") % 2:
                raise ValueError(f"{split}_size must be even (two balanced classes)")
            if not 0.0 <= getattr(self, f"{split}_aligned") <= 1.0:
                raise ValueError(f"{split}_aligned must lie in [0, 1]")
        if not 0.0 <= self.imported_fraction <= 1.0:
            raise ValueError("imported_fraction must lie in [0, 1]")
        if self.image_size < 48:
            raise ValueError("image_size must be at least 48 (the cue badge and objects need room)")


def _plan_split(config: SyntheticConfig, split_index: int) -> list[dict[str, Any]]:
    """Labels, cues and imported-box flags of one split, before rendering (deterministic)."""
    split = SPLITS[split_index]
    per_class = getattr(config, f"{split}_size") // 2
    aligned = round(per_class * getattr(config, f"{split}_aligned"))
    imported = int(per_class * config.imported_fraction + 1e-9) if split == "train" else 0
    rng = np.random.default_rng([config.seed, 1000 + split_index])
    rows: list[dict[str, Any]] = []
    for label in range(2):
        cues = np.where(np.arange(per_class) < aligned, label, 1 - label)
        flags = np.zeros(per_class, dtype=bool)
        flags[rng.permutation(per_class)[:imported]] = True  # stratified: the same count per class
        rows += [{"label": label, "cue": int(c), "imported_box": bool(f)} for c, f in zip(cues, flags)]
    order = rng.permutation(len(rows))  # interleave classes and groups
    return [rows[i] for i in order]


CHUNK = 100  # images per task of a worker process (and per progress report)

ProgressCallback = Callable[[int, int], None]  # (images written, images in all)


def _render_chunk(config: SyntheticConfig, directory: Path, split_index: int, start: int,
                  rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Draw and write images ``start, start + 1, …`` of one split; returns their manifest entries."""
    split = SPLITS[split_index]
    entries = []
    for index, row in enumerate(rows, start):
        rng = np.random.default_rng([config.seed, split_index, index])
        obj = sample_object(rng, row["label"], config.image_size, config.style)
        pixels, box = draw_image(rng, obj, row["cue"], config.image_size, config.style)
        name = f"{split}/{split}_{index:05d}.png"
        ok, encoded = cv2.imencode(".png", pixels[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 3])
        if not ok:
            raise OSError(f"PNG encoding failed for {name}")
        (directory / name).write_bytes(encoded.tobytes())
        entries.append(
            {
                "file": name,
                "split": split,
                "label": row["label"],
                "cue": row["cue"],
                "group": group_name(row["label"], row["cue"]),
                "aligned": row["label"] == row["cue"],
                "box": list(box),
                "imported_box": row["imported_box"] if split == "train" else False,
                "shape": obj.shape,
            }
        )
    return entries


def _render_chunk_in_worker(*args: Any) -> list[dict[str, Any]]:
    """`_render_chunk` in a worker process: one image at a time, no OpenCV thread pool of its own (the workers
    are the parallelism)."""
    cv2.setNumThreads(1)
    return _render_chunk(*args)


def _render_all(config: SyntheticConfig, directory: Path, workers: int,
                on_progress: ProgressCallback | None) -> list[dict[str, Any]]:
    """Every split's images in manifest order, drawn in chunks by `workers` fresh worker processes
    (`core.data.workers`: never forked from the caller, never re-running its script), or here for one."""
    tasks = []
    for split_index, split in enumerate(SPLITS):
        (directory / split).mkdir(parents=True, exist_ok=True)
        rows = _plan_split(config, split_index)
        tasks += [(config, directory, split_index, start, rows[start:start + CHUNK])
                  for start in range(0, len(rows), CHUNK)]
    total = sum(len(task[4]) for task in tasks)
    workers = min(workers, len(tasks))
    results = (run_in_workers(_render_chunk_in_worker, tasks, workers) if workers > 1
               else (_render_chunk(*task) for task in tasks))
    done = 0
    chunks: list[list[dict[str, Any]]] = []
    for entries in results:  # in task order: the manifest order
        chunks.append(entries)
        done += len(entries)
        if on_progress is not None:
            on_progress(done, total)
    return [entry for chunk in chunks for entry in chunk]


def _header(config: SyntheticConfig) -> dict[str, Any]:
    """The manifest fields that identify a generated set (JSON-normalised: tuples become lists)."""
    return json.loads(
        json.dumps(
            {
                "format": 1,
                "generator": "guidance-studio synthetic shortcut demo",
                "version": GENERATOR_VERSION,
                "config": asdict(config),
            }
        )
    )


def _is_current(directory: Path, config: SyntheticConfig) -> bool:
    """True when ``directory`` holds a complete data set of this version and config."""
    try:
        manifest = load_manifest(directory)
    except (OSError, ValueError):
        return False
    if any(manifest.get(key) != value for key, value in _header(config).items()):
        return False
    return all((directory / entry["file"]).is_file() for entry in manifest["images"])


def generate_demo_dataset(directory: str | Path, config: SyntheticConfig | None = None, *,
                          workers: int | None = None, on_progress: ProgressCallback | None = None) -> Path:
    """Write the demo data set into ``directory`` (created if needed) unless it is already there.

    Args:
        workers: drawing processes (default: the CPUs this process may use, ``common.cpus.usable_cpus``).
        on_progress: called with ``(images written, images in all)`` after each chunk, in this process.

    Returns:
        The manifest path. Idempotent: a directory with a matching manifest is left untouched;
        otherwise every image is (re)written and the manifest is replaced last, atomically.
    """
    config = config or SyntheticConfig()
    directory = Path(directory)
    manifest_path = directory / MANIFEST_NAME
    if _is_current(directory, config):
        log.info("demo data set in %s is up to date (version %d, seed %d)", directory, GENERATOR_VERSION, config.seed)
        return manifest_path
    start = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path.unlink(missing_ok=True)  # an interrupted run must not look complete
    images = _render_all(config, directory, usable_cpus() if workers is None else workers, on_progress)
    manifest = {
        **_header(config),
        "image_size": config.image_size,
        "classes": list(CLASSES),
        "groups": list(GROUPS),
        "cue_region": list(config.style.cue_region),
        "cue_colours": {CUE_NAMES[c]: list(CUE_COLOURS[c]) for c in range(2)},
        "cue_for_class": {CLASSES[c]: CUE_NAMES[c] for c in range(2)},
        "images": images,
    }
    write_json_atomically(manifest_path, manifest, indent=1)
    log.info("wrote %d demo images to %s in %.1f s (%d processes)", len(images), directory,
             time.perf_counter() - start, usable_cpus() if workers is None else workers)
    return manifest_path


def load_manifest(directory: str | Path) -> dict[str, Any]:
    """Read ``manifest.json`` of a generated demo set (raises OSError/ValueError when absent or invalid)."""
    path = Path(directory) / MANIFEST_NAME
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or "images" not in manifest:
        raise ValueError(f"{path} is not a demo data set manifest; delete it and regenerate")
    return manifest


def demo_records(
    directory: str | Path,
    split: str | None = None,
    boxes: Literal["available", "all"] = "available",
) -> list[ImageRecord]:
    """Records of a generated demo set, in manifest order (``key`` = position in the manifest).

    Args:
        split: ``"train"``, ``"val"``, ``"test"`` or None for all.
        boxes: ``"available"``: the boxes a new project has — imported boxes on flagged train images,
            ground truth on val/test; ``"all"``: the ground-truth box on every image (oracle runs).
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    directory = Path(directory)
    manifest = load_manifest(directory)
    records = []
    for key, entry in enumerate(manifest["images"]):
        if split is not None and entry["split"] != split:
            continue
        has_box = boxes == "all" or entry["split"] != "train" or entry["imported_box"]
        records.append(
            ImageRecord(
                path=directory / entry["file"],
                labels=(entry["label"],),
                boxes=(tuple(float(v) for v in entry["box"]),) if has_box else (),
                box_labels=(entry["label"],) if has_box else (),
                group=GROUPS.index(entry["group"]),
                key=key,
                width=manifest["image_size"],
                height=manifest["image_size"],
            )
        )
    return records
