"""Parse a COCO instances JSON (non-contiguous category ids, `iscrowd`, `[x, y, w, h]` boxes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from store.io.plan import ImportPlan, PlannedBox, PlannedImage, round_coord


def _load(json_path: Path, plan: ImportPlan) -> dict[str, Any] | None:
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        plan.problems.append(f"{json_path.name}:{exc.lineno}:{exc.colno}: malformed JSON ({exc.msg})")
        return None
    except UnicodeDecodeError as exc:
        plan.problems.append(f"{json_path.name}: not UTF-8 text ({exc})")
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


def _categories(data: dict[str, Any], name: str, plan: ImportPlan) -> dict[int, str]:
    categories: dict[int, str] = {}
    for k, cat in enumerate(data["categories"]):
        where = f"{name}: categories[{k}]"
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            plan.problems.append(f"{where}: needs an integer 'id' and a string 'name'")
        elif cat["id"] in categories:
            plan.problems.append(f"{where}.id: {cat['id']} used twice")
        else:
            categories[cat["id"]] = cat["name"].strip()
    return categories


def _images(data: dict[str, Any], name: str, images_dir: Path, split: str,
            plan: ImportPlan) -> dict[int, PlannedImage]:
    images: dict[int, PlannedImage] = {}
    for k, img in enumerate(data["images"]):
        where = f"{name}: images[{k}]"
        if not isinstance(img, dict) or not _is_int(img.get("id")) or not isinstance(img.get("file_name"), str):
            plan.problems.append(f"{where}: needs an integer 'id' and a string 'file_name'")
        elif img["id"] in images:
            plan.problems.append(f"{where}.id: {img['id']} used twice")
        else:
            images[img["id"]] = PlannedImage(file=images_dir / img["file_name"], split=split)
    return images


def _bbox(ann: dict[str, Any], where: str, plan: ImportPlan) -> tuple[float, float, float, float] | None:
    bbox = ann.get("bbox")
    ok = isinstance(bbox, list) and len(bbox) == 4
    if ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox):
        x, y, w, h = (float(v) for v in bbox)
        return round_coord(x), round_coord(y), round_coord(x + w), round_coord(y + h)
    plan.problems.append(f"{where}.bbox: expected [x, y, width, height] numbers, got {bbox!r}")
    return None


def parse_coco(json_path: str | Path, images_dir: str | Path, *, split: str = "train") -> ImportPlan:
    """Read an instances JSON into a multi-label plan; classes follow category id order."""
    json_path, images_dir = Path(json_path), Path(images_dir)
    plan = ImportPlan(task="multi_label", classes=[], images=[])
    data = _load(json_path, plan)
    if data is None:
        return plan
    name = json_path.name
    categories = _categories(data, name, plan)
    images = _images(data, name, images_dir, split, plan)
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
