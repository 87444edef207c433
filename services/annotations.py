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
from store.box_history import (
    MAX_BOXES_PER_SAVE,
    box_history,
    check_box_count,
    last_change,
    save_image_boxes,
    undo_last_change,
)
from store.boxes import BoxDraft, image_label_names, list_boxes
from store.db import session_scope
from store.models import BoxEvent, Image, Project

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
    labels: tuple[str, ...] = ()  # the image's class labels


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
    whose: str = ""  # the author of the change undone

    @property
    def message(self) -> str:
        """A status line for the user."""
        return f"undone the last change{self.whose}: {'; '.join(self.undone)}"


@dataclass(frozen=True)
class UndoConfirmation:
    """Undo was not done: the change it would revert is someone else's or an import; `message` says whose and
    what, and asks to confirm (`undo(..., confirm=True)`). Nothing was written."""

    message: str
    change_id: int  # the newest event of the change that would be undone


def _state(session: Session, project: Project, image: Image, data_dir: Path) -> ImageBoxes:
    views = tuple(BoxView(b.id, b.revision, b.klass.name, (b.x0, b.y0, b.x1, b.y1), b.source, b.author)
                  for b in list_boxes(session, image.id))
    return ImageBoxes(project_info(session, project), image_info(image, data_dir),
                      Snapshot(image_id=image.id, boxes=views), _history(session, image.id),
                      tuple(image_label_names(session, image.id)))


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
               author: str, data_dir: Path, source: str = "user",
               proposed: Sequence[tuple[str, Coords]] = ()) -> SavedBoxes:
    """Make the image's live boxes equal `edited` (original pixels), all or nothing, in one transaction.

    New boxes are recorded with `source`, except those exactly equal to one of `proposed` (a box the app
    proposed and the user accepted as it was), recorded as "proposed".

    Refused before anything is written: more than `MAX_BOXES_PER_SAVE` boxes (ValueError naming the limit),
    an unknown project or an image not in it (NotFoundError), a bad box or label (ValueError), and any change
    by someone else since `snapshot` was loaded (ConflictError).
    """
    check_box_count(len(edited))  # before any work: matching and validation grow with the box count
    with session_scope(db) as session:
        row = require_project(session, project)
        image = require_image(session, row, snapshot.image_id)
        result = save_image_boxes(session, image.id, match_drafts(snapshot, list(edited), source, proposed),
                                  snapshot.revisions, author, project_id=row.id)
        return SavedBoxes(result.created, result.updated, result.deleted, _state(session, row, image, data_dir))


def undo(db: Database, project: str | None, image_id: int | float | None, *, author: str, data_dir: Path,
         snapshot: Snapshot | None = None, confirm: bool | int = False) -> UndoneChange | UndoConfirmation:
    """Revert `author`'s own newest save on the image; without one, the image's newest change by anyone.

    Someone else's change, or an import's boxes, are undone only with `confirm=True` (or `confirm` = the
    `change_id` of the `UndoConfirmation` the user saw, which confirms that change only): otherwise nothing is
    written and an `UndoConfirmation` says whose change it is and what it did. With `snapshot` (what the tab
    shows), a change the tab has not seen is refused with ConflictError (nothing written); so is undoing a save
    whose boxes someone changed afterwards. ValueError when nothing is left to undo.
    """
    with session_scope(db) as session:
        row = require_project(session, project)
        image = require_image(session, row, image_id)
        own = last_change(session, image.id, by=author)
        change = own or last_change(session, image.id)
        if not change:
            raise ValueError("nothing to undo on this image")
        confirmed = confirm is True or (not isinstance(confirm, bool) and confirm == change[0].id)
        if not own and not confirmed:
            return UndoConfirmation(_ask_to_undo(change), change[0].id)
        events = undo_last_change(session, image.id, author, project_id=row.id, by=author if own else None,
                                  expected_revisions=snapshot.revisions if snapshot is not None else None)
        undone = tuple(f"box {e.box_id} ({(e.before or e.after or {}).get('label', '')}) {e.action}d" for e in events)
        whose = "" if own else f" by {change[0].author or 'someone'}"
        return UndoneChange(undone, _state(session, row, image, data_dir), whose)


