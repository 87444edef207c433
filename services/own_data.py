"""Your own data: importing a folder, VOC or COCO set (with group and box CSVs) and the project's image size.

Each public function opens and owns one transaction and returns a frozen dataclass, so the command line
(`services/commands/io.py`, `services/commands/projects.py`) and a UI handler call the same thing. Imports are
all-or-nothing and idempotent (`store.io.plan` + `store.io.apply`): malformed input raises `ImportFormatError`
listing every problem by file, line or field, and writes nothing; bad options raise `ValueError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.catalog import ProjectInfo, project_info, require_project
from services.database import Database
from services.settings import Settings
from services.validation_split import ValidationCheck, inspect_validation
from store.db import session_scope
from store.io.apply import apply_plan
from store.io.apply import files_in_use as store_files_in_use
from store.io.coco import parse_coco
from store.io.csv_files import assign_groups
from store.io.folder import SplitRule, parse_folder
from store.io.plan import ImportPlan, ImportSummary, Skipped, to_single_label
from store.io.report import total
from store.io.voc import parse_voc
from store.projects import get_project
from store.projects import set_image_size as store_set_image_size
from store.splits import carve_splits as store_carve_splits

log = logging.getLogger(__name__)

TASK_CHOICES = ("multi_label", "single_label")


@dataclass(frozen=True)
class FolderImport:
    """`DIR/<class>/*` or `DIR/<split>/<class>/*` (see `store.io.folder`), with optional CSVs."""

    path: Path
    groups_csv: Path | None = None
    boxes_csv: Path | None = None
    split: str | None = None
    val_fraction: float | None = None
    test_fraction: float | None = None
    seed: int = 0
    allow_outside: bool = False
    name_paths: bool = True  # False: refusals name no server path (an import a browser user asked for)


@dataclass(frozen=True)
class VocImport:
    """A VOC year folder; `task="single_label"`: an image's class is the one label of its boxes."""

    path: Path
    groups_csv: Path | None = None
    task: str = "multi_label"
    allow_outside: bool = False
    name_paths: bool = True


@dataclass(frozen=True)
class CocoImport:
    """A COCO instances JSON and its image folder; `task` as for `VocImport`."""

    json_path: Path
    images: Path
    split: str = "train"
    groups_csv: Path | None = None
    task: str = "multi_label"
    allow_outside: bool = False
    name_paths: bool = True


ImportSource = FolderImport | VocImport | CocoImport


@dataclass(frozen=True)
class ImportResult:
    """What an import did (on a dry run: would do). `split_counts`: split -> class -> images of this import;
    `report`: the lines the command prints; `validation`: whether the project's validation split is big enough
    to judge a run (`validation.warning` says what to do when not). `skipped` and `report` list at most the first
    `store.io.report.REPORT_LIMIT` skipped items and count the others (`skipped_total`), however large the input."""

    project: str
    project_created: bool
    images_added: int
    images_existing: int
    labels_added: int
    boxes_added: int
    boxes_existing: int
    groups_set: int
    image_size: int
    image_size_inferred: bool
    dry_run: bool
    split_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    report: tuple[str, ...] = ()
    validation: ValidationCheck | None = None
    skipped_total: int = 0  # `skipped` lists the first `store.io.report.REPORT_LIMIT`; this counts them all

    @property
    def warnings(self) -> tuple[str, ...]:
        """What the project needs before a run can be judged on it (the validation split's size)."""
        warning = self.validation.warning if self.validation is not None else None
        return (warning,) if warning else ()


def _check_task(task: str) -> None:
    if task not in TASK_CHOICES:
        raise ValueError(f"--task {task!r}: choose one of {', '.join(TASK_CHOICES)}")


def _existing(path: Path | None, what: str) -> None:
    if path is not None and not Path(path).is_file():
        raise ValueError(f"{what} {path} does not exist (or is not a file)")


