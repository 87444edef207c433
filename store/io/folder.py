"""Parse a folder with one sub-folder per class (optionally under train/val/test) into a single-label plan."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from store.io.checks import Confinement, decode_utf8
from store.io.plan import IMAGE_EXTENSIONS, ImportPlan, PlannedImage, Skipped

SPLITS = ("train", "val", "test")


def _class_dirs(root: Path) -> list[tuple[str, Path]]:
    """(split, class dir) pairs: `root/<class>` or `root/<split>/<class>`."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subdirs and all(p.name in SPLITS for p in subdirs):
        return [(split.name, d) for split in subdirs for d in sorted(split.iterdir())
                if d.is_dir() and not d.name.startswith(".")]
    return [("train", d) for d in subdirs]


def _read_groups(csv_path: Path, plan: ImportPlan) -> list[tuple[str, str, str]]:
    """(file name, group, "csv:line") rows; a header naming `file` (or filename/path) and `group` is required."""
    rows: list[tuple[str, str, str]] = []
    text = decode_utf8(csv_path.read_bytes(), csv_path.name, plan.problems)
    if text is None:
        return rows
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        plan.problems.append(f"{csv_path.name}:1: unreadable CSV ({exc}); save it as plain CSV")
        return rows
    file_col = next((header.index(c) for c in ("file", "filename", "file_name", "path") if c in header), None)
    if file_col is None or "group" not in header:
        plan.problems.append(f"{csv_path.name}:1: header must name a 'file' and a 'group' column, got {header}")
        return rows
    group_col = header.index("group")
    try:
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(file_col, group_col) or not row[file_col].strip():
                plan.problems.append(f"{csv_path.name}:{number}: expected {len(header)} fields, got {row[:5]}")
                continue
            rows.append((row[file_col].strip(), row[group_col].strip(), f"{csv_path.name}:{number}"))
    except csv.Error as exc:  # a NUL byte, an unclosed quote running past the field size limit
        plan.problems.append(f"{csv_path.name}:{reader.line_num}: unreadable CSV ({exc}); save it as plain CSV")
    return rows


def _assign_groups(root: Path, csv_path: Path, plan: ImportPlan) -> None:
    by_rel = {image.file.relative_to(root).as_posix(): image for image in plan.images}
    by_name: dict[str, list[PlannedImage]] = {}
    for image in plan.images:
        by_name.setdefault(image.file.name, []).append(image)
    for name, group, where in _read_groups(csv_path, plan):
        matches = [by_rel[name]] if name in by_rel else by_name.get(name, [])
        if not matches:
            plan.skipped.append(Skipped(where, f"unknown file {name!r}: no such image under {root}"))
        elif len(matches) > 1:
            plan.skipped.append(Skipped(where, f"{name!r} matches {len(matches)} images; use the path under {root}"))
        else:
            matches[0].group = group or None


def _class_images(root: Path, confinement: Confinement, plan: ImportPlan) -> None:
    """One planned image per image file; class folders without any are reported, files outside `root` refused."""
    found: dict[str, list[str]] = {}  # class -> its folders that hold no image
    for split, class_dir in _class_dirs(root):
        files = [f for f in sorted(class_dir.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]
        found.setdefault(class_dir.name, [])
        if not files:
            found[class_dir.name].append(f"{class_dir.relative_to(root).as_posix()}/")
        for file in files:
            refusal = confinement.refusal(file)
            if refusal is not None:
                plan.problems.append(f"{plan.display(file)}: {refusal}")
            plan.images.append(PlannedImage(file=file, split=split, labels=[class_dir.name]))
    with_images = {image.labels[0] for image in plan.images}
    for name, empty in sorted(found.items()):
        if name not in with_images:
            plan.skipped.append(Skipped(f"class {name!r}", f"no images in {', '.join(empty)}; class not created"))


def parse_folder(path: str | Path, *, groups_csv: str | Path | None = None, allow_outside: bool = False) -> ImportPlan:
    """Read `path/<class>/<image>` (or `path/<split>/<class>/<image>`); classes sorted by name.

    An image that resolves (symlinks followed) outside `path` is a problem unless `allow_outside`.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    plan = ImportPlan(task="single_label", classes=[], images=[], root=root)
    _class_images(root, Confinement(root, allow_outside=allow_outside), plan)
    if not plan.images:
        raise ValueError(f"{root} has no images in class sub-folders (expected {root}/<class>/<image>)")
    if groups_csv is not None:
        _assign_groups(root, Path(groups_csv), plan)
    plan.classes = sorted({image.labels[0] for image in plan.images})
    return plan
