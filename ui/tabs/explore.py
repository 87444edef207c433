"""The Explore tab: filters with counts, "where the model looks, on average", and a paged gallery."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.deps import AppDeps
from ui.handlers import explore, mean_maps

FILTER_KEYS = ("split", "class", "group", "boxes")


def filter_updates(deps: AppDeps, project: str | None, current: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    """Choice updates (values with counts) for the split, class, group and boxes filters, keeping each current
    value that is still offered ("(any)" / "any" otherwise)."""
    options = explore.filter_options(deps, project)
    updates = []
    for key, value in zip(FILTER_KEYS, (*current, *[None] * len(FILTER_KEYS))):
        values = [v for _, v in options[key]]
        updates.append(gr.update(choices=options[key], value=value if value in values else values[0]))
    return tuple(updates)


def build_explore_tab(deps: AppDeps, project: gr.Dropdown, image_id: gr.Number) -> dict[str, Any]:
    """Widgets and wiring of the tab; returns the `(fn, inputs, outputs)` triples the page runs on load
    (`"load"`) and when the tab is shown again (`"select"`: counts and tiles after a save or an import)."""
    with gr.Row():
        split = gr.Dropdown([(explore.ANY, explore.ANY)], value=explore.ANY, label="Split", scale=1,
                            allow_custom_value=True, elem_id="filter-split")
        klass = gr.Dropdown([(explore.ANY, explore.ANY)], value=explore.ANY, label="Class", scale=1,
                            allow_custom_value=True, elem_id="filter-class")
        group = gr.Dropdown([(explore.ANY, explore.ANY)], value=explore.ANY, label="Group", scale=2,
                            allow_custom_value=True, elem_id="filter-group")
        annotated = gr.Dropdown([(b, b) for b in explore.BOXES], value="any", label="Boxes", scale=1,
                                allow_custom_value=True, elem_id="filter-boxes")
        wrong = gr.Checkbox(label="Wrong predictions only", scale=1)
        sort = gr.Dropdown(list(explore.SORT_LABELS), value="Name", label="Sort by", scale=2)
    with gr.Accordion("Where the model looks, on average", open=True, elem_id="mean-maps-section"):
        with gr.Row(equal_height=False):
            mm_split = gr.Dropdown([], label="Split", elem_id="mean-split", scale=1, min_width=140)
            mm_method = gr.Dropdown([("the model's own", ""), *mean_maps.METHOD_CHOICES], value="", label="Method",
                                    elem_id="mean-method", scale=1, min_width=160)
            mm_show = gr.Button("Show mean maps", elem_id="mean-show", scale=1, min_width=140)
            mm_tile = gr.Dropdown([], value=None, label="Map", elem_id="mean-map", scale=2, min_width=200)
            cell = gr.Dropdown(mean_maps.CELL_CHOICES, value=None, label="Region (cell of its grid)",
                               elem_id="mean-cell", scale=1, min_width=190)
            clear = gr.Button("Show all images", elem_id="mean-clear", scale=1, min_width=140)
        mm_status = gr.Markdown(elem_id="mean-status")
        # one picture, no floating label (it would cover the top-left corner, where shortcuts often sit)
        overview = gr.Image(show_label=False, type="filepath", format="png", interactive=False, height=290,
                            elem_id="mean-maps", buttons=["fullscreen"])
        gr.Markdown(f"<small>{mean_maps.EXPLAINER}</small>")
    with gr.Row(equal_height=False):
        prev_page = gr.Button("◀ Previous page", size="sm", scale=0, min_width=150)
        page = gr.Number(0, label="Page (0-based)", precision=0, minimum=0, visible=False)
        summary = gr.Markdown(elem_id="gallery-summary")  # takes the width the buttons leave
        next_page = gr.Button("Next page ▶", size="sm", scale=0, min_width=150)
    # no floating label: it would cover the first tile's top-left corner, where shortcuts often sit
    gallery = gr.Gallery(show_label=False, columns=8, height=560, allow_preview=False, elem_id="gallery",
                         object_fit="contain", format="png")
    ids = gr.State([])
    region = gr.State(None)  # a mean-map cell's ranked images, or None: the filters decide
    mm_state = gr.State(None)
    filters = [split, klass, group, annotated]
    inputs = [project, *filters, wrong, sort, page, region]
    outputs = [gallery, summary, page, ids]
    tile_outputs = [overview, mm_status, mm_state, mm_tile]

    def refresh(*values: Any) -> tuple:
        return explore.gallery_page(deps, *values)

    def turn(step: int) -> Any:
        return lambda *v: explore.gallery_page(deps, *v[:-2], int(v[-2] or 0) + step, v[-1])

    def unfiltered(*v: Any) -> tuple:  # a filter changed: the filters decide again, from page 0
        return (*explore.gallery_page(deps, *v[:-2], 0, None), None)

    for widget in (*filters, wrong, sort):
        widget.change(unfiltered, inputs, [*outputs, region], api_visibility="private")
    prev_page.click(turn(-1), inputs, outputs, api_visibility="private")
    next_page.click(turn(1), inputs, outputs, api_visibility="private")

    def pick(ids_: list[int], evt: gr.SelectData) -> int | None:
        return ids_[evt.index] if ids_ and evt.index is not None and evt.index < len(ids_) else None

    gallery.select(pick, [ids], image_id, api_visibility="private")

    def tiles_for(name: str, split_value: str | None, method: str | None, compute: bool = False) -> tuple:
        choices, default = mean_maps.split_choices(deps, name)
        chosen = split_value if split_value in [v for _, v in choices] else default
        return (gr.update(choices=choices, value=chosen), *mean_maps.show(deps, name, chosen, method,
                                                                          compute=compute))

    def on_project(name: str) -> tuple:
        return (*filter_updates(deps, name), *tiles_for(name, None, ""))

    gr.on([project.change], on_project, project, [*filters, mm_split, *tile_outputs], api_name="filters").then(
        refresh, inputs, outputs, api_name="gallery")
    mm_show.click(lambda n, s, m: mean_maps.show(deps, n, s, m, compute=True), [project, mm_split, mm_method],
                  tile_outputs, api_name="mean_maps")
    for widget in (mm_split, mm_method):  # another split or method: show it if cached, else say to press Show
        widget.input(lambda n, s, m: mean_maps.show(deps, n, s, m, compute=False), [project, mm_split, mm_method],
                     tile_outputs, api_visibility="private")

    chosen = [overview, mm_tile, cell, mm_state, region]

    def on_click(state: Any, evt: gr.SelectData) -> tuple:
        found = mean_maps.tile_from_click(deps, state, evt.index)
        if found is None:  # a title, a gap or the legend
            raise gr.Error("Click inside a map: each is a grid of cells.")
        return mean_maps.select(deps, state, *found)

    def on_pick(state: Any, tile: str, value: str) -> tuple:
        return mean_maps.select(deps, state, tile, mean_maps.parse_cell(value))

    def first_page(*v: Any) -> tuple:
        return explore.gallery_page(deps, *v[:-2], 0, v[-1])

    overview.select(on_click, mm_state, chosen, api_visibility="private").success(first_page, inputs, outputs)
    mm_tile.input(lambda state, tile: mean_maps.select(deps, state, tile, None), [mm_state, mm_tile], chosen,
                  api_visibility="private").success(first_page, inputs, outputs)
    cell.input(on_pick, [mm_state, mm_tile, cell], chosen, api_visibility="private").success(first_page, inputs,
                                                                                            outputs)
    clear.click(lambda: (None, None), None, [region, cell], api_visibility="private").then(first_page, inputs,
                                                                                           outputs)

    def on_load(name: str, *current: Any) -> tuple:
        """Page load: filters with counts (keeping what is chosen), cached mean maps, the gallery."""
        updates = filter_updates(deps, name, current[:4])
        values = [u["value"] for u in updates]
        page_ = explore.gallery_page(deps, name, *values, current[4], current[5], 0, None) if name else \
            ([], "Pick or create a project.", 0, [])
        return (*updates, *tiles_for(name, current[6], current[7]), *page_, None)

    load_inputs = [project, *filters, wrong, sort, mm_split, mm_method]
    load_outputs = [*filters, mm_split, *tile_outputs, *outputs, region]

    def on_select(name: str, *current: Any) -> tuple:
        """The tab is shown again: counts may have changed (a save, an import); keep the region and page. Mean
        maps of a model that is no longer the active one give way to the active model's (when cached)."""
        updates = filter_updates(deps, name, current[:4])
        if not mean_maps.is_stale(deps, current[6], name):
            return (*updates, *[gr.skip()] * len(tile_outputs))
        return (*updates, *mean_maps.show(deps, name, current[4], current[5], compute=False))

    select_inputs = [project, *filters, mm_split, mm_method, mm_state]
    return {"load": (on_load, load_inputs, load_outputs), "select": (on_select, select_inputs,
                                                                     [*filters, *tile_outputs])}
