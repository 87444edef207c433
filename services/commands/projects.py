"""`python app.py projects`: list projects with their counts."""

from __future__ import annotations

import argparse
import json
import sys

import store
from services.database import open_store
from services.settings import Settings

COLUMNS = ("name", "task", "classes", "images", "annotated_images", "boxes", "created")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `projects` command."""
    p = sub.add_parser("projects", help="list projects with their class, image and box counts")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def _table(rows: list[dict[str, str]]) -> list[str]:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    line = "  ".join(c.ljust(widths[c]) for c in COLUMNS)
    return [line, *("  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in rows)]


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Print the projects (a table, or JSON with --json)."""
    engine = open_store(settings)
    try:
        with store.session_scope(engine) as session:
            projects = store.list_projects(session)
    finally:
        engine.dispose()
    rows = [{c: (getattr(p, c).strftime("%Y-%m-%d %H:%M") if c == "created" else str(getattr(p, c)))
             for c in COLUMNS} for p in projects]
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    elif not rows:
        sys.stdout.write(f"no projects yet in {settings.database_url}; import one with "
                         "`python app.py import folder PATH --project NAME`\n")
    else:
        sys.stdout.write("\n".join(_table(rows)) + "\n")
    return 0
