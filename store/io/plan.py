"""What an importer produces before touching the database: planned images, skips, summaries."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
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
    """The parsed input. `problems` (malformed files) abort the whole import; `skipped` do not."""

    task: str
    classes: list[str]
    images: list[PlannedImage]
    skipped: list[Skipped] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class ImportSummary:
    """What an import did (or, on a dry run, would do)."""

    project: str
    project_created: bool = False
    images_added: int = 0
    images_existing: int = 0
    labels_added: int = 0
    boxes_added: int = 0
    boxes_existing: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary lines, one per skipped item at the end."""
        head = (f"project {self.project}{' (new)' if self.project_created else ''}: "
                f"{self.images_added} images added, {self.images_existing} already present; "
                f"{self.labels_added} labels added; {self.boxes_added} boxes added, "
                f"{self.boxes_existing} already present; {len(self.skipped)} skipped")
        return [head, *(f"  skipped {s.item}: {s.reason}" for s in self.skipped)]


def round_coord(value: float) -> float:
    """A coordinate as stored by importers."""
    return round(float(value), COORD_DECIMALS)


def _probe(file: Path) -> tuple[str, int, int]:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    with PILImage.open(file) as img:  # lazy: reads the header only
        width, height = img.size
        img.verify()
    return digest.hexdigest(), width, height


def probe_images(plan: ImportPlan, *, workers: int | None = None) -> None:
    """Fill sha256/width/height of every planned image; unreadable ones move to `plan.skipped`."""
    workers = workers or min(8, (os.cpu_count() or 2) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_safe_probe, [image.file for image in plan.images]))
    readable = []
    for image, result in zip(plan.images, results):
        if isinstance(result, str):
            plan.skipped.append(Skipped(str(image.file), f"unreadable image ({result})"))
            continue
        image.sha256, image.width, image.height = result
        readable.append(image)
    plan.images = readable


def _safe_probe(file: Path) -> tuple[str, int, int] | str:
    try:
        return _probe(file)
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        return f"{type(exc).__name__}: {exc}"


def drop_boxes_outside(plan: ImportPlan) -> None:
    """Move boxes that are empty or leave their image to `plan.skipped` (touching the border is fine)."""
    for image in plan.images:
        kept = []
        for box in image.boxes:
            if box.x1 <= box.x0 or box.y1 <= box.y0:
                plan.skipped.append(Skipped(box.where, f"empty or inverted box ({box.x0:g}, {box.y0:g}, "
                                                       f"{box.x1:g}, {box.y1:g})"))
            elif box.x0 < 0 or box.y0 < 0 or box.x1 > image.width or box.y1 > image.height:
                plan.skipped.append(Skipped(box.where, f"box ({box.x0:g}, {box.y0:g}, {box.x1:g}, {box.y1:g}) "
                                                       f"outside the {image.width}x{image.height} image"))
            else:
                kept.append(box)
        image.boxes = kept
