"""Annotate: proposals from the guided model, and the "Annotate next" queue (accept / adjust / reject).

The queue (services.annotation_queue) ranks the training images without a box where a box helps most. Each image
opens with a proposed box already in the editor; Accept (Enter or A) saves the editor as it is, with the box
adjusted or not, and opens the next image; Reject (R) opens the next image without saving.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from services.annotation_queue import QUEUE_LIMIT, AnnotationQueue, annotation_queue
from services.annotations import Coords, Snapshot
from ui.deps import AppDeps
from ui.handlers.annotate import Proposal, View, load_view, propose, save_view
from ui.handlers.common import user_errors

log = logging.getLogger(__name__)

GUIDED_NOTE = "Proposed by {model}, fine-tuned with your boxes: adjust the box if needed, then save."
SHORTCUT_NOTE = ("⚠ **Proposed by {model}, which has not been guided with boxes yet: the box shows where the "
                 "model looks now, not where the object is.** Move or resize it onto the object before saving.")


def _note(proposal: Proposal) -> dict[str, Any]:
    """The line above the editor saying which model proposed the box, and plainly so when it is unguided."""
    return gr.update(value=(GUIDED_NOTE if proposal.guided else SHORTCUT_NOTE).format(model=proposal.model),
                     visible=True)


def propose_view(deps: AppDeps, project: str, image_id: int | None, value: dict[str, Any] | None, method: str,
                 layer: str, chosen: str | None) -> View:
    """The "Propose from explanation" button: the editor with the proposal in front, and what it is."""
    proposal = propose(deps, project, image_id, value, method, layer, chosen or "")
    return {"editor": proposal.value, "proposal": proposal.box, "proposal_note": _note(proposal),
            "status": proposal.status}


def queue_note(queue: AnnotationQueue, image_id: int | None) -> str:
    """'Annotate next: image 2 of 6 — why it is here', and the keys."""
    ids = queue.image_ids
    if image_id not in ids:
        return f"**Annotate next**: {len(ids)} image(s) without a box. Accept (Enter/A) · Reject (R)."
    item = queue.items[ids.index(image_id)]
    ranked = "" if queue.evaluation_id is not None else " (no evaluation of the active model yet: in name order)"
    more = "+" if len(ids) >= QUEUE_LIMIT else ""  # the queue holds the first QUEUE_LIMIT images
    return (f"**Annotate next**{ranked}: image {ids.index(image_id) + 1} of {len(ids)}{more} · {item.reason}.  \n"
            "**Enter**/**A** accept (save as shown) · adjust the box first if needed · **R** reject (skip)")


def open_view(deps: AppDeps, project: str, image_id: int | None, chosen: str | None, queue: AnnotationQueue | None,
              method: str = "", layer: str = "") -> View:
    """A newly selected image; inside the queue, with the proposed box already in the editor."""
    out = load_view(deps, project, image_id, chosen)
    if queue is None or image_id not in queue.image_ids:
        return out
    out["queue_note"] = queue_note(queue, image_id)
    editor, label = out["editor"], out.get("label") or {}
    try:
        proposal = propose(deps, project, image_id, editor["value"], method, layer, label.get("value") or "")
    except gr.Error as exc:  # no positive evidence, no model: the image is still worth a hand-drawn box
        out["status"] = f"No proposal for this image ({exc}); draw the box by hand."
        return out
    out["editor"] = {**editor, "value": proposal.value}
    out.update(proposal=proposal.box, proposal_note=_note(proposal), status=proposal.status)
    return out


def start_queue(deps: AppDeps, project: str, image_id: int | None, chosen: str | None, method: str = "",
                layer: str = "") -> View:
    """Rank the training images without a box and open the first (with its proposal)."""
    with user_errors():
        queue = annotation_queue(deps.engine, project)
    if not queue.items:
        gr.Info("Every training image has a box: nothing to queue.")
        return {"queue": None, "queue_panel": gr.update(visible=False)}
    first = queue.items[0].image_id
    out: View = {"queue": queue, "queue_panel": gr.update(visible=True), "queue_note": queue_note(queue, first)}
    if image_id == first:  # already open: the image-id box will not change, so load it here
        return {**open_view(deps, project, first, chosen, queue, method, layer), **out}
    return {**out, "image_id": first}


def _advance(queue: AnnotationQueue | None, image_id: int | None, out: View) -> View:
    ids = queue.image_ids if queue else []
    rest = ids[ids.index(image_id) + 1:] if image_id in ids else ids
    if not rest:
        gr.Info("That was the last image of the queue.")
        return {**out, "queue": None, "queue_panel": gr.update(visible=False)}
    return {**out, "image_id": rest[0]}


def accept(deps: AppDeps, project: str, snapshot: Snapshot | None, value: dict[str, Any] | None, author: str,
           chosen: str | None, proposal: tuple[str, Coords] | None, queue: AnnotationQueue | None,
           image_id: int | None) -> View:
    """Save the editor as it is (the proposal, adjusted or not) and open the queue's next image."""
    out = save_view(deps, project, snapshot, value, author, chosen=chosen, proposal=proposal)
    if out.get("pending") is not None:  # a conflict: stay on this image
        return out
    return _advance(queue, image_id, out)


def reject(queue: AnnotationQueue | None, image_id: int | None) -> View:
    """Skip this image without saving and open the queue's next one."""
    return _advance(queue, image_id, {"status": f"Skipped image #{image_id} (nothing saved)."})