def _ask_to_undo(change: Sequence[BoxEvent]) -> str:
    """'The newest change here is bob's (…): box 3 'cat' created, …' and how to go ahead."""
    first = change[0]
    imported = any(e.action == "create" and (e.after or {}).get("source") == "imported" for e in change)
    whose = "an import's" if imported else f"{first.author or 'someone'}'s"
    what = "; ".join(f"box {e.box_id} ({(e.after or e.before or {}).get('label', '')}) {e.action}d" for e in change)
    kind = "imported boxes" if imported else "change"
    return (f"You have no change of your own to undo here. The newest change is {whose} "
            f"({first.at:%Y-%m-%d %H:%M:%S} UTC): {what}. Undo their {kind}? Click Undo again to confirm.")


@dataclass(frozen=True)
class MergedEdit:
    """An edit re-applied onto the stored boxes: the boxes to put in the editor and what happened."""

    boxes: tuple[tuple[str, Coords], ...]  # (label, coords) in original pixels
    applied: int  # how many of the user's changes (new, changed or removed boxes) were re-applied
    kept: tuple[str, ...]  # one line per change left out because someone else changed that box


DUPLICATE_IOU = 0.9  # a new box this close to a stored one of the same label is the same box drawn twice


def merge_edit(loaded: Snapshot, edited: Sequence[tuple[str, Coords]], current: Snapshot) -> MergedEdit:
    """Re-apply an edit made on `loaded` onto the image's `current` boxes (a three-way merge).

    The user's new boxes are added (unless the same box is already stored); their changes and removals are
    re-applied where the stored box is still the revision they loaded; where someone else changed or removed
    that box since, the stored version wins and `kept` says so. Nothing is written: the result goes back to
    the editor, to be saved against `current`.
    """
    pairs, removed, created = _pair(list(loaded.boxes), list(edited))
    stored = {b.box_id: b for b in current.boxes}
    merged: dict[int, tuple[str, Coords]] = {b.box_id: (b.label, b.coords) for b in current.boxes}
    applied, kept = 0, []
    for view, item in [*pairs, *((view, None) for view in removed)]:
        if item == (view.label, view.coords):
            continue  # loaded and left as it was
        now = stored.get(view.box_id)
        if now is None or now.revision != view.revision:
            whose = f"{now.author or 'someone'}'s version" if now else "it removed, as someone else did"
            kept.append(f"box {view.box_id} ({view.label}): kept {whose}")
        elif item is None:
            del merged[view.box_id]
            applied += 1
        else:
            merged[view.box_id] = item
            applied += 1
    new = []
    for label, coords in created:
        if any(label == other and _iou(coords, box) >= DUPLICATE_IOU for other, box in [*merged.values(), *new]):
            continue  # drawn in both tabs
        new.append((label, coords))
    return MergedEdit((*new, *merged.values()), applied + len(new), tuple(kept))


def match_drafts(snapshot: Snapshot, edited: list[tuple[str, Coords]], source: str = "user",
                 proposed: Sequence[tuple[str, Coords]] = ()) -> list[BoxDraft]:
    """Drafts for `edited`, carrying the id of the loaded box each one continues (if any); a new box equal to one
    of `proposed` gets source "proposed"."""
    pairs, _deleted, creates = _pair(list(snapshot.boxes), edited)
    drafts = [BoxDraft(label, *coords, id=view.box_id, source=view.source if (label, coords) == (view.label,
              view.coords) else source) for view, (label, coords) in pairs]
    accepted = {(label, tuple(coords)) for label, coords in proposed}
    return drafts + [BoxDraft(label, *coords, source="proposed" if (label, tuple(coords)) in accepted else source)
                     for label, coords in creates]


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
    "MAX_BOXES_PER_SAVE", "BoxView", "Coords", "HistoryRow", "ImageBoxes", "MergedEdit", "SavedBoxes", "Snapshot",
    "UndoConfirmation", "UndoneChange", "load_boxes", "match_drafts", "merge_edit", "save_boxes", "undo",
]
