"""Explore's "where the model looks, on average": mean maps of a split, a tile's grid, and the gallery ranked
by the share of evidence each image puts in a chosen cell."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core import methods
from services import checkpoints
from services.mean_map_pictures import MAX_TILES, caption, hit, overview_layout, render_overview
from services.mean_maps import CAP, GRID, MeanMaps, mean_maps, peak_cell
from ui.deps import AppDeps
from ui.handlers import explore
from ui.handlers.common import user_errors

METHOD_CHOICES = [(m.label, m.name) for m in methods.METHODS.values()]
CELL_CHOICES = [(f"row {r + 1}, column {c + 1}", f"{r},{c}") for r in range(GRID) for c in range(GRID)]
EXPLAINER = ("Each image's positive evidence for its own class, as shares, averaged: a hot spot that a whole class or "
             "group shares (a badge, a watermark, a border) is a shortcut. Click a cell of a map to rank that map's "
             "images by their evidence there.")


def split_choices(deps: AppDeps, project: str | None) -> tuple[list[tuple[str, str]], str | None]:
    """The project's splits with their image counts, and the one to show first (val, else test, else any)."""
    options = explore.filter_options(deps, project)["split"][1:] if project else []
    values = [value for _, value in options]
    default = next((v for v in ("val", "test") if v in values), values[0] if values else None)
    return options, default


def _load(deps: AppDeps, project: str, split: str, method: str | None, *, compute: bool) -> MeanMaps | None:
    with user_errors():
        return mean_maps(deps.engine, deps.settings, deps.models, project, split, method or None, compute=compute)


def status(maps: MeanMaps, shown: int) -> str:
    """What the maps average: how many images of which split, capped or not, method, layer, checkpoint."""
    used, total = maps.images_used, maps.images_in_split
    sample = (f"**{used:,}** of the {total:,} **{maps.split}** images (at most {maps.cap:,}, stratified by class "
              "and group)" if maps.capped else f"all **{total:,}** **{maps.split}** images")
    method = methods.METHODS[maps.method].label
    layer = methods.LAYERS[maps.layer].label
    cached = " · from the cache" if maps.from_cache else ""
    more = len(maps.tiles()) - shown
    hidden = f" · {more} more maps not shown (the first {shown})" if more > 0 else ""
    return f"Mean over {sample} · {method} at {layer} · checkpoint #{maps.checkpoint_id}{cached}{hidden}"


def _maps(deps: AppDeps, state: dict[str, Any] | None) -> MeanMaps:
    if not state:
        raise gr.Error("Show the mean maps first, then click one.")
    with user_errors():
        maps = mean_maps(deps.engine, deps.settings, deps.models, state["project"], state["split"], state["method"],
                         compute=False)
    if maps is None:
        raise gr.Error("These mean maps are gone from the cache: press Show mean maps again.")
    return maps


def show(deps: AppDeps, project: str | None, split: str | None, method: str | None, *, compute: bool
         ) -> tuple[str | None, str, dict[str, Any] | None, dict[str, Any]]:
    """The overview picture of `split` (computed when `compute`, else only from the cache), a status line, the
    view state `{"project", "split", "method"}` the clicks need, and the map dropdown's choices."""
    no_maps = gr.update(choices=[], value=None)
    if not project or not split:
        return None, "Pick a project with images first.", None, no_maps
    try:
        maps = _load(deps, project, split, method, compute=compute)
    except gr.Error as exc:
        if compute:
            raise
        return None, f"_{exc.message}_", None, no_maps
    if maps is None:
        return None, (f"Press **Show mean maps** to explain up to {CAP:,} **{split}** images with the active model "
                      "(seconds on a small model; the result is cached)."), None, no_maps
    tiles = maps.tiles()[:MAX_TILES]
    state = {"project": project, "split": maps.split, "method": maps.method, "checkpoint": maps.checkpoint_id}
    choices = [(caption(tile), str(i)) for i, tile in enumerate(tiles)]
    return (str(render_overview(maps, deps.data_dir)), status(maps, len(tiles)), state,
            gr.update(choices=choices, value=None))


def is_stale(deps: AppDeps, state: dict[str, Any] | None, project: str | None) -> bool:
    """Whether the maps shown were made with another model than the project's active one (a fine-tune was
    activated meanwhile), or for another project."""
    if not state or not project:
        return False
    if state.get("project") != project:
        return True
    try:
        return checkpoints.get_project_checkpoint(deps.engine, project, "active").id != state.get("checkpoint")
    except (ValueError, LookupError):
        return True


def tile_from_click(deps: AppDeps, state: dict[str, Any] | None, index: Any) -> tuple[int, tuple[int, int]] | None:
    """The map and cell under a click on the overview (`evt.index` = [x, y] in picture pixels), or None."""
    if not isinstance(index, list | tuple) or len(index) != 2:
        return None
    return hit(overview_layout(_maps(deps, state)), float(index[0]), float(index[1]))


def parse_cell(value: str | None) -> tuple[int, int] | None:
    """"r,c" (a cell choice's value) → `(r, c)`; None for anything else."""
    try:
        r, c = (int(v) for v in str(value).split(","))
    except ValueError:
        return None
    return (r, c) if 0 <= r < GRID and 0 <= c < GRID else None


def select(deps: AppDeps, state: dict[str, Any] | None, tile: int | str | None, cell: tuple[int, int] | None
           ) -> tuple[str, str, str, dict[str, Any], dict[str, Any]]:
    """Map `tile` with `cell` outlined (its peak cell when None) and the gallery region it selects.

    Returns `(overview picture, map choice value, cell choice value, view state, gallery region)`; the region
    is `{"ids", "shares", "label"}` as `explore.gallery_page` takes it.
    """
    maps = _maps(deps, state)
    tiles = maps.tiles()[:MAX_TILES]
    try:
        index = int(tile)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise gr.Error("Click a map (or choose one under Map) first.") from None
    if not 0 <= index < len(tiles):
        raise gr.Error(f"No map {index}: click one of the {len(tiles)} shown.")
    chosen = tiles[index]
    cell = cell or peak_cell(chosen)
    ranked = maps.rank(chosen, *cell)
    mean_share = sum(share for _, share in ranked) / max(1, len(ranked))
    label = (f"Ranked by row {cell[0] + 1}, column {cell[1] + 1} of the {GRID}×{GRID} grid on “{chosen.title}”: its "
             f"{len(ranked):,} images, most evidence there first (on average {mean_share:.0%} of an image's positive "
             f"evidence; an even spread would put {1 / GRID ** 2:.0%} there). “Show all images” clears it.")
    region = {"ids": [i for i, _ in ranked], "shares": [round(s, 4) for _, s in ranked], "label": label}
    picture = render_overview(maps, deps.data_dir, (index, cell))
    return str(picture), str(index), f"{cell[0]},{cell[1]}", {**(state or {}), "tile": index}, region


__all__ = ["CELL_CHOICES", "EXPLAINER", "METHOD_CHOICES", "is_stale", "parse_cell", "select", "show",
           "split_choices", "status", "tile_from_click"]
