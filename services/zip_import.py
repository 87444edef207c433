"""Importing an uploaded zip or a server-side folder: safe extraction, finding the layout, then `import_data`.

A zip is checked entry by entry before anything is written (no absolute path, no `..`, no link or device, no
encryption, at most `MAX_ZIP_ENTRIES` entries and `MAX_ZIP_BYTES` uncompressed: a zip bomb is refused from its
directory alone), extracted into a hidden folder under `<data dir>/imports/` and moved to `imports/<name>/` in
one rename. What it holds is found as a person would: a VOC tree (`Annotations/`), one COCO JSON with its
images, or class folders (`<class>/*`, `<split>/<class>/*`); `groups.csv` and `boxes.csv` are found by name.
The import is all-or-nothing (`services.own_data`): when it is refused, the extracted folder is removed, so a
refusal leaves neither rows nor files behind.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import stat
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from services.database import Database
from services.own_data import CocoImport, FolderImport, ImportResult, ImportSource, VocImport, import_data
from services.settings import MAX_UPLOAD_BYTES, Settings
from store.io.folder import SPLITS

log = logging.getLogger(__name__)

MAX_ZIP_BYTES = MAX_UPLOAD_BYTES * 4  # uncompressed: images compress little, so more is a zip bomb
MAX_ZIP_ENTRIES = 200_000
IGNORED_PARTS = ("__MACOSX",)  # macOS resource forks: not images, and not a class
IGNORED_NAMES = (".DS_Store", "Thumbs.db")
GROUPS_NAME, BOXES_NAME = "groups.csv", "boxes.csv"
TASKS = ("auto", "single_label", "multi_label")
LAYOUTS = ("class folders", "VOC", "COCO")
COPY_CHUNK = 1 << 20


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


@dataclass(frozen=True)
class DataImport:
    """An import from a zip or folder: the `ImportResult`, which layout was found where, and the report lines."""

    result: ImportResult
    layout: str
    root: Path
    extracted_to: Path | None
    report: tuple[str, ...]


def _entry_path(info: zipfile.ZipInfo, archive: str) -> PurePosixPath | None:
    """Where an entry goes, relative to the extraction folder; None for entries that are skipped.

    ValueError naming the entry when it is absolute, climbs out, is a link or device, or is encrypted."""
    name = info.filename.replace("\\", "/")  # zips made on Windows by some tools
    where = f"{archive}: entry {info.filename!r}"
    if "\x00" in name:
        raise ValueError(f"{where} has a NUL character in its name")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ValueError(f"{where} is an absolute path; zip the folder's contents with relative paths")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{where} climbs out of the folder ('..'); nothing was extracted")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise ValueError(f"{where} is a symbolic link; zip the files themselves, not links to them")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ValueError(f"{where} is not a plain file or folder (a device or pipe)")
    if info.flag_bits & 0x1:
        raise ValueError(f"{where} is encrypted; make the zip without a password")
    if not parts or any(part in IGNORED_PARTS for part in parts) or parts[-1] in IGNORED_NAMES:
        return None
    return PurePosixPath(*parts)


def check_zip(archive: zipfile.ZipFile, name: str) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The entries to extract (files and folders) with their paths, after every check; ValueError naming the
    first offending entry, or the totals of a zip bomb. Reads only the zip's directory."""
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise ValueError(f"{name} has {len(infos):,} entries, more than the limit of {MAX_ZIP_ENTRIES:,}; "
                         "import the folder from the server instead")
    total = sum(info.file_size for info in infos)
    if total > MAX_ZIP_BYTES:
        raise ValueError(f"{name} expands to {total / 2**30:.1f} GiB, more than the limit of "
                         f"{MAX_ZIP_BYTES / 2**30:.0f} GiB; import the folder from the server instead")
    entries, seen = [], set()
    for info in infos:
        path = _entry_path(info, name)
        if path is None:
            continue
        key = (str(path).lower(), info.is_dir())
        if key in seen and not info.is_dir():
            raise ValueError(f"{name}: entry {info.filename!r} appears twice")
        seen.add(key)
        entries.append((info, path))
    if not any(not info.is_dir() for info, _ in entries):
        raise ValueError(f"{name} holds no files")
    return entries


