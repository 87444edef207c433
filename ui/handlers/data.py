"""Data: import an uploaded zip or a folder on the server (class folders, VOC or COCO, with group and box CSVs)
into a project, the project's image size, and a warning (with a button that carves a bigger one) when its
validation split is too small to judge a run (`services.validation_split`).

The work is `services.zip_import` (safe extraction, finding the layout) and `services.own_data` (the
all-or-nothing import). A refusal is a `gr.Error` whose message lists every problem by file and row.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr

from services import catalog, own_data, validation_split, zip_import
from ui.deps import AppDeps
from ui.handlers.common import author_of, plain_markdown, uploaded_file, user_errors
from ui.handlers.finetune_checks import CARVE_BUTTON, check_or_none, warning_markdown, warning_text

log = logging.getLogger(__name__)

TASK_CHOICES = [("auto (class folders: one class per image; VOC/COCO: several labels)", "auto"),
                ("one class per image (single-label)", "single_label"),
                ("several labels per image (multi-label)", "multi_label")]
DEFAULT_FRACTION = 0.1
# the import report's command-line hints, as the fields of this page name them
PAGE_WORDS = (("change it with `python app.py project set {project} --image-size N`",
               "change it below under Image size"),
              ("--val-fraction", "Val fraction"), ("--test-fraction", "Test fraction"), ("--seed", "Split seed"),
              (" or --split", ""))
CARVE_HERE = f"“{CARVE_BUTTON}” below"


@contextmanager
def toast_errors() -> Iterator[None]:
    """`user_errors` for a handler whose refusal shows as a toast: Gradio renders a toast's text as HTML, so the
    message (which may hold a project or class name) is escaped and shows as typed."""
    try:
        with user_errors():
            yield
    except gr.Error as exc:
        raise gr.Error(html.escape(str(exc.message))) from exc


def folder_help(deps: AppDeps) -> str:
    """What the "folder on the server" box accepts: the folders the operator allowed, as plain text."""
    roots = [str(root) for root in deps.settings.import_roots]
    allowed = f"{', '.join(roots)} or the app's own imports/ folder" if roots else "the app's own imports/ folder"
    return (f"Folders this server imports from: {allowed} (the operator adds others with serve --import-root). "
            "A name alone, e.g. photos, is looked up in them.")


def _fraction(value: Any, what: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{what} {value!r}: give a fraction such as 0.1.") from None
    if not 0.0 <= number < 1.0:
        raise gr.Error(f"{what} {number:g} is outside [0, 1): give the fraction of each class's images, e.g. 0.1.")
    return number


def _seed(value: Any) -> int:
    try:
        number = float(0 if value is None or value == "" else value)
    except (TypeError, ValueError):
        number = -1.0
    if isinstance(value, bool) or not number.is_integer() or number < 0:
        raise gr.Error(f"Seed {value!r}: give a whole number, 0 or more.")
    return int(number)


def _options(task: str, val_fraction: Any, test_fraction: Any, seed: Any, groups_file: Any,
             boxes_file: Any) -> zip_import.ImportOptions:
    return zip_import.ImportOptions(task=task or "auto", val_fraction=_fraction(val_fraction, "Val fraction"),
                                    test_fraction=_fraction(test_fraction, "Test fraction"), seed=_seed(seed),
                                    groups_csv=uploaded_file(groups_file) if groups_file else None,
                                    boxes_csv=uploaded_file(boxes_file) if boxes_file else None)


def _project_name(project: str | None, zip_path: Path | None, folder: str) -> str:
    """The name typed, else the zip's or folder's name."""
    if project and project.strip():
        return project.strip()
    source = zip_path.stem if zip_path is not None else Path(folder.strip().rstrip("/")).name
    return source.strip() or "imported"


def _for_the_page(line: str, project: str) -> str:
    for cli, page in PAGE_WORDS:
        line = line.replace(cli.format(project=project), page)
    return line


def run_import(deps: AppDeps, zip_file: Any, folder: str | None, project: str | None, task: str,
               val_fraction: Any, test_fraction: Any, seed: Any, groups_file: Any, boxes_file: Any,
               request: gr.Request | None = None) -> tuple[str, list[str], str, int]:
    """Import an uploaded zip or a server folder into `project` (created when new; named after the zip or folder
    when empty). Returns the report (counts per split and class, image size, notes), every project name, the
    project imported into and its image size. `gr.Error` listing every problem otherwise: nothing written."""
    folder = (folder or "").strip()
    if zip_file and folder:
        raise gr.Error("Give either a zip upload or a folder on the server, not both (clear one of them).")
    if not zip_file and not folder:
        raise gr.Error("Upload a .zip of your data, or type the path of a folder on the server, then Import.")
    zip_path = uploaded_file(zip_file) if zip_file else None
    if zip_path is not None and zip_path.suffix.lower() != ".zip":
        raise gr.Error(f"{zip_path.name} is not a .zip file; zip the data set folder and upload that.")
    options = _options(task, val_fraction, test_fraction, seed, groups_file, boxes_file)
    name = _project_name(project, zip_path, folder)
    author = author_of(request)
    with user_errors():
        if zip_path is not None:
            done = zip_import.import_zip(deps.engine, deps.settings, zip_path, options, project=name, author=author)
        else:
            done = zip_import.import_folder(deps.engine, deps.settings, folder, options, project=name,
                                            author=author)
        names = catalog.project_names(deps.engine)
    report = "\n".join(_for_the_page(line, done.result.project) for line in done.report)
    warning = warning_text(done.result.validation, CARVE_HERE) if done.result.validation is not None else None
    if warning:
        report += "\n\n" + warning
    log.info("import into %s by %s: %d images added", done.result.project, author, done.result.images_added)
    return report, names, done.result.project, done.result.image_size


def image_size(deps: AppDeps, project: str | None) -> int | None:
    """The side (pixels) the project's images are resized to, or None without a project."""
    if not project:
        return None
    with toast_errors():
        return catalog.get_project(deps.engine, project).image_size


