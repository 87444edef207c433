"""Parse a Pascal VOC year folder (`JPEGImages/`, `Annotations/*.xml`, `ImageSets/Main/*.txt`).

VOC pixel indices are 1-based and inclusive; they are stored as continuous coordinates:
`x0 = xmin - 1, x1 = xmax` (the exporter writes the inverse).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from store.io.checks import Confinement, decode_utf8, pixel_coordinate
from store.io.plan import ImportPlan, PlannedBox, PlannedImage, Skipped, round_coord

SPLITS = ("train", "val", "test")
FLAGS = ("difficult", "truncated", "occluded")


def find_voc_root(path: Path) -> Path:
    """`path` itself or the one folder below it (up to VOCdevkit/VOC2012) that has `Annotations/`."""
    if (path / "Annotations").is_dir():
        return path
    found = sorted(p.parent for p in [*path.glob("*/Annotations"), *path.glob("*/*/Annotations")] if p.is_dir())
    if len(found) == 1:
        return found[0]
    if not found:
        raise ValueError(f"{path} is not a VOC folder: no Annotations/ in it or below it")
    raise ValueError(f"{path} holds several VOC folders ({', '.join(map(str, found))}); pass one of them")


def _list_id(line: str, known: set[str]) -> str:
    """The image id on a split-list line: the whole line when it names an annotation (ids may hold
    spaces), else the first field of a classification line `id  1` / `id -1`."""
    text = line.strip()
    if text in known:
        return text
    fields = text.split()
    if len(fields) == 2 and fields[1] in ("1", "0", "-1"):
        return fields[0]
    return text


def _read_splits(root: Path, plan: ImportPlan, known: set[str]) -> dict[str, tuple[str, str]] | None:
    """image id -> (split, "file:line") from ImageSets/Main/{train,val,test}.txt; None without lists."""
    lists = [(split, root / "ImageSets" / "Main" / f"{split}.txt") for split in SPLITS]
    if not any(file.is_file() for _, file in lists):
        return None
    splits: dict[str, tuple[str, str]] = {}
    for split, file in lists:
        if not file.is_file():
            continue
        rel = file.relative_to(root).as_posix()
        text = decode_utf8(file.read_bytes(), rel, plan.problems)
        for number, line in enumerate((text or "").splitlines(), start=1):
            if line.strip():
                splits.setdefault(_list_id(line, known), (split, f"{rel}:{number}"))
    return splits


def _number(obj: ET.Element, field: str, where: str, plan: ImportPlan) -> float | None:
    text = obj.findtext(field)
    if text is None or not text.strip():
        plan.problems.append(f"{where}/{field}: missing")
        return None
    return pixel_coordinate(text, f"{where}/{field}:", plan.problems)


def _flags(obj: ET.Element) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for flag in FLAGS:
        text = obj.findtext(flag)
        if text is not None and text.strip():
            attributes[flag] = text.strip() not in ("0", "false", "False")
    return attributes


def _parse_objects(root_el: ET.Element, rel: str, plan: ImportPlan) -> list[PlannedBox] | None:
    boxes, ok = [], True
    for k, obj in enumerate(root_el.iter("object")):
        name = (obj.findtext("name") or "").strip()
        where = f"{rel}: object[{k}]"
        if not name:
            plan.problems.append(f"{where}/name: missing")
            ok = False
            continue
        coords = [_number(obj, f"bndbox/{f}", where, plan) for f in ("xmin", "ymin", "xmax", "ymax")]
        if any(c is None for c in coords):
            ok = False
            continue
        xmin, ymin, xmax, ymax = (float(c) for c in coords)  # type: ignore[arg-type]
        boxes.append(PlannedBox(name, round_coord(xmin - 1), round_coord(ymin - 1), round_coord(xmax),
                                round_coord(ymax), f"{where} ({name})", _flags(obj)))
    return boxes if ok else None


def _image_file(root: Path, root_el: ET.Element, stem: str) -> tuple[Path, str] | None:
    """The image file for an annotation, and the field that named it in messages."""
    name = (root_el.findtext("filename") or "").strip()
    candidates = [(root / "JPEGImages" / name, "filename")] if name else []
    candidates += [(root / "JPEGImages" / f"{stem}{ext}", f"image JPEGImages/{stem}{ext}")
                   for ext in (".jpg", ".jpeg", ".png", ".JPG")]
    return next((c for c in candidates if c[0].is_file()), None)


def parse_voc(path: str | Path, *, allow_outside: bool = False, name_paths: bool = True) -> ImportPlan:
    """Read a VOC folder into a multi-label plan; classes are the object names, sorted.

    An image that resolves (symlinks followed) outside the VOC folder is a problem unless `allow_outside` (its
    message naming where it really is unless `name_paths` is False, see `Confinement`).
    """
    root = find_voc_root(Path(path))
    plan = ImportPlan(task="multi_label", classes=[], images=[], root=root)
    confinement = Confinement(root, allow_outside=allow_outside, name_paths=name_paths)
    xml_files = sorted((root / "Annotations").glob("*.xml"))
    splits = _read_splits(root, plan, {f.stem for f in xml_files})
    for xml_file in xml_files:
        rel, stem = xml_file.relative_to(root).as_posix(), xml_file.stem
        try:
            root_el = ET.parse(xml_file).getroot()
        except ET.ParseError as exc:
            line, column = exc.position
            plan.problems.append(f"{rel}:{line}:{column}: malformed XML ({exc})")
            continue
        boxes = _parse_objects(root_el, rel, plan)
        if boxes is None:
            continue
        if splits is not None and stem not in splits:
            plan.skipped.append(Skipped(rel, "not listed in ImageSets/Main/{train,val,test}.txt"))
            continue
        found = _image_file(root, root_el, stem)
        if found is None:
            plan.skipped.append(Skipped(rel, f"no image for it in JPEGImages/ (looked for {stem}.*)"))
            continue
        file, field = found
        refusal = confinement.refusal(file)
        if refusal is not None:
            plan.problems.append(f"{rel}: {field}: {refusal}")
            continue
        split = splits[stem][0] if splits is not None else "train"
        labels = sorted({box.label for box in boxes})
        plan.images.append(PlannedImage(file=file, split=split, labels=labels, boxes=boxes))
    seen = {f.stem for f in xml_files}
    for image_id, (_, where) in sorted((splits or {}).items()):
        if image_id not in seen:
            plan.skipped.append(Skipped(where, f"unknown file {image_id!r}: no Annotations/{image_id}.xml"))
    plan.classes = sorted({label for image in plan.images for label in image.labels})
    return plan
