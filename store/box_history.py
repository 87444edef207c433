"""Box history, undo, and the editor's whole-image save (a diff applied atomically)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from store.boxes import (
    BoxDraft,
    _class_id,
    _describe_change,
    add_box,
    delete_box,
    get_box,
    list_boxes,
    record_event,
    snapshot,
    update_box,
    validate_box,
)
from store.errors import ConflictError, NotFoundError
from store.models import Box, BoxEvent, Class, Image
from store.projects import get_image
from store.types import utcnow

MAX_BOXES_PER_SAVE = 500  # one image's boxes in one save; 20,000 held a server for a minute (issue 15)


@dataclass(frozen=True)
class SaveResult:
    """What `save_image_boxes` did; `boxes` are the image's live boxes afterwards."""

    created: int
    updated: int
    deleted: int
    boxes: list[Box]


def box_history(session: Session, image_id: int) -> list[BoxEvent]:
    """Every change to the image's boxes, oldest first."""
    return list(session.scalars(select(BoxEvent).where(BoxEvent.image_id == image_id).order_by(BoxEvent.id)))


def _open_events(image_id: int) -> Select[tuple[BoxEvent]]:
    """The image's changes that are neither an undo nor undone yet."""
    undone = select(BoxEvent.undo_of_id).where(BoxEvent.image_id == image_id, BoxEvent.undo_of_id.is_not(None))
    return select(BoxEvent).where(BoxEvent.image_id == image_id, BoxEvent.undo_of_id.is_(None),
                                  BoxEvent.id.not_in(undone))


def last_change(session: Session, image_id: int, *, by: str | None = None) -> list[BoxEvent]:
    """The events of the image's newest change not yet undone (made by `by` when given), newest first; [] if none.

    A change is everything one save wrote: its events share author and time.
    """
    open_events = _open_events(image_id)
    newest = open_events if by is None else open_events.where(BoxEvent.author == by)
    last = session.scalar(newest.order_by(BoxEvent.id.desc()).limit(1))
    if last is None:
        return []
    return list(session.scalars(open_events.where(BoxEvent.author == last.author, BoxEvent.at == last.at)
                                .order_by(BoxEvent.id.desc())))


def _later_changes(session: Session, image_id: int, group: Sequence[BoxEvent]) -> list[BoxEvent]:
    """Changes not undone that touched the group's boxes after it (undoing the group would overwrite them)."""
    boxes = {event.box_id for event in group}
    after = max(event.id for event in group)
    later = _open_events(image_id).where(BoxEvent.box_id.in_(boxes), BoxEvent.id > after)
    return list(session.scalars(later.order_by(BoxEvent.id)))


def undo_last_change(session: Session, image_id: int, author: str, *, project_id: int | None = None,
                     by: str | None = None, expected_revisions: Mapping[int, int] | None = None) -> list[BoxEvent]:
    """Revert the image's newest change not yet undone (by anyone, or by `by` when given); [] if nothing is left.

    A change is everything one save wrote (its events share author and time), so undo after saving three
    boxes brings back the image as it was before that save. The undo is itself recorded (by `author`, one
    event per box with `undo_of_id`), so calling it again walks further back. Returns the undo events.

    Refused with ConflictError, before anything is written: `expected_revisions` (the box id -> revision map a
    tab loaded) no longer matching the image's live boxes (a stale tab would undo a change it never saw), and,
    with `by`, a later change by someone else to one of the change's boxes (undoing would overwrite it).
    An image that is not part of `project_id` (when given) is refused with NotFoundError.
    """
    image = _locked_image(session, image_id)  # two tabs undoing at once undo two changes, never one twice
    if project_id is not None and image.project_id != project_id:
        raise NotFoundError(f"image {image_id} is not part of project {project_id}")
    if expected_revisions is not None:
        live = {box.id: box for box in list_boxes(session, image_id)}
        problems = _conflicts(session, live, expected_revisions)
        if problems:
            raise ConflictError(f"image {image.path} changed since you loaded it: {'; '.join(problems)}. "
                                "Nothing was undone; look at the stored boxes, then undo again if you still want to.")
    group = last_change(session, image_id, by=by)
    if not group:
        return []
    later = _later_changes(session, image_id, group)
    if later:
        what = "; ".join(f"box {e.box_id} was {e.action}d by {e.author or 'someone'} at {e.at:%Y-%m-%d %H:%M:%S} UTC"
                         for e in later)
        raise ConflictError(f"cannot undo the change of {group[0].at:%Y-%m-%d %H:%M:%S} UTC on image {image.path}: "
                            f"{what} after it, and undoing would overwrite that. Nothing was undone.")
    now = utcnow()
    return [_revert(session, event, author, now) for event in group]


