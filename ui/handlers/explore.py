"""Explore: the project list, filter choices and one gallery page at a time."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import gradio as gr

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
BOXES = ("any", "annotated", "not annotated")
COUNTED = re.compile(r"^(?P<value>.*) \((?P<count>[\d,]+)\)$")  # "train (2,560)"

Choice = tuple[str, str]  # (label shown with its count, value the handlers get)


def project_names(deps: AppDeps) -> list[str]:
    """Names of every project, alphabetically."""
    with user_errors():
        return catalog.project_names(deps.engine)


def project_choices(deps: AppDeps, current: str | None) -> dict[str, Any]:
    """The project picker on page load: projects made since the server started (an import, a new project) appear.

    The value is set only when the page's project is gone: this answer can land after the user has picked another
    project (a loaded server answers page-load events late), and setting the value it was sent with would snap the
    picker back to the page's first project, and every tab with it."""
    fresh = project_names(deps)
    if current in fresh or not fresh:
        return gr.update(choices=fresh)
    return gr.update(choices=fresh, value=fresh[0])


def project_filters(deps: AppDeps, project: str) -> dict[str, list[str]]:
    """Dropdown values for a project: split, class and group, each starting with "(any)"."""
    with user_errors():
        choices = catalog.filter_choices(deps.engine, project)
    return {"split": [ANY, *choices.splits], "class": [ANY, *choices.classes], "group": [ANY, *choices.groups]}


def with_count(value: str, count: int | None) -> str:
    """The label of a filter value: "train (2,560)" (FiftyOne-style); the bare value without a count."""
    return value if count is None else f"{value} ({count:,})"


def filter_options(deps: AppDeps, project: str | None) -> dict[str, list[Choice]]:
    """Dropdown choices `(label with count, value)` for the split, class, group and boxes filters.

    Each list starts with "(any)"; the dropdowns return the bare value, so counts never reach a filter.
    An empty project name gives just "(any)".
    """
    if not project:
        return {"split": [(ANY, ANY)], "class": [(ANY, ANY)], "group": [(ANY, ANY)], "boxes": [(b, b) for b in BOXES]}
    with user_errors():
        choices = catalog.filter_choices(deps.engine, project)
    counts: Mapping[str, Mapping[str, int]] = choices.counts

    def options(key: str, values: tuple[str, ...]) -> list[Choice]:
        return [(ANY, ANY), *((with_count(v, counts.get(key, {}).get(v)), v) for v in values)]

    boxes = [("any", "any"), *((with_count(b, counts.get("boxes", {}).get(b)), b) for b in BOXES[1:])]
    return {"split": options("split", choices.splits), "class": options("class", choices.classes),
            "group": options("group", choices.groups), "boxes": boxes}


def filter_value(shown: str | None, options: list[Choice]) -> str:
    """The value behind what a dropdown sent: a value itself, or a label with its count ("train (2,560)" →
    "train"); "" for "(any)" or nothing."""
    if shown in (None, "", ANY):
        return ""
    values = {value for _, value in options}
    if shown in values:
        return str(shown)
    labels = {label: value for label, value in options}
    if shown in labels:
        return labels[shown]
    match = COUNTED.match(str(shown))
    return match["value"] if match and match["value"] in values else str(shown)


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


def _filter(deps: AppDeps, project: str, split: str, class_name: str, group: str, annotated: str,
            wrong_only: bool, sort: str) -> GalleryFilter:
    """What the dropdowns sent as a `GalleryFilter`: "(any)" is no filter; a label with a count (a client
    that sent the label shown) is mapped back to its value."""
    shown = (split, class_name, group, annotated)
    options = (filter_options(deps, project) if any(isinstance(v, str) and COUNTED.match(v) for v in shown)
               else {"split": [], "class": [], "group": [], "boxes": [(b, b) for b in BOXES]})
    return GalleryFilter(
        split=filter_value(split, options["split"]),
        class_name=filter_value(class_name, options["class"]),
        group=filter_value(group, options["group"]),
        annotated=filter_value(annotated, options["boxes"]) or "any",
        wrong_only=bool(wrong_only),
        sort=SORT_LABELS.get(sort, sort or "name"),
    )


NO_PROJECT = ("**No project yet.** Import your images in the **Data** tab (a zip or a folder of class folders, "
              "VOC or COCO), or build the built-in demo with `python app.py demo`.")


def gallery_page(deps: AppDeps, project: str, split: str, class_name: str, group: str, annotated: str,
                 wrong_only: bool, sort: str, page: int, region: Mapping[str, Any] | None = None
                 ) -> tuple[list[tuple[str, str]], str, int, list[int]]:
    """One page of the gallery: the filtered, sorted images, or with `region` (a mean-map region chosen in
    Explore: `{"ids": [...], "shares": [...], "label": "..."}`) those images in its order.

    Returns `(items, summary, page, image_ids)`: `(file path, caption)` tiles, a markdown line with
    the counts, the (clamped, 0-based) page shown and the image id of each tile.
    """
    if not project:  # an install without a project yet: say how to get one, no error toast
        return [], NO_PROJECT, 0, []
    thumbs = deps.data_dir / "cache" / "thumbnails"
    if region and region.get("ids"):
        with user_errors():
            result = catalog.page_image_list(deps.engine, project, region["ids"], page=int(page or 0),
                                             page_size=PAGE_SIZE, data_dir=deps.data_dir,
                                             notes=(str(region.get("label", "")),))
        shares = dict(zip(region["ids"], region.get("shares", [])))
        items = [(str(thumbnail(r.file, thumbs, _thumb_key(r), r.width, r.height)),
                  f"#{r.image_id} {shares.get(r.image_id, 0):.0%} here") for r in result.rows]
        return items, summary(result), result.page, [r.image_id for r in result.rows]
    flt = _filter(deps, project, split, class_name, group, annotated, wrong_only, sort)
    with user_errors():
        result = catalog.page_images(deps.engine, project, flt, page=int(page or 0), page_size=PAGE_SIZE,
                                     data_dir=deps.data_dir)
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
