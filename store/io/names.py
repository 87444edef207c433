"""Names an import writes (project, class, group, split, author, image path) as text every database stores.

PostgreSQL refuses a NUL character and a string longer than its column (a raw `DataError` traceback, issue 24);
SQLite stored them silently, and both fail on text that is not valid Unicode (a file name with bytes that are not
UTF-8). The limits are read from the ORM models, so a name is checked the same way on both, before anything is
written, and the refusal names the CSV row, folder or file it came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from store.io.plan import ImportPlan
from store.io.report import shorten
from store.models import Box, Class, Image, Project
from store.paths import stored_path


def _length(column: Any) -> int:
    return int(column.type.length)


PROJECT_NAME_MAX = _length(Project.__table__.c.name)
CLASS_NAME_MAX = _length(Class.__table__.c.name)
GROUP_MAX = _length(Image.__table__.c.group_name)
SPLIT_MAX = _length(Image.__table__.c.split)
IMAGE_PATH_MAX = _length(Image.__table__.c.path)
AUTHOR_MAX = _length(Box.__table__.c.author)


def text_problem(value: str, what: str, limit: int) -> str | None:
    """Why `value` cannot be stored as `what` (a NUL character, text that is not Unicode, longer than `limit`
    characters), saying what to do; None when it can."""
    shown = shorten(value, 60)
    if "\x00" in value:
        return f"{what} {shown!r} holds a NUL character (\\x00); remove it"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return (f"{what} {shown!r} is not valid text (bytes that are not UTF-8, e.g. a file name made on another "
                "system); rename it")
    if len(value) > limit:
        return f"{what} {shown!r} is {len(value):,} characters long, more than the {limit} it may have; shorten it"
    return None


def check_project_name(name: str) -> None:
    """ValueError saying what to do when `name` cannot be a project name (checked before any query runs)."""
    problem = text_problem(name, "project name", PROJECT_NAME_MAX)
    if problem is not None:
        raise ValueError(problem)


def check_plan_names(plan: ImportPlan, *, author: str, data_dir: str | os.PathLike[str]) -> None:
    """Add a problem to `plan` for every class, split, group, image path and the author that cannot be stored,
    naming where it came from (the first box carrying a class, the image of a path)."""
    _add(plan, text_problem(author, "author", AUTHOR_MAX))
    first_box = {}
    for image in plan.images:
        for box in image.boxes:
            first_box.setdefault(box.label, box.where)
    for name in plan.classes:
        where = plan.class_origins.get(name) or first_box.get(name, "")
        _add(plan, text_problem(name, "class name", CLASS_NAME_MAX), where)
    checks: list[tuple[str, int, Callable[..., str | None]]] = [
        ("split", SPLIT_MAX, lambda image: image.split),
        ("group", GROUP_MAX, lambda image: image.group),
        ("stored path", IMAGE_PATH_MAX, lambda image: stored_path(image.file, data_dir)),
    ]
    reported: set[tuple[str, str]] = set()
    for image in plan.images:
        for what, limit, value_of in checks:
            value = value_of(image)
            if value is None or (what, value) in reported:
                continue
            problem = text_problem(value, what, limit)
            if problem is not None:
                reported.add((what, value))
                _add(plan, problem, plan.display(image.file))


def _add(plan: ImportPlan, problem: str | None, where: str = "") -> None:
    if problem is not None:
        plan.problems.append(f"{where}: {problem}" if where else problem)


__all__ = ["AUTHOR_MAX", "CLASS_NAME_MAX", "GROUP_MAX", "IMAGE_PATH_MAX", "PROJECT_NAME_MAX", "SPLIT_MAX",
           "check_plan_names", "check_project_name", "text_problem"]
