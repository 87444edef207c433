"""Boxes of one image as the editor sees them: a snapshot with revisions, the save diff, history.

The editor returns bare boxes (no ids), so `match_drafts` pairs them with the boxes the editor was
loaded with — identical boxes keep their id, overlapping ones become updates — and the store's
`save_image_boxes` checks every loaded revision: any change by someone else raises `ConflictError`
and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from store.box_history import box_history, save_image_boxes, undo_last_change
from store.boxes import BoxDraft, list_boxes
from store.projects import get_image

Coords = tuple[float, float, float, float]


@dataclass(frozen=True)
class BoxView:
    """A live box as shown in the editor."""

    box_id: int
    revision: int
    label: str
    coords: Coords
    source: str
    author: str


@dataclass(frozen=True)
class Snapshot:
    """What the editor was loaded with: the basis of the next save."""

    image_id: int
    boxes: tuple[BoxView, ...]
    scale: float = 1  # editor pixels per original pixel, a power of two (see ui.data.display)

    @property
    def revisions(self) -> dict[int, int]:
        """Box id -> revision the user saw."""
        return {b.box_id: b.revision for b in self.boxes}


def load_snapshot(session: Session, image_id: int) -> Snapshot:
    """The image's live boxes with their revisions."""
    get_image(session, image_id)  # NotFoundError for a deleted image
    views = tuple(BoxView(b.id, b.revision, b.klass.name, (b.x0, b.y0, b.x1, b.y1), b.source, b.author)
                  for b in list_boxes(session, image_id))
    return Snapshot(image_id=image_id, boxes=views)


def match_drafts(snapshot: Snapshot, edited: list[tuple[str, Coords]], source: str = "user") -> list[BoxDraft]:
    """Drafts for `edited`, carrying the id of the loaded box each one continues (if any)."""
    pairs, _deleted, creates = _pair(list(snapshot.boxes), edited)
    drafts = [BoxDraft(label, *coords, id=view.box_id, source=view.source if (label, coords) == (view.label,
              view.coords) else source) for view, (label, coords) in pairs]
    return drafts + [BoxDraft(label, *coords, source=source) for label, coords in creates]


def save_boxes(session: Session, snapshot: Snapshot, edited: list[tuple[str, Coords]], *, author: str,
               source: str = "user") -> int:
    """Make the image's live boxes equal `edited`; return how many boxes changed. Never commits.

    Raises ConflictError when the image changed since `snapshot`, ValueError for a bad box or label.
    """
    result = save_image_boxes(session, snapshot.image_id, match_drafts(snapshot, edited, source),
                              snapshot.revisions, author)
    return result.created + result.updated + result.deleted


def undo_last(session: Session, image_id: int, *, author: str) -> str:
    """Revert the newest change (one save) not yet undone; say what was undone (ValueError when nothing is left)."""
    events = undo_last_change(session, image_id, author)
    if not events:
        raise ValueError("nothing to undo on this image")
    parts = [f"box {e.box_id} ({(e.before or e.after or {}).get('label', '')}) {e.action}d" for e in events]
    return f"undone the last change: {'; '.join(parts)}"


def _pair(old: list[BoxView], new: list[tuple[str, Coords]]) -> tuple[list[tuple[BoxView, tuple[str, Coords]]],
                                                                      list[BoxView], list[tuple[str, Coords]]]:
    """Match edited boxes to loaded ones: identical first, then by overlap; the rest are deletes/creates."""
    old_left, new_left = list(old), list(new)
    pairs = []
    for item in list(new_left):
        same = next((o for o in old_left if (o.label, o.coords) == item), None)
        if same is not None:
            pairs.append((same, item))
            old_left.remove(same)
            new_left.remove(item)
    for item in list(new_left):
        best = max(old_left, key=lambda o: _iou(o.coords, item[1]), default=None)
        if best is not None and _iou(best.coords, item[1]) > 0.0:
            pairs.append((best, item))
            old_left.remove(best)
            new_left.remove(item)
    return pairs, old_left, new_left


def _iou(a: Coords, b: Coords) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def history(session: Session, image_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """Newest first: when, who, what, which box and label, as plain rows for a table."""
    rows = []
    for e in reversed(box_history(session, image_id)[-limit:]):
        state = e.after or e.before or {}
        what = e.action + (" (undo)" if e.undo_of_id else "")
        coords = ",".join(f"{state.get(k, 0):.0f}" for k in ("x0", "y0", "x1", "y1"))
        rows.append({"when": e.at.strftime("%Y-%m-%d %H:%M:%S"), "who": e.author or "unknown", "what": what,
                     "box": e.box_id, "label": state.get("label", ""), "coords": coords})
    return rows