def _copy_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: list[int]) -> None:
    """Copy one file in chunks, never writing more than the zip declared (a lying header is a zip bomb too)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(info) as source, open(target, "xb") as out:
        while chunk := source.read(COPY_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise ValueError(f"entry {info.filename!r} expands beyond what the zip declares")
            out.write(chunk)


def extract_zip(zip_path: Path, target: Path) -> Path:
    """Extract `zip_path` into the new folder `target` (which must not exist) after `check_zip`; all or nothing:
    it is written under a hidden name beside `target` and renamed at the end. ValueError with what is wrong."""
    name = zip_path.name
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{name} is not a zip file ({exc}); upload a .zip of the folder") from None
    partial = target.parent / f".partial-{uuid.uuid4().hex}"
    with archive:
        entries = check_zip(archive, name)
        needed = sum(info.file_size for info, _ in entries)
        target.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(target.parent).free
        if needed > free:
            raise ValueError(f"{name} needs {needed / 2**20:.0f} MiB, the disk has {free / 2**20:.0f} MiB free")
        budget = [needed]
        try:
            partial.mkdir()
            for info, path in entries:
                destination = partial.joinpath(*path.parts)
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                else:
                    _copy_entry(archive, info, destination, budget)
            partial.rename(target)
        except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if isinstance(exc, ValueError):
                raise ValueError(f"{name}: {exc}; nothing was extracted") from None
            raise ValueError(f"{name} could not be extracted ({exc}); nothing was extracted") from None
    return target


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
        raise ValueError(f"several {name} files ({', '.join(p.relative_to(folder).as_posix() for p in found)}); "
                         f"keep one, or upload the one to use")
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


def _report(result: ImportResult, layout: str, root: Path, notes: list[str], extracted: Path | None) -> tuple:
    lines = [*result.report, f"  layout: {layout} in {root}", *(f"  {note}" for note in notes)]
    if extracted is not None:
        lines.append(f"  the images stay in {extracted} (the project refers to them)")
    return tuple(lines)


def import_folder(db: Database, settings: Settings, folder: Path, options: ImportOptions, *, project: str,
                  author: str = "import") -> DataImport:
    """Import a folder on this server (class folders, VOC or COCO; CSVs found by name or in `options`)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder on the server; give the full path of the data set folder")
    layout, root, source, notes = find_source(folder, options)
    result = import_data(db, settings, source, project=project, author=author)
    return DataImport(result, layout, root, None, _report(result, layout, root, notes, None))


def _target(settings: Settings, project: str) -> Path:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", project).strip("._") or "import"
    imports = settings.data_dir / "imports"
    target, n = imports / base, 1
    while target.exists():
        n += 1
        target = imports / f"{base}-{n}"
    return target


def import_zip(db: Database, settings: Settings, zip_path: Path, options: ImportOptions, *, project: str,
               author: str = "import") -> DataImport:
    """Extract `zip_path` into `<data dir>/imports/<project>/` and import it; a refused import (or one that
    adds no image, its images being already in the project) removes the extracted folder again."""
    if not project or not project.strip():
        raise ValueError("name the project to import into")
    target = extract_zip(Path(zip_path), _target(settings, project.strip()))
    try:
        layout, root, source, notes = find_source(target, options)
        result = import_data(db, settings, source, project=project, author=author)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    if result.images_added == 0:
        shutil.rmtree(target, ignore_errors=True)
        notes.append(f"no new image: the extracted copy was removed ({target.name})")
        target_kept = None
    else:
        target_kept = target
    log.info("imported %s into %s (%s, %d images added)", zip_path.name, result.project, layout,
             result.images_added)
    return DataImport(result, layout, root, target_kept, _report(result, layout, root, notes, target_kept))


__all__ = ["LAYOUTS", "MAX_ZIP_BYTES", "MAX_ZIP_ENTRIES", "TASKS", "DataImport", "ImportOptions", "check_zip",
           "data_root", "extract_zip", "find_source", "import_folder", "import_zip"]
