"""Where an export may write: never over a file it did not write (issue 15).

The database, checkpoints, data sets and any other file are refused, with or without `force`; `force`
replaces an earlier export of the same kind. An own COCO export is recognised by the first bytes the
exporter writes (its "info" block), an own VOC export folder by the marker file it holds.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session

COCO_SIGNATURE = b'{"info":{"description":"Guidance Studio project '
VOC_MARKER = ".guidance-studio-export"
VOC_ENTRIES = frozenset({"Annotations", "JPEGImages", "ImageSets", VOC_MARKER})


class ExportTargetError(ValueError):
    """An output path the export refuses; nothing has been written."""


def coco_info(project_name: str) -> dict[str, str]:
    """The "info" block of a COCO export; its first bytes are `COCO_SIGNATURE`."""
    return {"description": f"Guidance Studio project {project_name}", "version": "1.0"}


def voc_marker_text(project_name: str) -> str:
    """The marker file's content: says what wrote the folder."""
    return json.dumps({"written_by": "Guidance Studio", "kind": "voc", "project": project_name}) + "\n"


def _database_files(session: Session) -> set[Path]:
    """The SQLite database behind `session` and its journal files (a server database has no file here)."""
    url = session.get_bind().url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return set()
    database = Path(url.database).resolve()
    return {database, *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm", "-journal"))}


def _refuse_database(session: Session, path: Path) -> None:
    if path.resolve() in _database_files(session):
        raise ExportTargetError(f"{path} is the project database; it was left as it is: choose another --out")


def _is_own_coco(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(COCO_SIGNATURE)) == COCO_SIGNATURE
    except OSError:
        return False


def check_coco_target(session: Session, path: Path, *, force: bool) -> None:
    """Raise `ExportTargetError` unless `path` is new, or an earlier COCO export and `force` is set."""
    _refuse_database(session, path)
    if path.is_dir():
        raise ExportTargetError(f"{path} is a folder; pass a file path for the COCO JSON")
    if not path.exists() and not path.is_symlink():
        return
    if not _is_own_coco(path):
        raise ExportTargetError(f"{path} exists and is not a COCO export written by Guidance Studio; it was left as "
                                "it is: choose another --out")
    if not force:
        raise ExportTargetError(f"{path} holds an earlier COCO export; pass --force to replace it, or choose "
                                "another --out")


def check_voc_target(session: Session, out: Path, *, force: bool) -> None:
    """Raise `ExportTargetError` unless `out` is new or empty, or an earlier VOC export and `force` is set."""
    _refuse_database(session, out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        kind = "a link" if out.is_symlink() else "a file"
        raise ExportTargetError(f"{out} exists and is {kind} not written by a Guidance Studio VOC export; it was "
                                "left as it is: choose a new or empty folder")
    entries = {p.name for p in out.iterdir()} if out.exists() else set()
    if not entries:
        return
    if VOC_MARKER not in entries or not (out / VOC_MARKER).is_file() or entries - VOC_ENTRIES:
        raise ExportTargetError(f"{out} exists and is a folder not written by a Guidance Studio VOC export; it was "
                                "left as it is: choose a new or empty folder")
    if not force:
        raise ExportTargetError(f"{out} holds an earlier VOC export; pass --force to replace it, or choose "
                                "another --out")
