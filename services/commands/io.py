"""`python app.py import voc|coco|folder ...` and `python app.py export coco|voc ...`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sqlalchemy.orm import Session

import store
from services.database import open_store
from services.settings import Settings

log = logging.getLogger(__name__)


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
    folder = formats.add_parser("folder", help="one sub-folder per class (optionally under train/ val/ test/)")
    folder.add_argument("path", type=Path, help="the folder")
    folder.add_argument("--groups", type=Path, default=None, help="CSV with 'file' and 'group' columns")
    for p in (voc, coco, folder):
        p.add_argument("--project", required=True, help="project to import into (created when new)")
        p.add_argument("--author", default="import", help="recorded as the author of the imported boxes")
        p.add_argument("--dry-run", action="store_true", help="report what would be imported, write nothing")
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


def _parse(args: argparse.Namespace) -> store.ImportPlan:
    if args.format == "voc":
        return store.parse_voc(args.path, allow_outside=args.allow_outside)
    if args.format == "coco":
        return store.parse_coco(args.json, args.images, split=args.split, allow_outside=args.allow_outside)
    return store.parse_folder(args.path, groups_csv=args.groups, allow_outside=args.allow_outside)


def _write(lines: list[str]) -> None:
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def run_import(settings: Settings, args: argparse.Namespace) -> int:
    """Import in one transaction; exit 2 (database untouched) on malformed input."""
    engine = open_store(settings)
    try:
        plan = _parse(args)
        with Session(engine, expire_on_commit=False) as session:  # closing without commit rolls back
            summary = store.apply_plan(session, plan, project_name=args.project, data_dir=settings.data_dir,
                                       author=args.author)
            if not args.dry_run:
                session.commit()
    except store.ImportFormatError as exc:
        log.error("import failed, nothing written: %s", exc)
        return 2
    except (ValueError, FileNotFoundError, NotADirectoryError) as exc:
        log.error("import failed, nothing written: %s", exc)
        return 2
    finally:
        engine.dispose()
    _write([("dry run, nothing written: " if args.dry_run else "") + summary.lines()[0], *summary.lines()[1:]])
    return 0


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the export atomically; exit 2 on an unknown project or an unusable output path."""
    engine = open_store(settings)
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