def apply_image_size(deps: AppDeps, project: str | None, size: Any) -> str:
    """Set the project's image size (a multiple of 32 from 32 to 1,024) for training, evaluation and
    explanations."""
    if not project:
        raise gr.Error("Pick a project first (top of the page).")
    if isinstance(size, float) and size.is_integer():
        size = int(size)
    with toast_errors():
        info = own_data.set_image_size(deps.engine, project, size)
    return plain_markdown(f"Project {info.name!r}: images are resized to {info.image_size}×{info.image_size} px for "
                          "training, evaluation and explanations (models trained at another size may need "
                          "fine-tuning).")


def validation_status(deps: AppDeps, project: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The warning under the import report (shown when the project's validation split is too small to judge a run)
    and the carve button (shown when carving can fix it)."""
    check = check_or_none(deps, project)
    text = warning_markdown(check, CARVE_HERE) if check is not None else ""
    can_carve = check is not None and check.command is not None
    return gr.update(value=text, visible=bool(text)), gr.update(visible=can_carve)


def carve_validation(deps: AppDeps, project: str | None) -> str:
    """Move the training images the warning names into val (refused while a run is queued or running, or when
    the split is big enough); the outcome as Markdown."""
    with toast_errors():
        done = validation_split.carve_bigger_validation(deps.engine, project)
    text = (f"Moved {done.moved} training images of project {done.project!r} into val: its decision score now rests "
            f"on {done.after.images} validation images (was {done.before.images}). Checkpoints fine-tuned before this "
            "were trained on some of them, so their validation figures now flatter them.")
    return plain_markdown(text)


__all__ = ["CARVE_BUTTON", "DEFAULT_FRACTION", "TASK_CHOICES", "apply_image_size", "carve_validation", "folder_help",
           "image_size", "run_import", "toast_errors", "validation_status"]
