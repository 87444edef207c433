"""`python app.py import voc|coco|folder ...` and `python app.py export coco|voc ...`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import store
from services.database import open_store
from services.own_data import (
    TASK_CHOICES,
    CocoImport,
    FolderImport,
    ImportResult,
    ImportSource,
    VocImport,
    import_data,
)
from services.settings import Settings
from store.io.csv_files import BOXES_EXAMPLE, GROUPS_EXAMPLE
from store.io.folder import SPLITS

log = logging.getLogger(__name__)


def _indent(text: str) -> str:
    return "\n".join(f"               {line}" for line in text.splitlines())


FOLDER_HELP = f"""layouts:
  DIR/<class>/<image>           a split is made per class (stratified) and seeded: 10% val, 10% test,
                                the rest train (--val-fraction, --test-fraction, --seed), or every
                                image in one split (--split)
  DIR/<split>/<class>/<image>   split one of train, val, test: the folder's own split is kept;
                                --val-fraction/--test-fraction carve a split it lacks out of train/

CSV files (UTF-8, a header line; `file` is the image's path relative to DIR, or its bare name when unique):
  --groups   columns file,group (worst-group analysis), e.g.
{_indent(GROUPS_EXAMPLE)}
  --boxes    columns file,label,x0,y0,x1,y1: top-left and bottom-right corner in pixels of the image
             as a viewer shows it (EXIF orientation applied), several rows per file; the label must
             be a class (a folder name), e.g.
{_indent(BOXES_EXAMPLE)}

The project is created when new; its image size is inferred from the images (median shorter side,
a multiple of 32, at most 224) and can be changed with `python app.py project set P --image-size N`."""

TASK_HELP = ("multi_label (default): an image's classes are its boxes' labels; single_label: an image's class "
             "is the one label of its boxes (an image whose boxes disagree is an error), e.g. to add boxes from "
             "another tool's export to a project imported from a folder")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `import` and `export` command groups."""
    imp = sub.add_parser("import", help="import a data set (Pascal VOC, COCO, folder per class) into a project")
    formats = imp.add_subparsers(dest="format", metavar="<format>", required=True)
    voc = formats.add_parser("voc", help="a VOC year folder: JPEGImages/, Annotations/*.xml, ImageSets/Main/*.txt")
    voc.add_argument("path", type=Path, help="the VOC folder (e.g. VOCdevkit/VOC2012)")
    coco = formats.add_parser("coco", help="a COCO instances JSON plus its image folder")
    coco.add_argument("json", type=Path, help="instances JSON file")
    coco.add_argument("--images", type=Path, required=True, help="folder the JSON's file_name entries are under")
    coco.add_argument("--split", default="train", help="split to put the images in (default train)")
    for p in (voc, coco):
        p.add_argument("--groups", type=Path, default=None,
                       help="CSV with columns file,group; file is the image's path under the data set folder")
        p.add_argument("--task", choices=TASK_CHOICES, default="multi_label", help=TASK_HELP)
    folder = formats.add_parser("folder", help="one sub-folder per class (optionally under train/ val/ test/)",
                                description="Import a folder of images sorted into one sub-folder per class.",
                                epilog=FOLDER_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    folder.add_argument("path", type=Path, help="the folder (DIR)")
    folder.add_argument("--groups", type=Path, default=None, help="CSV with columns file,group (see below)")
    folder.add_argument("--boxes", type=Path, default=None, help="CSV with columns file,label,x0,y0,x1,y1 (see below)")
    folder.add_argument("--split", choices=SPLITS, default=None, help="put every image in this split (flat layout)")
    folder.add_argument("--val-fraction", type=float, default=None, metavar="F",
                        help="fraction of each class for val (flat layout default 0.1)")
    folder.add_argument("--test-fraction", type=float, default=None, metavar="F",
                        help="fraction of each class for test (flat layout default 0.1)")
    folder.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    for p in (voc, coco, folder):
        p.add_argument("--project", required=True, help="project to import into (created when new)")
        p.add_argument("--author", default="import", help="recorded as the author of the imported boxes")
        p.add_argument("--dry-run", action="store_true", help="report what would be imported, write nothing")
        p.add_argument("--json", action="store_true",
                       help="print JSON (the counts, the report lines and `warnings`) instead of the report")
        p.add_argument("--allow-outside", action="store_true",
                       help="import images that resolve (symlinks followed) outside the data set folder")
        p.set_defaults(run=run_import)

    exp = sub.add_parser("export", help="export a project's current boxes (COCO JSON or a VOC folder)")
    targets = exp.add_subparsers(dest="format", metavar="<format>", required=True)
    for name, what in (("coco", "instances JSON file"), ("voc", "folder (JPEGImages/, Annotations/, ImageSets/)")):
        p = targets.add_parser(name, help=f"write a COCO {what}" if name == "coco" else f"write a VOC {what}")
        p.add_argument("--project", required=True, help="project to export")
        p.add_argument("--out", type=Path, required=True, help=f"output {what}")
        p.add_argument("--split", default=None, help="only this split (default: all)")
        p.add_argument("--force", action="store_true",
                       help="replace an earlier export of the same kind at --out (never any other file)")
        p.set_defaults(run=run_export)


def import_source(args: argparse.Namespace) -> ImportSource:
    """The parsed `import` arguments as a service request."""
    if args.format == "voc":
        return VocImport(args.path, groups_csv=args.groups, task=args.task, allow_outside=args.allow_outside)
    if args.format == "coco":
        return CocoImport(args.json, args.images, split=args.split, groups_csv=args.groups, task=args.task,
                          allow_outside=args.allow_outside)
    return FolderImport(args.path, groups_csv=args.groups, boxes_csv=args.boxes, split=args.split,
                        val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed,
                        allow_outside=args.allow_outside)


def _write(lines: list[str] | tuple[str, ...]) -> None:
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def import_json(result: ImportResult) -> dict[str, Any]:
    """`import --json`: the result's fields, `skipped` as `{"item", "reason"}` objects, and `warnings` (a list of
    sentences, e.g. a validation split too small to judge a run, with the command that fixes it)."""
    out = {f.name: getattr(result, f.name) for f in fields(result) if f.name != "validation"}
    out["skipped"] = [{"item": s.item, "reason": s.reason} for s in result.skipped]
    out["warnings"] = list(result.warnings)
    return out


def run_import(settings: Settings, args: argparse.Namespace) -> int:
    """Import in one transaction; exit 2 (database untouched) on malformed input or unusable options."""
    engine = open_store(settings)
    try:
        result = import_data(engine, settings, import_source(args), project=args.project, author=args.author,
                             dry_run=args.dry_run)
    except (ValueError, OSError) as exc:  # ImportFormatError and NotFoundError are ValueErrors
        log.error("import failed, nothing written: %s", exc)
        return 2
    finally:
        engine.dispose()
    for warning in result.warnings:
        log.warning("%s", warning)
    if args.json:
        sys.stdout.write(json.dumps(import_json(result), indent=2, ensure_ascii=False) + "\n")
    else:
        _write(result.report)
    return 0


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the export atomically; exit 2 on an unknown project or an unusable output path."""
    engine = open_store(settings, create=False)
    try:
        with store.session_scope(engine) as session:
            project = store.get_project(session, args.project)
            if args.format == "coco":
                summary = store.export_coco(session, project, args.out, split=args.split, force=args.force)
            else:
                summary = store.export_voc(session, project, args.out, data_dir=settings.data_dir, split=args.split,
                                           force=args.force)
    except (ValueError, OSError) as exc:
        log.error("export failed: %s", exc)
        return 2
    finally:
        engine.dispose()
    _write(summary.lines())
    return 0
