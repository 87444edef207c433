"""What an importer produces before touching the database: planned images, skips, summaries."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from common.images import upright_size
from store.io.report import Capped, total

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
MAX_IMAGE_PIXELS = 64_000_000  # larger images are refused at import (Pillow only warns up to 179 Mpx)
DECODING_PIXELS = 2 * MAX_IMAGE_PIXELS  # pixels decoded at once by the probing threads (about 0.5 GB as RGBA)
COORD_DECIMALS = 6  # coordinates are rounded to a micro-pixel so x + w - x round-trips exactly


@dataclass
class PlannedBox:
    """A box read from an annotation file; `where` names it in messages."""

    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    where: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlannedImage:
    """An image file with its split, group, image-level labels and boxes."""

    file: Path
    split: str = "train"
    group: str | None = None
    labels: list[str] = field(default_factory=list)
    boxes: list[PlannedBox] = field(default_factory=list)
    sha256: str = ""
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class Skipped:
    """An input item left out, and why."""

    item: str
    reason: str


@dataclass
class ImportPlan:
    """The parsed input. `problems` (malformed files) abort the whole import; `skipped` do not. Both keep their
    first `store.io.report.REPORT_LIMIT` items and count the others (`Capped`), however large the input."""

    task: str
    classes: list[str]
    images: list[PlannedImage]
    skipped: list[Skipped] = field(default_factory=Capped)
    problems: list[str] = field(default_factory=Capped)
    root: Path | None = None  # the data set folder: messages name files relative to it
    keep_unused_classes: bool = False  # COCO: every category is a class, annotated or not
    notes: list[str] = field(default_factory=list)  # how the plan was made (e.g. the split), for the report
    class_origins: dict[str, str] = field(default_factory=dict)  # class -> where it was named (a folder, a field)

    def display(self, file: Path) -> str:
        """`file` as messages show it: relative to the data set folder when under it."""
        if self.root is not None and file.is_relative_to(self.root):
            return file.relative_to(self.root).as_posix()
        return str(file)


@dataclass
class ImportSummary:
    """What an import did (or, on a dry run, would do).

    `split_counts`: split -> class -> images of the import in it (an image counts once per label).
    `image_size`: the project's model input side; `image_size_inferred` when this import created the project
    and chose it from the images (`median_short_side`).
    """

    project: str
    project_created: bool = False
    images_added: int = 0
    images_existing: int = 0
    labels_added: int = 0
    boxes_added: int = 0
    boxes_existing: int = 0
    groups_set: int = 0
    skipped: list[Skipped] = field(default_factory=Capped)
    notes: list[str] = field(default_factory=list)
    split_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    image_size: int = 0
    image_size_inferred: bool = False
    median_short_side: int = 0

    def lines(self) -> list[str]:
        """Human-readable summary lines: totals, splits, image size, notes, then one per skipped item."""
        head = (f"project {self.project}{' (new)' if self.project_created else ''}: "
                f"{self.images_added} images added, {self.images_existing} already present; "
                f"{self.labels_added} labels added; {self.boxes_added} boxes added, "
                f"{self.boxes_existing} already present; {total(self.skipped):,} skipped")
        lines = [head]
        for split in sorted(self.split_counts, key=lambda s: (SPLIT_ORDER.get(s, 9), s)):
            per_class = self.split_counts[split]
            lines.append(f"  {split}: " + ", ".join(f"{name} {n}" for name, n in sorted(per_class.items())))
        if self.groups_set:
            lines.append(f"  groups set on {self.groups_set} images already in the project")
        if self.image_size_inferred:
            lines.append(f"  image size {self.image_size} px (median shorter side {self.median_short_side} px, "
                         f"rounded to a multiple of 32 within [{IMAGE_SIZE_MIN}, {IMAGE_SIZE_INFERRED_MAX}]); "
                         f"change it with `python app.py project set {self.project} --image-size N`")
        elif self.image_size:
            lines.append(f"  image size {self.image_size} px (the project's)")
        lines += [f"  {note}" for note in self.notes]
        lines += [f"  skipped {s.item}: {s.reason}" for s in self.skipped]
        more = self.skipped.more_line() if isinstance(self.skipped, Capped) else None
        return [*lines, f"  {more}"] if more else lines


SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}
IMAGE_SIZE_MIN = 32  # the smallest model input side a project may have
IMAGE_SIZE_MAX = 1024  # ... and the largest (training cost grows with its square)
IMAGE_SIZE_INFERRED_MAX = 224  # an import never picks more: ImageNet backbones were trained at 224 px


def infer_image_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """`(image size, median shorter side)` for images of `(width, height)`: the median shorter side rounded to a
    multiple of 32 and clamped to [IMAGE_SIZE_MIN, IMAGE_SIZE_INFERRED_MAX]; 224 for no images."""
    if not sizes:
        return IMAGE_SIZE_INFERRED_MAX, 0
    shorter = sorted(min(w, h) for w, h in sizes)
    middle = len(shorter) // 2
    median = shorter[middle] if len(shorter) % 2 else (shorter[middle - 1] + shorter[middle]) // 2
    rounded = int(median / 32 + 0.5) * 32
    return max(IMAGE_SIZE_MIN, min(IMAGE_SIZE_INFERRED_MAX, rounded)), median


def round_coord(value: float) -> float:
    """A coordinate as stored by importers."""
    return round(float(value), COORD_DECIMALS)


class _TooLarge(Exception):
    """An image above `MAX_IMAGE_PIXELS`; the message is its size."""


class _PixelBudget:
    """At most `limit` pixels decoded at once by the probing threads (one image at a time always may), so eight
    threads on 64 Mpx images do not hold 2 GB of pixels."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.changed = threading.Condition()

    @contextmanager
    def reserve(self, pixels: int) -> Iterator[None]:
        with self.changed:
            self.changed.wait_for(lambda: self.used == 0 or self.used + pixels <= self.limit)
            self.used += pixels
        try:
            yield
        finally:
            with self.changed:
                self.used -= pixels
                self.changed.notify_all()


