"""Importing an uploaded zip or a server-side folder from the browser: safe extraction, then `import_data`.

A zip is checked entry by entry before anything is written (no absolute path, no `..`, no link or device, no
encryption, at most `MAX_ZIP_ENTRIES` entries; `MAX_ZIP_BYTES` uncompressed and at most `MAX_ZIP_RATIO` times its
own size, from its directory), then extracted into a hidden folder under `<data dir>/imports/` while counting the
bytes really written against the same limits (a directory can lie), and moved to `imports/<name>/` in one rename.
What it holds is found by `services.import_layout`. The import is all-or-nothing (`services.own_data`); when it
ends, only the images it imported stay on disk: a refused import, or one that adds no image, removes the extracted
folder, and a successful one removes every file of it the project does not refer to.

A server folder must lie inside a folder the operator allowed (`services.import_roots`). Messages from either route
name no server path but the one the user typed (the zip by its name).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import stat
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from services.database import Database
from services.import_layout import IGNORED_NAMES, IGNORED_PARTS, LAYOUTS, TASKS, ImportOptions, find_source
from services.import_roots import check_tree, server_folder
from services.own_data import ImportResult, files_in_use, import_data
from services.settings import MAX_UPLOAD_BYTES, Settings
from services.user_paths import Places, named_for_the_user, relabel

log = logging.getLogger(__name__)

MAX_ZIP_BYTES = MAX_UPLOAD_BYTES * 4  # uncompressed: images compress little, so more is a zip bomb
MAX_ZIP_ENTRIES = 200_000
MAX_ZIP_RATIO = 100  # uncompressed / compressed, per entry and for the whole zip (zeros deflate ~1000x)
RATIO_FREE_BYTES = 1 << 20  # an entry (a CSV, say) may expand to 1 MiB whatever its ratio
COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataImport:
    """An import from a zip or folder: the `ImportResult`, which layout was found where (`root`, on the server),
    where the zip's images stay (`extracted_to`, None when nothing stayed), and the report lines (naming no server
    path but the one the user typed)."""

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


def _byte_limit(archive_bytes: int) -> int:
    """The most a zip of `archive_bytes` may expand to: `MAX_ZIP_BYTES`, and `MAX_ZIP_RATIO` times its size."""
    return min(MAX_ZIP_BYTES, max(RATIO_FREE_BYTES, MAX_ZIP_RATIO * archive_bytes))


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"


def _bomb(name: str, expands: str, archive_bytes: int) -> ValueError:
    return ValueError(f"{name} {expands}, more than the {_size(_byte_limit(archive_bytes))} a zip of "
                      f"{_size(archive_bytes)} may expand to ({MAX_ZIP_RATIO}× its size, at least "
                      f"{_size(RATIO_FREE_BYTES)}, at most {MAX_ZIP_BYTES / 2**30:.0f} GiB): it looks like a zip bomb. "
                      "Zip the images as they are (PNG, JPEG), or import the folder from the server instead")


def check_directory(infos: list[zipfile.ZipInfo], name: str, archive_bytes: int) -> None:
    """ValueError when the zip's directory declares too many entries, more bytes than `_byte_limit` allows, or
    entries sharing compressed data (more compressed bytes than the file has)."""
    if len(infos) > MAX_ZIP_ENTRIES:
        raise ValueError(f"{name} has {len(infos):,} entries, more than the limit of {MAX_ZIP_ENTRIES:,}; "
                         "import the folder from the server instead")
    total = sum(info.file_size for info in infos)
    if total > MAX_ZIP_BYTES:
        raise ValueError(f"{name} expands to {total / 2**30:.1f} GiB, more than the limit of "
                         f"{MAX_ZIP_BYTES / 2**30:.0f} GiB; import the folder from the server instead")
    if total > _byte_limit(archive_bytes):
        raise _bomb(name, f"declares {_size(total)} uncompressed", archive_bytes)
    if sum(info.compress_size for info in infos) > archive_bytes:
        raise ValueError(f"{name}: its entries overlap (they declare more compressed data than the file holds), as "
                         "in a zip bomb; make the zip again with an ordinary zip tool")


def check_zip(archive: zipfile.ZipFile, name: str,
              archive_bytes: int | None = None) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The entries to extract (files and folders) with their paths, after every check; ValueError naming the
    first offending entry, or the totals of a zip bomb (`check_directory`). Reads only the zip's directory."""
    infos = archive.infolist()
    size = archive_bytes if archive_bytes is not None else os.fstat(archive.fp.fileno()).st_size  # type: ignore[union-attr]
    check_directory(infos, name, size)
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


class _Written:
    """Bytes really written while extracting, against the limits (the directory's sizes are not trusted)."""

    def __init__(self, name: str, archive_bytes: int) -> None:
        self.name, self.archive_bytes = name, archive_bytes
        self.limit = _byte_limit(archive_bytes)
        self.total = 0

    def add(self, info: zipfile.ZipInfo, entry_bytes: int, chunk: int) -> None:
        self.total += chunk
        if self.total > self.limit:
            raise _bomb(self.name, f"expands to more than {_size(self.limit)} while extracting", self.archive_bytes)
        if entry_bytes > info.file_size:
            raise ValueError(f"entry {info.filename!r} expands beyond what the zip declares")
        if entry_bytes > max(RATIO_FREE_BYTES, MAX_ZIP_RATIO * info.compress_size):
            raise ValueError(f"entry {info.filename!r} expands more than {MAX_ZIP_RATIO}× (from "
                             f"{info.compress_size:,} bytes), as in a zip bomb; zip the images as they are (PNG, JPEG)")


