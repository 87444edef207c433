"""Annotate: load an image's boxes into the editor, propose a box, save with conflict checks, undo, history."""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from typing import Any

import gradio as gr
import pandas as pd

from services import annotations, catalog
from services.annotations import Coords, ImageBoxes, Snapshot
from services.catalog import ImageInfo
from services.errors import ConflictError
from services.explanations import propose_box
from ui.data.display import display_image, display_scale, scale_box
from ui.deps import AppDeps
from ui.handlers.common import user_errors
from ui.handlers.explain import LAYERS, METHODS, compute, target

log = logging.getLogger(__name__)

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c"]
HISTORY_COLUMNS = ["when", "who", "what", "box", "label", "coords"]

Loaded = tuple[dict[str, Any], Snapshot, pd.DataFrame, str]


def _editor_value(image_path: str, snapshot: Snapshot, colours: dict[str, str]) -> dict[str, Any]:
    """The editor's value: the display PNG and the boxes at display scale (original pixels × scale)."""
    boxes = [scale_box({"xmin": b.coords[0], "ymin": b.coords[1], "xmax": b.coords[2], "ymax": b.coords[3],
                        "label": b.label, "color": colours.get(b.label, PALETTE[0])}, snapshot.scale)
             for b in snapshot.boxes]
    return {"image": image_path, "boxes": boxes, "orientation": 0}


def editor_image(deps: AppDeps, image: ImageInfo) -> tuple[str, float]:
    """The PNG the editor shows for `image` (small images enlarged, huge ones reduced; cached) and its scale."""
    scale = display_scale(image.width, image.height)
    shown = display_image(image.file, deps.data_dir / "cache" / "display", f"i{image.id}-{image.sha256[:12]}", scale)
    return str(shown), scale


def label_colours(labels: list[str]) -> dict[str, str]:
    """A stable colour per class name."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(labels)}


def _present(deps: AppDeps, state: ImageBoxes) -> Loaded:
    """The editor value (display PNG + boxes), the snapshot to save against, the history table and a title."""
    image = state.image
    with user_errors():  # a missing or unreadable image file
        path, scale = editor_image(deps, image)
    snapshot = replace(state.snapshot, scale=scale)
    shown = f" (shown ×{scale})" if scale > 1 else f" (shown at 1/{round(1 / scale)})" if scale < 1 else ""
    title = (f"Image **#{image.id}** `{image.path}` · {image.width}×{image.height}{shown} · "
             f"{len(snapshot.boxes)} box(es)")
    history = pd.DataFrame([asdict(row) for row in state.history], columns=HISTORY_COLUMNS)
    return _editor_value(path, snapshot, label_colours(list(state.project.classes))), snapshot, history, title


def load_annotation(deps: AppDeps, project: str, image_id: int | None) -> Loaded:
    """The editor value (PNG path + boxes), the snapshot to save against, the history table and a title."""
    with user_errors():
        state = annotations.load_boxes(deps.engine, project, image_id, data_dir=deps.data_dir)
    return _present(deps, state)


def edited_boxes(value: dict[str, Any] | None, scale: float = 1) -> list[tuple[str, Coords]]:
    """`(label, (x0, y0, x1, y1))` in original pixels for every box of an editor value shown at `scale`."""
    boxes = [scale_box(b, 1 / scale) for b in (value or {}).get("boxes") or []]
    return [(str(b.get("label", "")).strip(), (b["xmin"], b["ymin"], b["xmax"], b["ymax"])) for b in boxes]


def save_annotation(deps: AppDeps, project: str, snapshot: Snapshot | None, value: dict[str, Any] | None,
                    author: str) -> tuple[dict[str, Any], Snapshot, pd.DataFrame, str, str]:
    """Save the editor's boxes. Returns the reloaded editor state plus a status line.

    A stale edit is never written: on conflict the editor reloads the stored boxes and the status
    says "Conflict: ..."; a bad label or box, too many boxes, or a project the image is not part of
    raise `gr.Error` and change nothing.
    """
    if snapshot is None:
        raise gr.Error("Load an image first (select one in Explore, then open Annotate).")
    boxes = edited_boxes(value, snapshot.scale)
    try:
        with user_errors(conflicts=False):
            saved = annotations.save_boxes(deps.engine, project, snapshot, boxes, author=author,
                                           data_dir=deps.data_dir)
    except ConflictError as exc:  # user_errors lets it through only here: reload instead of failing
        reloaded = load_annotation(deps, project, snapshot.image_id)
        gr.Warning("Someone else changed this image's boxes; their version is loaded. Re-apply your edit.")
        return (*reloaded, f"Conflict: {exc} — the editor now shows the stored boxes.")
    status = f"Saved {saved.changed} change(s) as {author}." if saved.changed else "Nothing to save: no changes."
    return (*_present(deps, saved.state), status)


def undo_annotation(deps: AppDeps, project: str, snapshot: Snapshot | None, author: str
                    ) -> tuple[dict[str, Any], Snapshot, pd.DataFrame, str, str]:
    """Undo the newest change on the image (by anyone) and reload the editor."""
    if snapshot is None:
        raise gr.Error("Load an image first (select one in Explore).")
    with user_errors():
        undone = annotations.undo(deps.engine, project, snapshot.image_id, author=author, data_dir=deps.data_dir)
    return (*_present(deps, undone.state), undone.message)


def step_image(deps: AppDeps, project: str, image_id: int | None, step: int) -> int:
    """The id of the next/previous image (by split and name), or the same id at either end."""
    with user_errors():
        found = catalog.neighbour_image(deps.engine, project, image_id, step)
    if found is None:
        gr.Info("No more images in that direction.")
    return found or int(image_id or 0)


def propose_from_explanation(deps: AppDeps, project: str, image_id: int | None, value: dict[str, Any] | None,
                             method: str, layer: str) -> tuple[dict[str, Any], str]:
    """Add a box around the strongest evidence for the predicted class to the editor (not saved yet)."""
    chosen = target(deps, project, image_id)
    request, image = chosen.request, chosen.image
    with user_errors():
        path, scale = editor_image(deps, image)
    bounds = (image.width, image.height) * 2
    result = compute(deps, request, method or "B-cos", layer or "Input", "")
    box = propose_box(result.map())
    if box is None:
        raise gr.Error("The explanation has no positive evidence to propose a box from; draw one by hand.")
    box = tuple(min(v / result.map_scale, limit) for v, limit in zip(box, bounds))
    label = request.classes[result.key.class_index]
    value = dict(value or {"image": path, "boxes": [], "orientation": 0})
    proposal = scale_box({"xmin": box[0], "ymin": box[1], "xmax": box[2], "ymax": box[3], "label": label,
                          "color": label_colours(request.classes)[label]}, scale)  # editor shows it ×scale
    value["boxes"] = [proposal, *(value.get("boxes") or [])]
    used = f"{METHODS.get(method, method)} at {LAYERS.get(layer, layer)}"
    return value, f"Proposed a {label!r} box from the {used} explanation: adjust it, then Save."
