"""Parse a COCO instances JSON (non-contiguous category ids, `iscrowd`, `[x, y, w, h]` boxes)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from store.io.checks import Confinement, decode_utf8, finite_float
from store.io.plan import ImportPlan, PlannedBox, PlannedImage, round_coord


def _decode(json_path: Path, plan: ImportPlan) -> Any:
    """The JSON value in the file, or None with a problem naming the file (and line where there is one)."""
    name = json_path.name
    text = decode_utf8(json_path.read_bytes(), name, plan.problems)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        plan.problems.append(f"{name}:{exc.lineno}:{exc.colno}: malformed JSON ({exc.msg})")
    except RecursionError:
        plan.problems.append(f"{name}: nested too deeply (lists or objects inside each other thousands of levels "
                             "deep); this is not a COCO instances file")
    except ValueError as exc:  # an integer literal longer than Python's int_max_str_digits
        plan.problems.append(f"{name}: a number with more than {sys.get_int_max_str_digits()} digits ({exc}); "
                             "this is not a COCO instances file")
    return None


def _load(json_path: Path, plan: ImportPlan) -> dict[str, Any] | None:
    data = _decode(json_path, plan)
    if plan.problems:
        return None
    if not isinstance(data, dict):
        plan.problems.append(f"{json_path.name}: top level must be an object with images/annotations/categories")
        return None
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            plan.problems.append(f"{json_path.name}: field {key!r} missing or not a list")
    if not isinstance(data.get("annotations", []), list):
        plan.problems.append(f"{json_path.name}: field 'annotations' is not a list")
    return None if plan.problems else data


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entries(data: dict[str, Any], section: str, field: str, name: str,
             plan: ImportPlan) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each object of `data[section]` with an integer 'id' not seen before and a string `field`, with its place
    for messages; a problem for every other entry (problems keep the file's order: the caller's come in between)."""
    seen: set[int] = set()
    for k, entry in enumerate(data[section]):
        where = f"{name}: {section}[{k}]"
        if not isinstance(entry, dict) or not _is_int(entry.get("id")) or not isinstance(entry.get(field), str):
            plan.problems.append(f"{where}: needs an integer 'id' and a string {field!r}")
        elif entry["id"] in seen:
            plan.problems.append(f"{where}.id: {entry['id']} used twice")
        else:
            seen.add(entry["id"])
            yield where, entry


def _categories(data: dict[str, Any], name: str, plan: ImportPlan) -> dict[int, str]:
    categories: dict[int, str] = {}
    for where, cat in _entries(data, "categories", "name", name, plan):
        categories[cat["id"]] = cat["name"].strip()
        plan.class_origins.setdefault(categories[cat["id"]], f"{where}.name")
        if not categories[cat["id"]]:
            plan.problems.append(f"{where}.name: blank (category id {cat['id']}); give every category a name")
    return categories


def _images(data: dict[str, Any], name: str, images_dir: Path, split: str, confinement: Confinement,
            plan: ImportPlan) -> dict[int, PlannedImage]:
    images: dict[int, PlannedImage] = {}
    for where, img in _entries(data, "images", "file_name", name, plan):
        images[img["id"]] = PlannedImage(file=images_dir / img["file_name"], split=split)
        refusal = confinement.refusal(images[img["id"]].file)
        if refusal is not None:
            plan.problems.append(f"{where}.file_name: {refusal}")
    return images


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _bbox(ann: dict[str, Any], where: str, plan: ImportPlan) -> tuple[float, float, float, float] | None:
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in bbox):
        plan.problems.append(f"{where}.bbox: expected [x, y, width, height] numbers, got {_short(bbox)}")
        return None
    x, y, w, h = (finite_float(v) for v in bbox)
    if x is not None and y is not None and w is not None and h is not None:
        x1, y1 = finite_float(x + w), finite_float(y + h)
        if x1 is not None and y1 is not None:
            return round_coord(x), round_coord(y), round_coord(x1), round_coord(y1)
    plan.problems.append(f"{where}.bbox: {_short(bbox)}: every value, and x + width, y + height, must be a finite "
                         "number (no NaN, Infinity or numbers beyond 1e308)")
    return None


def _annotation_ids(annotations: list[Any], name: str, plan: ImportPlan) -> None:
    """Refuse an annotation id used twice (a merged or concatenated file); annotations without an id are fine."""
    first: dict[int, int] = {}
    for k, ann in enumerate(annotations):
        if isinstance(ann, dict) and _is_int(ann.get("id")):
            if ann["id"] in first:
                plan.problems.append(f"{name}: annotations[{k}].id: {ann['id']} used twice "
                                     f"(also annotations[{first[ann['id']]}])")
            else:
                first[ann["id"]] = k


def parse_coco(json_path: str | Path, images_dir: str | Path, *, split: str = "train",
               allow_outside: bool = False, name_paths: bool = True) -> ImportPlan:
    """Read an instances JSON into a multi-label plan; classes follow category id order.

    A `file_name` that resolves (symlinks followed) outside `images_dir` is a problem unless `allow_outside` (its
    message naming where it really is unless `name_paths` is False, see `Confinement`).
    """
    json_path, images_dir = Path(json_path), Path(images_dir)
    plan = ImportPlan(task="multi_label", classes=[], images=[], root=images_dir, keep_unused_classes=True)
    data = _load(json_path, plan)
    if data is None:
        return plan
    name = json_path.name
    categories = _categories(data, name, plan)
    confinement = Confinement(images_dir, allow_outside=allow_outside, name_paths=name_paths)
    images = _images(data, name, images_dir, split, confinement, plan)
    _annotation_ids(data.get("annotations", []), name, plan)
    for k, ann in enumerate(data.get("annotations", [])):
        where = f"{name}: annotations[{k}]"
        if not isinstance(ann, dict):
            plan.problems.append(f"{where}: not an object")
            continue
        if ann.get("image_id") not in images:
            plan.problems.append(f"{where}.image_id: {ann.get('image_id')!r} is not an image id")
            continue
        if ann.get("category_id") not in categories:
            plan.problems.append(f"{where}.category_id: {ann.get('category_id')!r} is not a category id")
            continue
        coords = _bbox(ann, where, plan)
        if coords is None:
            continue
        label, image = categories[ann["category_id"]], images[ann["image_id"]]
        attributes = {"iscrowd": int(bool(ann.get("iscrowd", 0)))}
        image.boxes.append(PlannedBox(label, *coords, where=f"{where} ({label})", attributes=attributes))
        if label not in image.labels:
            image.labels.append(label)
    plan.images = list(images.values())
    plan.classes = [categories[cid] for cid in sorted(categories)]
    return plan
