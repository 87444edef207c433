"""What a zip or server folder holds, found as a person would: a VOC tree (`Annotations/`), one COCO JSON with its
images, or class folders (`<class>/*`, `<split>/<class>/*`); `groups.csv` and `boxes.csv` are found by name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from services.own_data import CocoImport, FolderImport, ImportSource, VocImport
from store.io.folder import SPLITS

IGNORED_PARTS = ("__MACOSX",)  # macOS resource forks: not images, and not a class
IGNORED_NAMES = (".DS_Store", "Thumbs.db")
GROUPS_NAME, BOXES_NAME = "groups.csv", "boxes.csv"
TASKS = ("auto", "single_label", "multi_label")
LAYOUTS = ("class folders", "VOC", "COCO")
MAX_LISTED = 5  # files named in a "several groups.csv" refusal


@dataclass(frozen=True)
class ImportOptions:
    """What the Import panel asks besides the data: the task (`auto`: single-label for class folders,
    multi-label for VOC/COCO), the split of a flat class-folder layout, and CSVs uploaded beside the data
    (they win over a `groups.csv`/`boxes.csv` found in it)."""

    task: str = "auto"
    val_fraction: float | None = None
    test_fraction: float | None = None
    seed: int = 0
    groups_csv: Path | None = None
    boxes_csv: Path | None = None


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in IGNORED_PARTS)


def data_root(folder: Path) -> Path:
    """`folder`, or the one folder it wraps (a zip of `photos/` holds `photos/<class>/...`)."""
    root = folder
    for _ in range(4):
        entries = [p for p in _visible(root) if p.name not in (GROUPS_NAME, BOXES_NAME)]
        if len(entries) != 1 or not entries[0].is_dir() or (entries[0] / "Annotations").is_dir():
            break
        root = entries[0]
    return root


def _found_csv(folder: Path, name: str) -> Path | None:
    found = sorted(p for p in folder.rglob(name) if p.is_file() and not any(q in IGNORED_PARTS for q in p.parts))
    if len(found) > 1:
        listed = ", ".join(p.relative_to(folder).as_posix() for p in found[:MAX_LISTED])
        more = f" and {len(found) - MAX_LISTED:,} more" if len(found) > MAX_LISTED else ""
        raise ValueError(f"several {name} files ({listed}{more}); keep one, or upload the one to use")
    return found[0] if found else None


def _coco_images(json_path: Path) -> Path:
    """The folder a COCO JSON's `file_name`s are relative to: beside the JSON, or one folder below it."""
    beside = json_path.parent
    try:
        first = json.loads(json_path.read_bytes())["images"][0]["file_name"]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return beside  # parse_coco names what is wrong with the file
    if not isinstance(first, str) or (beside / first).is_file():
        return beside
    below = [d for d in _visible(beside) if d.is_dir() and (d / first).is_file()]
    return below[0] if len(below) == 1 else beside


def _task(layout: str, task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task {task!r}: choose one of {', '.join(TASKS)}")
    if layout == "class folders":
        if task == "multi_label":
            raise ValueError("class folders give each image one class (single-label); choose task auto or "
                             "single_label, or import VOC/COCO for several labels per image")
        return "single_label"
    return "multi_label" if task == "auto" else task


def find_source(folder: Path, options: ImportOptions) -> tuple[str, Path, ImportSource, list[str]]:
    """`(layout, data root, import source, notes)` for what `folder` holds; ValueError saying what was expected."""
    root = data_root(folder)
    notes = []
    csvs = {}
    for name, uploaded in ((GROUPS_NAME, options.groups_csv), (BOXES_NAME, options.boxes_csv)):
        found = _found_csv(root, name)
        if uploaded is not None and found is not None:
            notes.append(f"used the uploaded {uploaded.name}, not {found.relative_to(root).as_posix()} in the data")
        elif found is not None:
            notes.append(f"using {found.relative_to(root).as_posix()} found in the data")
        csvs[name] = uploaded or found
    voc = [p for pattern in ("Annotations", "*/Annotations", "*/*/Annotations") for p in root.glob(pattern)
           if p.is_dir()]  # parse_voc finds the one VOC folder (or names them all)
    jsons = [p for p in _visible(root) if p.suffix.lower() == ".json" and p.is_file()]
    if voc or jsons:
        layout = "VOC" if voc else "COCO"
        if csvs[BOXES_NAME] is not None:
            raise ValueError(f"a boxes CSV goes with class folders; {layout} carries its boxes in its annotations")
        task = _task(layout, options.task)
        if voc:
            return layout, root, VocImport(root, groups_csv=csvs[GROUPS_NAME], task=task), notes
        if len(jsons) > 1:
            raise ValueError(f"several JSON files ({', '.join(p.name for p in jsons)}): keep the one COCO file")
        images = _coco_images(jsons[0])
        notes.append(f"COCO {jsons[0].name}, images in {images.relative_to(root).as_posix() or '.'}/; every "
                     "image goes to the train split")
        return layout, root, CocoImport(jsons[0], images, groups_csv=csvs[GROUPS_NAME], task=task), notes
    _task("class folders", options.task)
    val, test = options.val_fraction, options.test_fraction
    own = {p.name for p in _visible(root) if p.is_dir()}
    if own and own <= set(SPLITS):  # <split>/<class>/*: its own split folders win; fractions carve the others
        val, test = (None if "val" in own else val), (None if "test" in own else test)
        kept = sorted(own & {"val", "test"})
        if kept:
            notes.append(f"kept the data's own {' and '.join(f'{s}/' for s in kept)} split")
    source = FolderImport(root, groups_csv=csvs[GROUPS_NAME], boxes_csv=csvs[BOXES_NAME], val_fraction=val,
                          test_fraction=test, seed=options.seed)
    return "class folders", root, source, notes


__all__ = ["BOXES_NAME", "GROUPS_NAME", "IGNORED_NAMES", "IGNORED_PARTS", "LAYOUTS", "TASKS", "ImportOptions",
           "data_root", "find_source"]
