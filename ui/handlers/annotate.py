"""Annotate: load an image's boxes into the editor, propose a box, save with conflict checks, undo, history."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import gradio as gr
import pandas as pd

from services.explanations import propose_box
from store.db import session_scope
from store.errors import ConflictError
from store.models import Image
from store.paths import resolve_image_path
from ui.data.boxes import Coords, Snapshot, history, load_snapshot, save_boxes, undo_last
from ui.data.display import display_image, display_scale, scale_box
from ui.data.images import neighbour_image
from ui.deps import AppDeps
from ui.handlers.common import require_image, require_project, transaction, user_errors
from ui.handlers.explain import LAYERS, METHODS, compute, explain_request, resolve_checkpoint

log = logging.getLogger(__name__)

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c"]
HISTORY_COLUMNS = ["when", "who", "what", "box", "label", "coords"]


def _editor_value(image_path: str, snapshot: Snapshot, colours: dict[str, str]) -> dict[str, Any]:
    """The editor's value: the display PNG and the boxes at display scale (original pixels × scale)."""
    boxes = [scale_box({"xmin": b.coords[0], "ymin": b.coords[1], "xmax": b.coords[2], "ymax": b.coords[3],
                        "label": b.label, "color": colours.get(b.label, PALETTE[0])}, snapshot.scale)
             for b in snapshot.boxes]
    return {"image": image_path, "boxes": boxes, "orientation": 0}


def editor_image(deps: AppDeps, image: Image) -> tuple[str, float]:
    """The PNG the editor shows for `image` (small images enlarged, huge ones reduced; cached) and its scale."""
    scale = display_scale(image.width, image.height)
    source = resolve_image_path(image.path, deps.data_dir)
    shown = display_image(source, deps.data_dir / "cache" / "display", f"i{image.id}-{image.sha256[:12]}", scale)
    return str(shown), scale


def label_colours(labels: list[str]) -> dict[str, str]:
    """A stable colour per class name."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(labels)}


def _history_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def load_annotation(deps: AppDeps, project: str, image_id: int | None
                    ) -> tuple[dict[str, Any], Snapshot, pd.DataFrame, str]:
    """The editor value (PNG path + boxes), the snapshot to save against, the history table and a title."""
    with transaction(deps) as session:
        proj = require_project(session, project)
        image = require_image(session, proj, image_id)
        path, scale = editor_image(deps, image)
        snapshot = replace(load_snapshot(session, image.id), scale=scale)
        rows = history(session, image.id)
        labels = [c.name for c in proj.classes]
        shown = f" (shown ×{scale})" if scale > 1 else f" (shown at 1/{round(1 / scale)})" if scale < 1 else ""
        title = (f"Image **#{image.id}** `{image.path}` · {image.width}×{image.height}{shown} · "
                 f"{len(snapshot.boxes)} box(es)")
    return _editor_value(path, snapshot, label_colours(labels)), snapshot, _history_frame(rows), title


def edited_boxes(value: dict[str, Any] | None, scale: float = 1) -> list[tuple[str, Coords]]:
    """`(label, (x0, y0, x1, y1))` in original pixels for every box of an editor value shown at `scale`."""
    boxes = [scale_box(b, 1 / scale) for b in (value or {}).get("boxes") or []]
    return [(str(b.get("label", "")).strip(), (b["xmin"], b["ymin"], b["xmax"], b["ymax"])) for b in boxes]


def save_annotation(deps: AppDeps, project: str, snapshot: Snapshot | None, value: dict[str, Any] | None,
                    author: str) -> tuple[dict[str, Any], Snapshot, pd.DataFrame, str, str]:
    """Save the editor's boxes. Returns the reloaded editor state plus a status line.

    A stale edit is never written: on conflict the editor reloads the stored boxes and the status
    says "Conflict: ..."; a bad label or box raises `gr.Error` and changes nothing.
    """
    if snapshot is None:
        raise gr.Error("Load an image first (select one in Explore, then open Annotate).")
    boxes = edited_boxes(value, snapshot.scale)
    try:
        with user_errors(), session_scope(deps.engine) as session:
            changed = save_boxes(session, snapshot, boxes, author=author)
    except ConflictError as exc:  # user_errors lets it through only here: reload instead of failing
        reloaded = load_annotation(deps, project, snapshot.image_id)
        gr.Warning("Someone else changed this image's boxes; their version is loaded. Re-apply your edit.")
        return (*reloaded, f"Conflict: {exc} — the editor now shows the stored boxes.")
    reloaded = load_annotation(deps, project, snapshot.image_id)
    return (*reloaded, f"Saved {changed} change(s) as {author}." if changed else "Nothing to save: no changes.")


def undo_annotation(deps: AppDeps, project: str, snapshot: Snapshot | None, author: str
                    ) -> tuple[dict[str, Any], Snapshot, pd.DataFrame, str, str]:
    """Undo the newest change on the image (by anyone) and reload the editor."""
    if snapshot is None:
        raise gr.Error("Load an image first (select one in Explore).")
    with transaction(deps) as session:
        message = undo_last(session, snapshot.image_id, author=author)
    return (*load_annotation(deps, project, snapshot.image_id), message)


def step_image(deps: AppDeps, project: str, image_id: int | None, step: int) -> int:
    """The id of the next/previous image (by split and name), or the same id at either end."""
    with transaction(deps) as session:
        proj = require_project(session, project)
        image = require_image(session, proj, image_id)
        found = neighbour_image(session, proj.id, image.id, step)
    if found is None:
        gr.Info("No more images in that direction.")
    return found or image.id


def propose_from_explanation(deps: AppDeps, project: str, image_id: int | None, value: dict[str, Any] | None,
                             method: str, layer: str) -> tuple[dict[str, Any], str]:
    """Add a box around the strongest evidence for the predicted class to the editor (not saved yet)."""
    with transaction(deps) as session:
        proj = require_project(session, project)
        image = require_image(session, proj, image_id)
        request = explain_request(deps, session, proj, image, resolve_checkpoint(session, proj, None))
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