def _revert(session: Session, last: BoxEvent, author: str, now: datetime) -> BoxEvent:
    box = get_box(session, last.box_id)
    klass = session.get_one(Class, (last.before or {}).get("class_id", box.class_id))  # query before edits
    before = snapshot(box)
    if last.action in ("create", "restore"):
        box.deleted_at, action = now, "delete"
    elif last.action == "delete":
        box.deleted_at, action = None, "restore"
    else:
        state = last.before or {}
        box.x0, box.y0, box.x1, box.y1 = state["x0"], state["y0"], state["x1"], state["y1"]
        box.klass = klass
        box.attributes = dict(state.get("attributes") or {})
        action = "update"
    box.author, box.updated = author, now
    session.flush()
    event = record_event(session, box, action, author, before, undo_of_id=last.id)
    session.flush()
    return event


def _conflicts(session: Session, live: dict[int, Box], expected: Mapping[int, int]) -> list[str]:
    problems = []
    for box_id, box in live.items():
        if box_id not in expected:
            problems.append(f"box {box_id} was added by {box.author or 'someone'} "
                            f"at {box.created:%Y-%m-%d %H:%M:%S} UTC")
        elif box.revision != expected[box_id]:
            problems.append(f"box {box_id} was {_describe_change(box)}")
    for box_id in expected:
        if box_id not in live:
            gone = session.get(Box, box_id)
            problems.append(f"box {box_id} was {_describe_change(gone)}" if gone else f"box {box_id} no longer exists")
    return problems


def _is_unchanged(box: Box, draft: BoxDraft) -> bool:
    same_coords = (box.x0, box.y0, box.x1, box.y1) == (draft.x0, draft.y0, draft.x1, draft.y1)
    return same_coords and box.klass.name == draft.label and dict(box.attributes or {}) == dict(draft.attributes)


def _locked_image(session: Session, image_id: int) -> Image:
    """The image, locked until the transaction ends, so two overlapping saves on one image run one after the other
    and the second sees the first's boxes (and conflicts). PostgreSQL: `SELECT … FOR UPDATE` on the image row.
    SQLite: take the database's write lock first (a no-op write, waiting up to the busy timeout), so that the
    reads that follow see every save committed before."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(Image).where(Image.id == image_id).values(id=Image.id))
    image = session.scalars(select(Image).where(Image.id == image_id).with_for_update()).one_or_none()
    if image is None:
        return get_image(session, image_id)  # raises NotFoundError with the usual message
    return image


def check_box_count(count: int) -> None:
    """ValueError naming the limit when one save would hold more than `MAX_BOXES_PER_SAVE` boxes."""
    if count > MAX_BOXES_PER_SAVE:
        raise ValueError(f"{count:,} boxes in one save is more than the limit of {MAX_BOXES_PER_SAVE} boxes per "
                         "image; nothing was saved. Remove some boxes (or merge them) and save again.")


def save_image_boxes(session: Session, image_id: int, boxes: Sequence[BoxDraft], expected_revisions: Mapping[int, int],
                     author: str, *, project_id: int | None = None) -> SaveResult:
    """The editor's save: make the image's live boxes equal `boxes`, all or nothing.

    `expected_revisions` maps every box id the client loaded to the revision it saw. If any box was
    added, changed or deleted since then, ConflictError lists them and nothing is written. Drafts
    with an id update that box (when changed), drafts without one are created, and loaded boxes
    missing from `boxes` are soft-deleted. More than `MAX_BOXES_PER_SAVE` drafts, or an image that
    is not part of `project_id` (when given), are refused before anything is read or written.
    """
    check_box_count(len(boxes))
    image = _locked_image(session, image_id)
    if project_id is not None and image.project_id != project_id:
        raise NotFoundError(f"image {image_id} is not part of project {project_id}")
    live = {box.id: box for box in list_boxes(session, image_id)}
    problems = _conflicts(session, live, expected_revisions)
    if problems:
        raise ConflictError(f"image {image.path} changed since you loaded it: {'; '.join(problems)}. "
                            "Nothing was saved: look at the stored boxes, re-apply your edit onto them and save again.")
    for draft in boxes:  # validate everything before the first write
        if draft.id is not None and draft.id not in live:
            raise ValueError(f"box {draft.id} is not a live box of image {image.path}")
        validate_box(image, draft.x0, draft.y0, draft.x1, draft.y1)
        _class_id(session, image, draft.label, (draft.x0, draft.y0, draft.x1, draft.y1))
    kept = {draft.id for draft in boxes if draft.id is not None}
    created = updated = deleted = 0
    at = utcnow()  # one time for the whole save: undo reverts it as one change
    for box_id in sorted(set(live) - kept):
        delete_box(session, box_id, live[box_id].revision, author=author, at=at)
        deleted += 1
    for draft in boxes:
        if draft.id is None:
            add_box(session, image_id=image_id, label=draft.label, x0=draft.x0, y0=draft.y0, x1=draft.x1,
                    y1=draft.y1, author=author, source=draft.source, attributes=draft.attributes, at=at)
            created += 1
        elif not _is_unchanged(live[draft.id], draft):
            update_box(session, draft.id, live[draft.id].revision, author=author, label=draft.label, x0=draft.x0,
                       y0=draft.y0, x1=draft.x1, y1=draft.y1, attributes=draft.attributes, at=at)
            updated += 1
    return SaveResult(created, updated, deleted, list_boxes(session, image_id))
