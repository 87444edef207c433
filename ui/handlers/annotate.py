"""Annotate: load an image's boxes into the editor, save with conflict checks (keeping the unsaved edit), undo
(asking before undoing someone else's change), the boxes table and history.

The tab's handlers return a dict of output name -> value (`VIEW_OUTPUTS`); names left out keep their component
as it is. The plain functions (`load_annotation`, `save_annotation`, `undo_annotation`) return tuples for scripts
and tests.

The label of new boxes: the editor runs with `use_default_label`, so a new box takes the editor's default label
without a pop-up. The page script (ui/layout.py, KEYS_JS) keeps that default equal to the "Label for new boxes"
choice (number keys 1-9 pick it) by driving the editor's own "Edit label" dialog. A new box that still arrives
unlabelled (the editor mounted before it knew the project's classes) gets the chosen label here, on the server.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from typing import Any

import gradio as gr
import pandas as pd

from services import annotations
from services.annotation_queue import next_needing_box, proposal_model
from services.annotations import Coords, ImageBoxes, Snapshot, UndoConfirmation
from services.catalog import GalleryFilter, ImageInfo, neighbour_image, page_images
from services.errors import ConflictError
from services.explanations import propose_box
from ui.data.display import display_image, display_scale, scale_box
from ui.deps import AppDeps
from ui.handlers.common import plain_markdown, user_errors
from ui.handlers.explain import compute, target

log = logging.getLogger(__name__)

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c"]
HISTORY_COLUMNS = ["when", "who", "what", "box", "label", "coords"]
BOX_COLUMNS = ["label", "x0, y0, x1, y1", "source", "author"]
UNDO_LABEL = "Undo my last save"
VIEW_OUTPUTS = ("editor", "snapshot", "boxes", "history", "title", "label", "pending", "pending_panel",
                "pending_editor", "undo_armed", "undo_button", "proposal", "proposal_note", "image_id", "queue",
                "queue_panel", "queue_note", "status")

Loaded = tuple[dict[str, Any], Snapshot, pd.DataFrame, str]
View = dict[str, Any]
Edited = list[tuple[str, Coords]]


@dataclass(frozen=True)
class Pending:
    """An edit a save could not write because someone else saved first: what it was made on, and its boxes."""

    loaded: Snapshot
    boxes: tuple[tuple[str, Coords], ...]


def label_colours(labels: list[str]) -> dict[str, str]:
    """A stable colour per class name, as `#rrggbb` (what the editor's `label_colors` takes)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(labels)}


def box_colour(hex_colour: str) -> str:
    """`#rrggbb` as `rgb(r, g, b)`: the only colour form the editor draws a box in (and sends back)."""
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def _editor_boxes(boxes: list[tuple[str, Coords]], scale: float, colours: dict[str, str]) -> list[dict[str, Any]]:
    """Editor boxes at display scale (original pixels × scale), in their class colour."""
    return [scale_box({"xmin": c[0], "ymin": c[1], "xmax": c[2], "ymax": c[3], "label": label,
                       "color": box_colour(colours.get(label, PALETTE[0]))}, scale) for label, c in boxes]


def _editor_value(image_path: str, snapshot: Snapshot, colours: dict[str, str]) -> dict[str, Any]:
    """The editor's value: the display PNG and the stored boxes at display scale."""
    boxes = _editor_boxes([(b.label, b.coords) for b in snapshot.boxes], snapshot.scale, colours)
    return {"image": image_path, "boxes": boxes, "orientation": 0}


def editor_image(deps: AppDeps, image: ImageInfo) -> tuple[str, float]:
    """The PNG the editor shows for `image` (small images enlarged, huge ones reduced; cached) and its scale."""
    scale = display_scale(image.width, image.height)
    shown = display_image(image.file, deps.data_dir / "cache" / "display", f"i{image.id}-{image.sha256[:12]}", scale)
    return str(shown), scale


def _present(deps: AppDeps, state: ImageBoxes) -> Loaded:
    """The editor value (display PNG + boxes), the snapshot to save against, the history table and a title."""
    image = state.image
    with user_errors():  # a missing or unreadable image file
        path, scale = editor_image(deps, image)
    snapshot = replace(state.snapshot, scale=scale)
    shown = f" (shown ×{scale:g})" if scale > 1 else f" (shown at 1/{round(1 / scale)})" if scale < 1 else ""
    # names and paths come from users (a class folder may be called `<img src=x onerror=…>`): shown as text
    labels = f" · labelled **{plain_markdown(', '.join(state.labels))}**" if state.labels else ""
    title = (f"Image **#{image.id}** {plain_markdown(image.path)} · {image.split} · {image.width}×{image.height}"
             f"{shown}{labels} · {len(snapshot.boxes)} saved box(es)")
    history = pd.DataFrame([asdict(row) for row in state.history], columns=HISTORY_COLUMNS)
    return _editor_value(path, snapshot, label_colours(list(state.project.classes))), snapshot, history, title


def boxes_table(snapshot: Snapshot) -> pd.DataFrame:
    """The image's saved boxes: label, coordinates (original pixels), source, author."""
    rows = [(b.label, ", ".join(f"{v:g}" for v in b.coords), b.source, b.author) for b in snapshot.boxes]
    return pd.DataFrame(rows, columns=BOX_COLUMNS)


def label_choices(classes: list[str]) -> list[tuple[str, str]]:
    """Radio choices '1 · cat' for the first nine classes (their number key picks them), the name after that."""
    return [(f"{i + 1} · {name}" if i < 9 else name, name) for i, name in enumerate(classes)]


def default_label(state: ImageBoxes, chosen: str | None) -> str | None:
    """The label new boxes take on this image: its class on single-label projects, else the one chosen before."""
    classes = list(state.project.classes)
    if not state.project.multi_label and state.labels:
        return state.labels[0]
    return chosen if chosen in classes else (classes[0] if classes else None)


def view(deps: AppDeps, state: ImageBoxes, *, chosen: str | None = None, relabel: bool = False) -> View:
    """The tab's outputs for `state`: editor (with the project's labels and colours when `relabel`), snapshot,
    boxes table, history, title; the label choice (reset to the image's default when `relabel`)."""
    value, snapshot, history, title = _present(deps, state)
    out: View = {"editor": value, "snapshot": snapshot, "boxes": boxes_table(snapshot), "history": history,
                 "title": title}
    if relabel:
        classes = list(state.project.classes)
        colours = label_colours(classes)
        out["editor"] = gr.update(value=value, label_list=classes, label_colors=[colours[c] for c in classes])
        out["label"] = gr.update(choices=label_choices(classes), value=default_label(state, chosen))
    return out


def calm(**extra: Any) -> View:
    """Outputs that clear a conflict panel, a pending undo confirmation and an old proposal."""
    return {"pending": None, "pending_panel": gr.update(visible=False), "undo_armed": None,
            "undo_button": gr.update(value=UNDO_LABEL, variant="secondary"), "proposal": None,
            "proposal_note": gr.update(value="", visible=False), **extra}


def load_annotation(deps: AppDeps, project: str, image_id: int | None) -> Loaded:
    """The editor value (PNG path + boxes), the snapshot to save against, the history table and a title."""
    with user_errors():
        state = annotations.load_boxes(deps.engine, project, image_id, data_dir=deps.data_dir)
    return _present(deps, state)


def load_view(deps: AppDeps, project: str, image_id: int | None, chosen: str | None = None) -> View:
    """Everything the tab shows for a newly selected image (no image: a hint in the title)."""
    if not image_id:
        return {"editor": None, "snapshot": None, "boxes": None, "history": None,
                "title": "No image selected: **Next** opens the next training image without a box.", **calm()}
    with user_errors():
        state = annotations.load_boxes(deps.engine, project, image_id, data_dir=deps.data_dir)
    return {**view(deps, state, chosen=chosen, relabel=True), **calm()}


def edited_boxes(value: dict[str, Any] | None, scale: float = 1, chosen: str | None = None) -> Edited:
    """`(label, (x0, y0, x1, y1))` in original pixels for every box of an editor value shown at `scale`; a box
    that arrives unlabelled takes `chosen` (the label picked for new boxes) when one is given."""
    raw = (value or {}).get("boxes") or []
    for number, box in enumerate(raw, 1):  # a JSON `true` is an int to Python: refuse it by name, save nothing
        for key in ("xmin", "ymin", "xmax", "ymax"):
            coordinate = box.get(key) if isinstance(box, dict) else None
            if isinstance(coordinate, bool) or not isinstance(coordinate, int | float):
                raise gr.Error(f"Box {number}: {key} is {coordinate!r}, not a number of pixels. Nothing was saved.")
    boxes = [scale_box(b, 1 / scale) for b in raw]
    out = []
    for b in boxes:
        label = str(b.get("label") or "").strip() or (chosen or "")
        out.append((label, (b["xmin"], b["ymin"], b["xmax"], b["ymax"])))
    return out


def _pending_value(deps: AppDeps, state: ImageBoxes, pending: Pending) -> dict[str, Any]:
    """The read-only panel's value: the image with the user's unsaved boxes."""
    path, scale = editor_image(deps, state.image)
    boxes = _editor_boxes(list(pending.boxes), scale, label_colours(list(state.project.classes)))
    return {"image": path, "boxes": boxes, "orientation": 0}


def save_view(deps: AppDeps, project: str, snapshot: Snapshot | None, value: dict[str, Any] | None, author: str,
              *, chosen: str | None = None, proposal: tuple[str, Coords] | None = None) -> View:
    """Save the editor's boxes; the tab's outputs afterwards, with a status line.

    On a conflict nothing is written: the editor shows the stored boxes, and the user's unsaved boxes stay
    visible next to them (the "Your unsaved boxes" panel) until they are re-applied (`reapply_view`) or
    dropped. A bad label or box, too many boxes, or a project the image is not part of raise `gr.Error`.
    """
    if snapshot is None:
        raise gr.Error("Load an image first: pick one in Explore, or press Next for the next image without a box.")
    boxes = edited_boxes(value, snapshot.scale, chosen)
    try:
        with user_errors(conflicts=False):
            saved = annotations.save_boxes(deps.engine, project, snapshot, boxes, author=author,
                                           data_dir=deps.data_dir, proposed=[proposal] if proposal else ())
    except ConflictError as exc:  # user_errors lets it through only here: keep the edit, show both versions
        with user_errors():
            state = annotations.load_boxes(deps.engine, project, snapshot.image_id, data_dir=deps.data_dir)
        pending = Pending(snapshot, tuple(boxes))
        gr.Warning("Someone else saved this image first: their boxes are in the editor, yours are kept beside it.")
        return {**view(deps, state), "pending": pending, "pending_panel": gr.update(visible=True),
                "pending_editor": _pending_value(deps, state, pending),
                "status": f"Conflict: {exc} The editor shows the stored boxes; yours are kept beside them "
                          "('Re-apply my edit')."}
    status = f"Saved {saved.changed} change(s) as {author}." if saved.changed else "Nothing to save: no changes."
    return {**view(deps, saved.state), **calm(status=status)}


def save_annotation(deps: AppDeps, project: str, snapshot: Snapshot | None, value: dict[str, Any] | None,
                    author: str) -> tuple[dict[str, Any], Snapshot, pd.DataFrame, str, str]:
    """Save the editor's boxes: `(editor value, snapshot, history, title, status)` afterwards.

    On conflict nothing is written, the editor value is the stored boxes and the status says "Conflict: ...".
    """
    out = save_view(deps, project, snapshot, value, author)
    return out["editor"], out["snapshot"], out["history"], out["title"], out["status"]


def reapply_view(deps: AppDeps, project: str, pending: Pending | None) -> View:
    """Put the user's unsaved edit back onto the stored boxes (a merge, see `annotations.merge_edit`), unsaved."""
    if pending is None:
        raise gr.Error("There is no unsaved edit to re-apply.")
    with user_errors():
        state = annotations.load_boxes(deps.engine, project, pending.loaded.image_id, data_dir=deps.data_dir)
    merged = annotations.merge_edit(pending.loaded, pending.boxes, state.snapshot)
    out = view(deps, state)
    colours = label_colours(list(state.project.classes))
    out["editor"] = {**out["editor"], "boxes": _editor_boxes(list(merged.boxes), out["snapshot"].scale, colours)}
    kept = f" Kept someone else's newer version of: {'; '.join(merged.kept)}." if merged.kept else ""
    out["status"] = (f"Re-applied {merged.applied} of your change(s) onto the stored boxes (not saved yet).{kept} "
                     "Check the editor, then Save.")
    return out


def undo_view(deps: AppDeps, project: str, snapshot: Snapshot | None, armed: int | None, author: str,
              *, confirm: bool = False) -> View:
    """Undo the user's own last save on the image. Someone else's change or an import asks first: the first
    click arms the button (status says whose change it is), the second undoes it (or `confirm=True`). A tab
    that has not seen the newest change is refused and shown the stored boxes."""
    if snapshot is None:
        raise gr.Error("Load an image first: pick one in Explore, or press Next.")
    try:
        with user_errors(conflicts=False):
            result = annotations.undo(deps.engine, project, snapshot.image_id, author=author, data_dir=deps.data_dir,
                                      snapshot=snapshot, confirm=True if confirm else (armed or False))
    except ConflictError as exc:
        with user_errors():
            state = annotations.load_boxes(deps.engine, project, snapshot.image_id, data_dir=deps.data_dir)
        return {**view(deps, state), **calm(status=f"Conflict: {exc} The editor now shows the stored boxes.")}
    if isinstance(result, UndoConfirmation):
        return {"undo_armed": result.change_id, "undo_button": gr.update(value="Confirm undo", variant="stop"),
                "status": result.message}
    return {**view(deps, result.state), **calm(status=result.message)}


def undo_annotation(deps: AppDeps, project: str, snapshot: Snapshot | None, author: str, *, confirm: bool = False
                    ) -> tuple[dict[str, Any], Snapshot, pd.DataFrame, str, str]:
    """Undo the user's last save (someone else's change only with `confirm`); `(editor value, snapshot,
    history, title, status)` afterwards, the stored boxes unchanged when confirmation is needed."""
    out = undo_view(deps, project, snapshot, None, author, confirm=confirm)
    if "editor" not in out:  # a confirmation is needed: nothing changed
        value, snap, history, title = load_annotation(deps, project, snapshot.image_id if snapshot else None)
        return value, snap, history, title, out["status"]
    return out["editor"], out["snapshot"], out["history"], out["title"], out["status"]


def next_image_needing_box(deps: AppDeps, project: str, image_id: int | None) -> int | None:
    """The next training image without a box after `image_id` (None: from the first), or None if there is none."""
    with user_errors():
        return next_needing_box(deps.engine, project, image_id)


def step_image(deps: AppDeps, project: str, image_id: int | None, step: int) -> Any:
    """The id of the next/previous image (by split and name), the same id at either end; with no image picked,
    the next training image without a box (else the first image). A failure is a warning, never "Error" in
    the image-id box: the box is then left as it was."""
    try:
        with user_errors():
            if not image_id:
                found = next_needing_box(deps.engine, project, None) or _first_image(deps, project)
            else:
                found = neighbour_image(deps.engine, project, image_id, step)
    except gr.Error as exc:
        gr.Warning(str(exc))
        return gr.skip()
    if found is None:
        gr.Info("No more images in that direction." if image_id else "This project has no images yet.")
        return int(image_id) if image_id else gr.skip()
    return found


def _first_image(deps: AppDeps, project: str) -> int | None:
    page = page_images(deps.engine, project, GalleryFilter(), page=0, page_size=1, data_dir=deps.data_dir)
    return page.rows[0].image_id if page.rows else None


@dataclass(frozen=True)
class Proposal:
    """A proposed box put in the editor (not saved) and where it came from."""

    value: dict[str, Any]  # the editor value with the box in front
    box: tuple[str, Coords]  # (label, coords) in original pixels
    status: str
    model: str  # "the guided model #5 (run 3, epoch 2)" / "the active model #1"
    guided: bool  # False: the box shows where the unguided model looks, not where the object is


def propose(deps: AppDeps, project: str, image_id: int | None, value: dict[str, Any] | None, method: str = "",
            layer: str = "", class_name: str = "") -> Proposal:
    """A box around the strongest evidence for `class_name` (empty: the predicted class), added in front of the
    editor's boxes (not saved). It comes from `proposal_model`: the best guided checkpoint, else the active model.
    """
    with user_errors():
        model = proposal_model(deps.engine, project)
    chosen = target(deps, project, image_id, model.checkpoint_id)
    request, image = chosen.request, chosen.image
    with user_errors():
        path, scale = editor_image(deps, image)
    result = compute(deps, request, method or "B-cos", layer or "Input",
                     class_name if class_name in request.classes else "")
    box = propose_box(result.map())
    if box is None:
        raise gr.Error("The explanation has no positive evidence to propose a box from; draw one by hand.")
    x0, y0, x1, y1 = (min(v / result.map_scale, limit) for v, limit in zip(box, (image.width, image.height) * 2,
                                                                           strict=True))
    coords: Coords = (x0, y0, x1, y1)
    label = request.classes[result.key.class_index]
    value = dict(value or {"image": path, "boxes": [], "orientation": 0})
    [shown] = _editor_boxes([(label, coords)], scale, label_colours(request.classes))  # the editor shows ×scale
    value["boxes"] = [shown, *(value.get("boxes") or [])]
    used = f"{method or 'B-cos'} explanation of {model.description}"
    guided = "" if model.guided else " (not guided with boxes yet: check where it is)"
    status = f"Proposed a {label!r} box from the {used}{guided}; adjust it if needed, then Save."
    return Proposal(value, (label, coords), status, model.description, model.guided)


def propose_from_explanation(deps: AppDeps, project: str, image_id: int | None, value: dict[str, Any] | None,
                             method: str, layer: str, class_name: str = "") -> tuple[dict[str, Any], str]:
    """`propose` for scripts and tests: the editor value with the proposed box in front, and a status line."""
    proposal = propose(deps, project, image_id, value, method, layer, class_name)
    return proposal.value, proposal.status