_DECODING = _PixelBudget(DECODING_PIXELS)


def _probe(file: Path) -> tuple[str, int, int]:
    with PILImage.open(file) as img:  # lazy: reads the header only
        width, height = img.size
        if width * height > MAX_IMAGE_PIXELS:
            raise _TooLarge(f"{width}x{height} pixels ({width * height / 1e6:.1f} Mpx)")
        img.verify()
    with _DECODING.reserve(width * height), PILImage.open(file) as img:  # again: verify() spends the image
        width, height = upright_size(img)  # as a viewer shows it (EXIF orientation): boxes are drawn there
        # Before decoding: a PNG's eXIf chunk after the pixels would count once they are read, and nowhere else.
        # A JPEG is decoded at 1/8 scale: every byte of its data is still read and entropy-decoded (a truncated
        # file fails the same), in 1/64 of the memory; other formats decode every pixel.
        img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
        img.load()  # a truncated or corrupt file fails here, not in training (issue 24)
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest(), width, height


def _safe_probe(file: Path) -> tuple[str, int, int] | str | _TooLarge:
    try:
        return _probe(file)
    except _TooLarge as exc:
        return exc
    except PILImage.DecompressionBombError as exc:  # above twice Pillow's own limit: far above ours
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        return _TooLarge(f"{int(pixels.group(1)) / 1e6:.1f} Mpx" if pixels else "its size")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        return f"{type(exc).__name__}: {exc}"
    except MemoryError:
        raise
    except Exception as exc:  # a damaged file can trip any decoder (struct.error, IndexError): skip it, never crash
        return f"{type(exc).__name__}: {exc}"


def probe_images(plan: ImportPlan, *, workers: int | None = None) -> None:
    """Fill sha256/width/height of every planned image not probed yet, decoding all of its pixels.

    Unreadable images (a truncated or corrupt file, not an image) move to `plan.skipped`, named by their path in
    the data set; an image above `MAX_IMAGE_PIXELS` is a problem (the import is refused): Pillow only warns below
    179 Mpx, and such an image would exhaust memory later.
    """
    todo = [image for image in plan.images if not image.sha256]
    if not todo:
        return
    workers = workers or min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_safe_probe, [image.file for image in todo]))
    for image, result in zip(todo, results):
        if isinstance(result, _TooLarge):
            plan.problems.append(f"{plan.display(image.file)}: {result} is more than the "
                                 f"{MAX_IMAGE_PIXELS // 1_000_000} Mpx limit; downscale it or remove it from the "
                                 "data set")
        elif isinstance(result, str):
            plan.skipped.append(Skipped(plan.display(image.file), f"unreadable image, truncated or damaged ({result})"))
        else:
            image.sha256, image.width, image.height = result
    plan.images = [image for image in plan.images if image.sha256]


def drop_classes_without_images(plan: ImportPlan) -> None:
    """Leave out (and report) classes none of whose images could be read, unless the plan keeps them all."""
    if plan.keep_unused_classes:
        return
    used = {label for image in plan.images for label in image.labels}
    for name in plan.classes:
        if name not in used:
            plan.skipped.append(Skipped(f"class {name!r}", "none of its images could be read; class not created"))
    plan.classes = [name for name in plan.classes if name in used]


def box_outside(box: PlannedBox, width: int, height: int) -> str | None:
    """Why `box` cannot be kept on a `width` x `height` image (empty, inverted, or leaving it), or None."""
    if box.x1 <= box.x0 or box.y1 <= box.y0:
        return f"empty or inverted box ({box.x0:g}, {box.y0:g}, {box.x1:g}, {box.y1:g})"
    if box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height:
        return f"box ({box.x0:g}, {box.y0:g}, {box.x1:g}, {box.y1:g}) outside the {width}x{height} image"
    return None


def drop_boxes_outside(plan: ImportPlan) -> None:
    """Move boxes that are empty or leave their image to `plan.skipped` (touching the border is fine)."""
    for image in plan.images:
        kept = []
        for box in image.boxes:
            reason = box_outside(box, image.width, image.height)
            if reason is None:
                kept.append(box)
            else:
                plan.skipped.append(Skipped(box.where, reason))
        image.boxes = kept


def to_single_label(plan: ImportPlan) -> None:
    """Make a box-annotated plan single-label: an image's class is the one label of its boxes.

    An image whose boxes carry several labels is a problem naming it; an image without boxes keeps no label
    (it is only imported when the project already has it, see `store.io.apply`).
    """
    plan.task = "single_label"
    for image in plan.images:
        labels = sorted({box.label for box in image.boxes})
        if len(labels) > 1:
            plan.problems.append(f"{plan.display(image.file)}: its boxes carry {len(labels)} classes "
                                 f"({', '.join(labels)}); a single-label project needs one class per image: fix the "
                                 "boxes, or import without --task single_label (multi-label)")
        image.labels = labels[:1]