def _copy_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, written: _Written) -> None:
    """Copy one file in chunks, counting every byte against `written`'s limits as it is written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    entry_bytes = 0
    with archive.open(info) as source, open(target, "xb") as out:
        while chunk := source.read(COPY_CHUNK):
            entry_bytes += len(chunk)
            written.add(info, entry_bytes, len(chunk))
            out.write(chunk)


def extract_zip(zip_path: Path, target: Path) -> Path:
    """Extract `zip_path` into the new folder `target` (which must not exist) after `check_zip`; all or nothing:
    it is written under a hidden name beside `target` and renamed at the end. ValueError with what is wrong."""
    name = zip_path.name
    try:
        archive = zipfile.ZipFile(zip_path)
        archive_bytes = zip_path.stat().st_size
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{name} is not a zip file ({exc}); upload a .zip of the folder") from None
    partial = target.parent / f".partial-{uuid.uuid4().hex}"
    with archive:
        entries = check_zip(archive, name, archive_bytes)
        needed = sum(info.file_size for info, _ in entries)
        target.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(target.parent).free
        if needed > free:
            raise ValueError(f"{name} needs {needed / 2**20:.0f} MiB, the disk has {free / 2**20:.0f} MiB free")
        written = _Written(name, archive_bytes)
        try:
            partial.mkdir()
            for info, path in entries:
                destination = partial.joinpath(*path.parts)
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                else:
                    _copy_entry(archive, info, destination, written)
            partial.rename(target)
        except BaseException as exc:
            shutil.rmtree(partial, ignore_errors=True)
            if isinstance(exc, ValueError):
                message = str(exc) if str(exc).startswith(name) else f"{name}: {exc}"
                raise ValueError(f"{message}; nothing was extracted") from None
            if isinstance(exc, OSError | zipfile.BadZipFile | EOFError):
                raise ValueError(f"{name} could not be extracted ({exc}); nothing was extracted") from None
            raise
    return target


def _report(result: ImportResult, layout: str, root: Path, notes: list[str], places: Places) -> tuple[str, ...]:
    lines = [*result.report, f"  layout: {layout} in {root}", *(f"  {note}" for note in notes)]
    return tuple(relabel(line, places) for line in lines)


def import_folder(db: Database, settings: Settings, folder: str | os.PathLike[str], options: ImportOptions, *,
                  project: str, author: str = "import") -> DataImport:
    """Import a folder on this server a browser user typed (class folders, VOC or COCO; CSVs found by name or in
    `options`). It must lie inside an import root (`services.import_roots`), which is checked before anything in
    it is listed or read, and hold no link leading out of it; ValueError naming only `folder` otherwise."""
    typed = os.fspath(folder).strip()
    resolved = server_folder(settings, typed)
    places = [(resolved, typed.rstrip("/") or typed)]
    with named_for_the_user(places):
        check_tree(resolved, typed)
        layout, root, source, notes = find_source(resolved, options)
        result = import_data(db, settings, dataclasses.replace(source, name_paths=False), project=project,
                             author=author)
    log.info("imported server folder %s into %s (%s, %d images added)", resolved, result.project, layout,
             result.images_added)
    return DataImport(result, layout, root, None, _report(result, layout, root, notes, places))


def _target(settings: Settings, project: str) -> Path:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", project).strip("._") or "import"
    imports = settings.data_dir / "imports"
    target, n = imports / base, 1
    while target.exists():
        n += 1
        target = imports / f"{base}-{n}"
    return target


def _keep_only(target: Path, kept: set[Path]) -> int:
    """Remove every file under `target` but those in `kept`, and the folders left empty; how many were removed."""
    removed = 0
    for current, dirs, files in os.walk(target, topdown=False):
        for name in files:
            file = Path(current) / name
            if file not in kept:
                file.unlink()
                removed += 1
        for name in dirs:
            folder = Path(current) / name
            if not any(folder.iterdir()):
                folder.rmdir()
    return removed


def import_zip(db: Database, settings: Settings, zip_path: Path, options: ImportOptions, *, project: str,
               author: str = "import") -> DataImport:
    """Extract `zip_path` into `<data dir>/imports/<project>/` and import it. When the import ends, only the images
    it imported stay there: a refused import (or one that adds no image, its images being already in the project)
    removes the extracted folder, a successful one every other file of it (CSVs, unreadable images, duplicates)."""
    if not project or not project.strip():
        raise ValueError("name the project to import into")
    target = extract_zip(Path(zip_path), _target(settings, project.strip()))
    places = [(target, zip_path.name)]
    try:
        with named_for_the_user(places):
            layout, root, source, notes = find_source(target, options)
            result = import_data(db, settings, dataclasses.replace(source, name_paths=False), project=project,
                                 author=author)
            kept = {Path(os.path.abspath(file)) for file in files_in_use(db, settings, target)}
        removed = _keep_only(Path(os.path.abspath(target)), kept)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    where = f"the server's imports/{target.name}/"
    if not kept:
        shutil.rmtree(target, ignore_errors=True)
        notes.append(f"no new image: the extracted copy was removed ({where})")
        target_kept = None
    else:
        other = f"; its {removed:,} other files were removed" if removed else ""
        notes.append(f"the {len(kept):,} imported images stay in {where} (the project refers to them){other}")
        target_kept = target
    log.info("imported %s into %s (%s, %d images added)", zip_path.name, result.project, layout,
             result.images_added)
    return DataImport(result, layout, root, target_kept, _report(result, layout, root, notes, places))


__all__ = ["LAYOUTS", "MAX_ZIP_BYTES", "MAX_ZIP_ENTRIES", "MAX_ZIP_RATIO", "TASKS", "DataImport", "ImportOptions",
           "check_directory", "check_zip", "extract_zip", "import_folder", "import_zip"]
