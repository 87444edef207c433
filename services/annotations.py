"""Boxes of one image as the editor sees them: load a snapshot with revisions, save the edited boxes, undo.

The editor returns bare boxes (no ids), so `match_drafts` pairs them with the boxes the editor was loaded
with — identical boxes keep their id, overlapping ones become updates — and the store's `save_image_boxes`
checks every loaded revision: any change by someone else raises `ConflictError` and nothing is written.
Every save and undo first checks the project, the image's membership in it and (for saves) the number of
boxes, inside the one transaction that then writes: a refusal leaves the database exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from services.catalog import ImageInfo, ProjectInfo, image_info, project_info, require_image, require_project
from services.database import Database
from store.box_history import MAX_BOXES_PER_SAVE, box_history, check_box_count, save_image_boxes, undo_last_change
from store.boxes import BoxDraft, list_boxes
from store.db import session_scope
from store.models import Image, Project

Coords = tuple[float, float, float, float]
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class BoxView:
    """A live box as shown in the editor, in original image pixels."""

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
    scale: float = 1  # editor pixels per original pixel, a power of two (set by the UI, see ui.data.display)

    @property
    def revisions(self) -> dict[int, int]:
        """Box id -> revision the user saw."""
        return {b.box_id: b.revision for b in self.boxes}


@dataclass(frozen=True)
class HistoryRow:
    """One change of a box, as the history table shows it (fields in column order)."""

    when: str
    who: str
    what: str
    box: int
    label: str
    coords: str


@dataclass(frozen=True)
class ImageBoxes:
    """An image of a project with its live boxes (the snapshot to save against) and its newest history."""

    project: ProjectInfo
    image: ImageInfo
    snapshot: Snapshot
    history: tuple[HistoryRow, ...]


@dataclass(frozen=True)
class SavedBoxes:
    """What a save did, and the image's boxes afterwards (read in the same transaction)."""

    created: int
    updated: int
    deleted: int
    state: ImageBoxes

    @property
    def changed(self) -> int:
        """How many boxes the save changed."""
        return self.created + self.updated + self.deleted


@dataclass(frozen=True)
class UndoneChange:
    """What undo reverted (one line per box), and the image's boxes afterwards."""

    undone: tuple[str, ...]
    state: ImageBoxes

    @property
    def message(self) -> str:
        """A status line for the user."""
        return f"undone the last change: {'; '.join(self.undone)}"


def _state(session: Session, project: Project, image: Image, data_dir: Path) -> ImageBoxes:
    views = tuple(BoxView(b.id, b.revision, b.klass.name, (b.x0, b.y0, b.x1, b.y1), b.source, b.author)
                  for b in list_boxes(session, image.id))
    return ImageBoxes(project_info(session, project), image_info(image, data_dir),
                      Snapshot(image_id=image.id, boxes=views), _history(session, image.id))


def _history(session: Session, image_id: int, limit: int = HISTORY_LIMIT) -> tuple[HistoryRow, ...]:
    """Newest first: when, who, what, which box and label."""
    rows = []
    for e in reversed(box_history(session, image_id)[-limit:]):
        state = e.after or e.before or {}
        coords = ",".join(f"{state.get(k, 0):.0f}" for k in ("x0", "y0", "x1", "y1"))
        rows.append(HistoryRow(e.at.strftime("%Y-%m-%d %H:%M:%S"), e.author or "unknown",
                               e.action + (" (undo)" if e.undo_of_id else ""), e.box_id, state.get("label", ""),
                               coords))
    return tuple(rows)


def load_boxes(db: Database, project: str | None, image_id: int | float | None, *, data_dir: Path) -> ImageBoxes:
    """The project's image with its live boxes and history (ValueError / NotFoundError with what to do)."""
    with session_scope(db) as session:
        row = require_project(session, project)
        return _state(session, row, require_image(session, row, image_id), data_dir)


def save_boxes(db: Database, project: str | None, snapshot: Snapshot, edited: Sequence[tuple[str, Coords]], *,
               author: str, data_dir: Path, source: str = "user") -> SavedBoxes:
    """Make the image's live boxes equal `edited` (original pixels), all or nothing, in one transaction.

    Refused before anything is written: more than `MAX_BOXES_PER_SAVE` boxes (ValueError naming the limit),
    an unknown project or an image not in it (NotFoundError), a bad box or label (ValueError), and any change
    by someone else since `snapshot` was loaded (ConflictError).
    """
    check_box_count(len(edited))  # before any work: matching and validation grow with the box count
    with session_scope(db) as session:
        row = require_project(session, project)
        image = require_image(session, row, snapshot.image_id)
        result = save_image_boxes(session, image.id, match_drafts(snapshot, list(edited), source),
                                  snapshot.revisions, author, project_id=row.id)
        return SavedBoxes(result.created, result.updated, result.deleted, _state(session, row, image, data_dir))


def undo(db: Database, project: str | None, image_id: int | float | None, *, author: str,
         data_dir: Path) -> UndoneChange:
    """Revert the image's newest change (one save, by anyone) not yet undone; ValueError when nothing is left."""
    with session_scope(db) as session:
        row = require_project(session, project)
        image = require_image(session, row, image_id)
        events = undo_last_change(session, image.id, author, project_id=row.id)
        if not events:
            raise ValueError("nothing to undo on this image")
        undone = tuple(f"box {e.box_id} ({(e.before or e.after or {}).get('label', '')}) {e.action}d" for e in events)
        return UndoneChange(undone, _state(session, row, image, data_dir))


def match_drafts(snapshot: Snapshot, edited: list[tuple[str, Coords]], source: str = "user") -> list[BoxDraft]:
    """Drafts for `edited`, carrying the id of the loaded box each one continues (if any)."""
    pairs, _deleted, creates = _pair(list(snapshot.boxes), edited)
    drafts = [BoxDraft(label, *coords, id=view.box_id, source=view.source if (label, coords) == (view.label,
              view.coords) else source) for view, (label, coords) in pairs]
    return drafts + [BoxDraft(label, *coords, source=source) for label, coords in creates]


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


__all__ = [
    "MAX_BOXES_PER_SAVE", "BoxView", "Coords", "HistoryRow", "ImageBoxes", "SavedBoxes", "Snapshot", "UndoneChange",
    "load_boxes", "match_drafts", "save_boxes", "undo",
]
