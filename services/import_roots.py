"""Which folders on the server a browser user may import from, checked before anything there is read or listed.

The operator names them (`serve --import-root DIR`, repeatable, or `GUIDANCE_IMPORT_ROOTS`); the data dir's own
`imports/` folder (where uploaded zips are extracted) is always one. A path typed in the Data tab is resolved
(symlinks and `..` followed) and must then lie inside one of them; a relative path is looked up in each, in order.
Inside the folder, a link that leads out of it refuses the import too. Refusals name no path on the server but the
one the user typed. The command line (`python app.py import ...`) is the operator's own and reads any folder.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from services.settings import Settings

log = logging.getLogger(__name__)

MAX_FOLDER_ENTRIES = 200_000  # files and folders in a server folder imported from the browser (as in a zip)
ROOT_FLAG = "serve --import-root DIR"


def import_roots(settings: Settings) -> tuple[Path, ...]:
    """The folders browser imports may read, resolved: the operator's (`settings.import_roots`), then the data
    dir's `imports/` folder."""
    roots = [*settings.import_roots, settings.data_dir / "imports"]
    return tuple(dict.fromkeys(Path(os.path.realpath(root)) for root in roots))


def roots_refusal(settings: Settings) -> str | None:
    """Why the operator's import roots cannot be used (one is not an existing folder), or None."""
    for root in settings.import_roots:
        if not Path(root).is_dir():
            return (f"--import-root {root} is not a folder on this machine (or GUIDANCE_IMPORT_ROOTS names it); give "
                    "an existing folder the browser may import from")
    return None


def _outside(typed: str) -> ValueError:
    return ValueError(f"{typed!r} is not inside a folder this server imports from; upload the data as a .zip, put "
                      f"it in a folder the server allows, or ask whoever runs the server to allow it ({ROOT_FLAG})")


def server_folder(settings: Settings, typed: str) -> Path:
    """The folder a browser user typed, resolved, once it lies inside an import root and is a folder; ValueError
    naming only `typed` otherwise. Nothing is listed or read before the check: only the path's links are
    followed."""
    text = typed.strip()
    if not text:
        raise ValueError("type the path of a folder on the server, or upload a .zip")
    if "\x00" in text:
        raise ValueError("the folder path holds a NUL character; type the path of a folder on the server")
    roots = import_roots(settings)
    path = Path(text)
    candidates = [path] if path.is_absolute() else [root / path for root in roots]
    for candidate in candidates:
        try:
            resolved = Path(os.path.realpath(candidate))
        except (OSError, ValueError):
            continue
        if not any(resolved.is_relative_to(root) for root in roots):
            continue
        if resolved.is_dir():
            return resolved
        if path.is_absolute():
            raise ValueError(f"{text!r} is not a folder on the server; type the path of the data set folder")
    if path.is_absolute():
        raise _outside(text)
    if any(Path(os.path.realpath(root / path)).is_relative_to(root) for root in roots):
        raise ValueError(f"{text!r} is not a folder in the folders this server imports from; type its full path")
    raise _outside(text)


def check_tree(folder: Path, typed: str) -> None:
    """ValueError when `folder` (resolved) holds a link leading out of it, or more than `MAX_FOLDER_ENTRIES`
    entries; the message names the entry by its path under `typed`. Links are not followed into."""
    count = 0
    for current, dirs, files in os.walk(folder, followlinks=False, onerror=None):
        base = Path(current)
        for name in [*dirs, *files]:
            count += 1
            if count > MAX_FOLDER_ENTRIES:
                raise ValueError(f"{typed!r} holds more than {MAX_FOLDER_ENTRIES:,} files and folders; import a "
                                 "smaller folder (one data set)")
            entry = base / name
            if entry.is_symlink() and not Path(os.path.realpath(entry)).is_relative_to(folder):
                shown = (Path(typed.strip()) / entry.relative_to(folder)).as_posix()
                raise ValueError(f"{shown!r} is a link leading out of the folder; copy the files themselves into it")


__all__ = ["MAX_FOLDER_ENTRIES", "check_tree", "import_roots", "roots_refusal", "server_folder"]
