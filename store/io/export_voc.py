"""Write a project as a VOC year folder (JPEGImages/, Annotations/, ImageSets/Main/), atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.io.export_coco import ExportSummary
from store.io.export_target import VOC_MARKER, check_voc_target, voc_marker_text
from store.models import Box, Class, Image, Project
from store.paths import resolve_image_path


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(value, 6))


def _annotation_xml(file_name: str, image: tuple[int, str, int, int], boxes: list[tuple]) -> ET.ElementTree:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = file_name
    size = ET.SubElement(root, "size")
    for tag, value in (("width", image[2]), ("height", image[3]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for name, x0, y0, x1, y1, attributes in boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "pose").text = "Unspecified"
        for flag in ("truncated", "difficult", "occluded"):
            if flag in (attributes or {}) or flag != "occluded":
                ET.SubElement(obj, flag).text = "1" if (attributes or {}).get(flag) else "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(bndbox, tag).text = _fmt(value)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def _unique_stems(images: list[tuple[int, str, int, int]]) -> dict[int, str]:
    counts: dict[str, int] = defaultdict(int)
    for _, path, _, _ in images:
        counts[Path(path).stem] += 1
    return {i: Path(p).stem if counts[Path(p).stem] == 1 else f"{Path(p).stem}_{i}" for i, p, _, _ in images}


def _copy(source: Path, target: Path) -> bool:
    if not source.is_file():
        return False
    try:
        os.link(source, target)  # same file system: no copy
    except OSError:
        shutil.copy2(source, target)
    return True


def _replace_dir(tmp: Path, out: Path) -> None:
    """Put `tmp` at `out`; an earlier export there (checked by `check_voc_target`) is removed afterwards."""
    if out.exists():
        backup = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, backup)
        os.replace(tmp, out)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(tmp, out)


def export_voc(session: Session, project: Project, out: str | os.PathLike[str], *, data_dir: str | os.PathLike[str],
               split: str | None = None, force: bool = False) -> ExportSummary:
    """Write `out/` as a VOC year folder with hard-linked (or copied) images and a marker file.

    Never overwrites what it did not write: raises `ExportTargetError` (nothing written) when `out` is a
    file or a non-empty folder other than an earlier VOC export, or is one and `force` is not set.
    """
    out = Path(out)
    check_voc_target(session, out, force=force)
    image_filter = [Image.project_id == project.id] + ([Image.split == split] if split else [])
    images = [tuple(r) for r in session.execute(select(Image.id, Image.path, Image.width, Image.height, Image.split)
                                                .where(*image_filter).order_by(Image.id))]
    boxes: dict[int, list[tuple]] = defaultdict(list)
    rows = session.execute(select(Box.image_id, Class.name, Box.x0, Box.y0, Box.x1, Box.y1, Box.attributes)
                           .join(Class, Class.id == Box.class_id).join(Image, Image.id == Box.image_id)
                           .where(*image_filter, Box.deleted_at.is_(None)).order_by(Box.id))
    for image_id, *box in rows:
        boxes[image_id].append(tuple(box))
    stems = _unique_stems([r[:4] for r in images])  # type: ignore[misc]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
            (tmp / sub).mkdir(parents=True)
        lists: dict[str, list[str]] = defaultdict(list)
        missing = 0
        for image_id, path, width, height, image_split in images:
            file_name = stems[image_id] + Path(path).suffix
            missing += not _copy(resolve_image_path(path, data_dir), tmp / "JPEGImages" / file_name)
            tree = _annotation_xml(file_name, (image_id, path, width, height), boxes.get(image_id, []))
            tree.write(tmp / "Annotations" / f"{stems[image_id]}.xml", encoding="utf-8", xml_declaration=True)
            lists[image_split].append(stems[image_id])
        for list_split, stems_in_split in lists.items():
            (tmp / "ImageSets" / "Main" / f"{list_split}.txt").write_text("\n".join(stems_in_split) + "\n", "utf-8")
        (tmp / VOC_MARKER).write_text(voc_marker_text(project.name), "utf-8")
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    n_classes = len(project.classes)
    return ExportSummary(out, len(images), sum(len(b) for b in boxes.values()), n_classes, missing)
