"""Explore: the project list, filter choices and one gallery page at a time."""

from __future__ import annotations

import hashlib
from typing import Any

from services import catalog
from services.catalog import GalleryFilter, GalleryPage, GalleryRow
from ui.data.display import thumbnail
from ui.deps import AppDeps
from ui.handlers.common import user_errors

PAGE_SIZE = 48
SORT_LABELS = {
    "EPG of the active model (worst first)": "epg",
    "Confidence (lowest first)": "confidence_low",
    "Confidence (highest first)": "confidence_high",
    "Name": "name",
}
ANY = "(any)"


def project_names(deps: AppDeps) -> list[str]:
    """Names of every project, alphabetically."""
    with user_errors():
        return catalog.project_names(deps.engine)


def project_filters(deps: AppDeps, project: str) -> dict[str, list[str]]:
    """Dropdown values for a project: split, class and group, each starting with "(any)"."""
    with user_errors():
        choices = catalog.filter_choices(deps.engine, project)
    return {"split": [ANY, *choices.splits], "class": [ANY, *choices.classes], "group": [ANY, *choices.groups]}


def _caption(row: Any, sort: str) -> str:
    """A short tile caption (tiles are ~140 px wide): id, the score sorted on, ✗ when wrong, box count."""
    parts = [f"#{row.image_id}"]
    if sort.startswith("confidence") and row.score is not None:
        parts.append(f"conf {row.score:.2f}")
    elif row.epg is not None:
        parts.append(f"EPG {row.epg:.2f}")
    else:
        parts.append(row.split)
    if row.correct is False:
        parts.append("✗")
    if row.box_count:
        parts.append(f"□{row.box_count}")
    return " ".join(parts)


def _thumb_key(row: GalleryRow) -> str:
    """Cache name of a tile: the image id plus a hash of its path (a recreated database reuses ids)."""
    return f"i{row.image_id}-{hashlib.sha1(row.path.encode(), usedforsecurity=False).hexdigest()[:10]}"


def gallery_page(deps: AppDeps, project: str, split: str, class_name: str, group: str, annotated: str,
                 wrong_only: bool, sort: str, page: int) -> tuple[list[tuple[str, str]], str, int, list[int]]:
    """One page of the gallery.

    Returns `(items, summary, page, image_ids)`: `(file path, caption)` tiles, a markdown line with
    the counts, the (clamped, 0-based) page shown and the image id of each tile.
    """
    flt = GalleryFilter(
        split="" if split in (ANY, None) else split,
        class_name="" if class_name in (ANY, None) else class_name,
        group="" if group in (ANY, None) else group,
        annotated=annotated or "any",
        wrong_only=bool(wrong_only),
        sort=SORT_LABELS.get(sort, sort or "name"),
    )
    with user_errors():
        result = catalog.page_images(deps.engine, project, flt, page=int(page or 0), page_size=PAGE_SIZE,
                                     data_dir=deps.data_dir)
    thumbs = deps.data_dir / "cache" / "thumbnails"
    items = [(str(thumbnail(r.file, thumbs, _thumb_key(r), r.width, r.height)), _caption(r, flt.sort))
             for r in result.rows]
    return items, summary(result), result.page, [r.image_id for r in result.rows]


def summary(result: GalleryPage) -> str:
    """"Images 49–96 of 2,000 · page 2/42" plus any notes (e.g. no evaluation to sort by)."""
    if result.total == 0:
        text = "**No images match these filters.** Clear a filter to see more."
    else:
        first = result.page * result.page_size + 1
        last = first + len(result.rows) - 1
        text = f"Images **{first:,}–{last:,}** of **{result.total:,}** · page {result.page + 1}/{result.pages}"
    return "  \n".join([text, *(f"_{note}_" for note in result.notes)])