def parse_source(source: ImportSource) -> ImportPlan:
    """The import plan of `source`; ValueError (nothing parsed) for missing files or options that do not fit."""
    _existing(source.groups_csv, "groups CSV")
    if isinstance(source, FolderImport):
        _existing(source.boxes_csv, "boxes CSV")
        rule = SplitRule(source.split, source.val_fraction, source.test_fraction, source.seed)
        return parse_folder(source.path, groups_csv=source.groups_csv, boxes_csv=source.boxes_csv, split_rule=rule,
                            allow_outside=source.allow_outside, name_paths=source.name_paths)
    _check_task(source.task)
    if isinstance(source, VocImport):
        if not Path(source.path).is_dir():
            raise ValueError(f"{source.path} is not a folder")
        plan = parse_voc(source.path, allow_outside=source.allow_outside, name_paths=source.name_paths)
    else:
        _existing(source.json_path, "COCO JSON")
        if not Path(source.images).is_dir():
            raise ValueError(f"--images {source.images} is not a folder")
        plan = parse_coco(source.json_path, source.images, split=source.split, allow_outside=source.allow_outside,
                          name_paths=source.name_paths)
    if source.groups_csv is not None and not plan.problems:
        assign_groups(plan, Path(source.groups_csv))
    if source.task == "single_label":
        to_single_label(plan)
    return plan


def _result(summary: ImportSummary, dry_run: bool, validation: ValidationCheck | None) -> ImportResult:
    lines = summary.lines()
    if dry_run:
        lines[0] = "dry run, nothing written: " + lines[0]
    return ImportResult(summary.project, summary.project_created, summary.images_added, summary.images_existing,
                        summary.labels_added, summary.boxes_added, summary.boxes_existing, summary.groups_set,
                        summary.image_size, summary.image_size_inferred, dry_run,
                        {split: dict(per_class) for split, per_class in summary.split_counts.items()},
                        tuple(summary.notes), tuple(summary.skipped), tuple(lines), validation,
                        total(summary.skipped))


class _DryRun(Exception):
    """Raised inside the transaction of a dry run, so it rolls back; carries what would have been done."""

    def __init__(self, summary: ImportSummary, validation: ValidationCheck) -> None:
        super().__init__("dry run")
        self.summary = summary
        self.validation = validation


def import_data(db: Database, settings: Settings, source: ImportSource, *, project: str, author: str = "import",
                dry_run: bool = False) -> ImportResult:
    """Import `source` into `project` (created when new, its image size inferred from the images).

    Raises `ImportFormatError` (every problem by file, line or field) or `ValueError`; nothing is written then,
    nor on a dry run.
    """
    if not project or not project.strip():
        raise ValueError("name the project to import into (--project NAME)")
    plan = parse_source(source)  # problems are raised by apply_plan, with those only the project can tell
    try:
        with session_scope(db) as session:
            summary = apply_plan(session, plan, project_name=project.strip(), data_dir=settings.data_dir,
                                 author=author)
            validation = inspect_validation(session, get_project(session, summary.project))
            if dry_run:
                raise _DryRun(summary, validation)
    except _DryRun as rolled_back:
        summary, validation = rolled_back.summary, rolled_back.validation
    return _result(summary, dry_run, validation)


def files_in_use(db: Database, settings: Settings, folder: Path) -> set[Path]:
    """The files under `folder` (in the data dir) that some project's image refers to."""
    with session_scope(db) as session:
        return store_files_in_use(session, folder, settings.data_dir)


def set_image_size(db: Database, project: str | None, size: object) -> ProjectInfo:
    """Set the side (pixels) of the square a project's images are resized to for training, evaluation and
    explanations: a multiple of 32 in [32, 1024]. ValueError saying what is allowed otherwise."""
    with session_scope(db) as session:
        row = require_project(session, project)
        return project_info(session, store_set_image_size(session, row.id, size))


__all__ = ["TASK_CHOICES", "CocoImport", "FolderImport", "ImportResult", "ImportSource", "VocImport",
           "files_in_use", "import_data", "parse_source", "set_image_size"]


def carve_splits(db: Database, project: str, *, val_fraction: float | None = None,
                 test_fraction: float | None = None, seed: int = 0, grow: bool = False) -> dict[str, int]:
    """Give an existing project a validation (and/or test) split carved out of its training images, stratified
    by class and seeded; returns how many images each split received. ValueError saying what to do when a
    fraction is out of range or the split already has images (unless `grow`: then they are added to it)."""
    fractions = {split: value for split, value in (("val", val_fraction), ("test", test_fraction)) if value}
    if not fractions:
        raise ValueError("give --val-fraction and/or --test-fraction (e.g. 0.1)")
    with session_scope(db) as session:
        moved = store_carve_splits(session, project_id=require_project(session, project).id, fractions=fractions,
                                   seed=seed, grow=grow)
    log.info("project %s: moved %s out of train (seed %d)", project, moved, seed)
    return moved
