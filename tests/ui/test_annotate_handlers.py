"""Annotate handlers and services as plain functions (tiny project, SQLite, no server): conflicts keep the edit and
merge it back, undo asks before undoing someone else's change, the next image without a box, the label of new
boxes, proposals from the guided model, and the "Annotate next" queue."""

from __future__ import annotations

import gradio as gr
import pytest
from sqlalchemy import select

from services import annotations
from services.annotation_queue import annotation_queue, next_needing_box, proposal_model
from services.annotations import BoxView, Snapshot, UndoConfirmation, merge_edit
from store.db import session_scope
from store.models import Box
from store.runs import create_training_run, get_checkpoint, register_checkpoint, update_training_run
from tests.ui.conftest import SIZE, TinyProject
from ui.data.display import display_scale
from ui.handlers import annotate, annotate_queue

SHOWN = display_scale(SIZE, SIZE)  # the editor shows the 32×32 fixture images 16× enlarged


def _live(tiny: TinyProject, image_id: int) -> list[tuple[str, str, str, tuple[float, ...]]]:
    with session_scope(tiny.deps.engine) as session:
        rows = session.scalars(select(Box).where(Box.image_id == image_id, Box.deleted_at.is_(None))
                               .order_by(Box.id)).all()
        return [(b.klass.name, b.author, b.source, (b.x0, b.y0, b.x1, b.y1)) for b in rows]


def _drawn(value: dict, *boxes: tuple[str, tuple[float, float, float, float]]) -> dict:
    """`value` plus boxes given in original pixels, as the editor sends them (display scale, rgb colour)."""
    shown = [{**dict(zip(("xmin", "ymin", "xmax", "ymax"), (c * SHOWN for c in coords), strict=True)),
              "label": label, "color": "rgb(1, 2, 3)"} for label, coords in boxes]
    return {**value, "boxes": [*shown, *value["boxes"]]}


def _save_as(tiny: TinyProject, image_id: int, author: str, *boxes: tuple[str, tuple]) -> Snapshot:
    loaded = annotations.load_boxes(tiny.deps.engine, tiny.name, image_id, data_dir=tiny.deps.data_dir)
    edited = [*((b.label, b.coords) for b in loaded.snapshot.boxes), *boxes]
    saved = annotations.save_boxes(tiny.deps.engine, tiny.name, loaded.snapshot, edited, author=author,
                                   data_dir=tiny.deps.data_dir)
    return saved.state.snapshot


# --- merge ----------------------------------------------------------------------------------------------------------

def _view(box_id: int, revision: int, label: str, coords: tuple, author: str = "a") -> BoxView:
    return BoxView(box_id, revision, label, coords, "user", author)


def test_merge_adds_new_boxes_and_reapplies_edits_where_the_stored_box_did_not_change() -> None:
    loaded = Snapshot(1, (_view(1, 1, "cat", (0, 0, 10, 10)), _view(2, 1, "cat", (20, 20, 30, 30)),
                          _view(3, 1, "dog", (40, 40, 50, 50))))
    current = Snapshot(1, (_view(1, 1, "cat", (0, 0, 10, 10)), _view(2, 2, "dog", (20, 20, 31, 31), "bob"),
                           _view(3, 1, "dog", (40, 40, 50, 50)), _view(4, 1, "cat", (60, 60, 70, 70), "bob")))
    edited = [("cat", (0, 0, 12, 12)),  # box 1 moved: bob left it alone, so the move is re-applied
              ("cat", (20, 20, 29, 29)),  # box 2 moved, but bob changed it too: bob's version stays
              ("dog", (80, 80, 90, 90)),  # new
              ("cat", (60, 60, 70, 70))]  # new, but bob drew the very same box: not added twice
    merged = merge_edit(loaded, edited, current)  # box 3 removed, unchanged since: removed
    assert sorted(merged.boxes) == sorted([("cat", (0, 0, 12, 12)), ("dog", (20, 20, 31, 31)),
                                           ("cat", (60, 60, 70, 70)), ("dog", (80, 80, 90, 90))])
    assert merged.applied == 3 and len(merged.kept) == 1 and "box 2" in merged.kept[0] and "bob" in merged.kept[0]


def test_merge_keeps_a_box_someone_else_deleted_deleted() -> None:
    loaded = Snapshot(1, (_view(1, 1, "cat", (0, 0, 10, 10)),))
    merged = merge_edit(loaded, [("dog", (0, 0, 10, 10))], Snapshot(1, ()))
    assert merged.boxes == () and merged.applied == 0 and "box 1" in merged.kept[0]


# --- conflicts in the handlers --------------------------------------------------------------------------------------

def test_a_conflicting_save_keeps_the_unsaved_boxes_and_reapplying_them_saves_both(tiny: TinyProject) -> None:
    image = tiny.image_ids[1]
    mine = annotate.load_view(tiny.deps, tiny.name, image)
    annotate.save_view(tiny.deps, tiny.name, mine["snapshot"], _drawn(mine["editor"]["value"], ("warm", (1, 1, 9, 9))),
                       "alice")  # another tab saves first
    value = _drawn(mine["editor"]["value"], ("cool", (12, 12, 30, 30)))
    out = annotate.save_view(tiny.deps, tiny.name, mine["snapshot"], value, "bob")
    assert out["status"].startswith("Conflict") and [b["label"] for b in out["editor"]["boxes"]] == ["warm"]
    assert out["pending"].boxes == (("cool", (12, 12, 30, 30)),)  # the edit is kept, and shown beside
    assert out["pending_panel"]["visible"] and [b["label"] for b in out["pending_editor"]["boxes"]] == ["cool"]
    assert [label for label, *_ in _live(tiny, image)] == ["warm"]
    merged = annotate.reapply_view(tiny.deps, tiny.name, out["pending"])
    assert merged["status"].startswith("Re-applied 1") and len(merged["editor"]["boxes"]) == 2
    saved = annotate.save_view(tiny.deps, tiny.name, merged["snapshot"], merged["editor"], "bob")
    assert saved["status"].startswith("Saved 1") and saved["pending"] is None
    assert [(label, author) for label, author, *_ in _live(tiny, image)] == [("warm", "alice"), ("cool", "bob")]


def test_reapply_without_a_pending_edit_says_so(tiny: TinyProject) -> None:
    with pytest.raises(gr.Error, match="no unsaved edit"):
        annotate.reapply_view(tiny.deps, tiny.name, None)


def test_unlabelled_new_boxes_take_the_label_picked(tiny: TinyProject) -> None:
    image = tiny.image_ids[2]
    loaded = annotate.load_view(tiny.deps, tiny.name, image)
    assert loaded["label"]["value"] == "warm"  # single-label project: the image's class
    assert loaded["editor"]["label_list"] == ["warm", "cool"] and len(loaded["editor"]["label_colors"]) == 2
    out = annotate.save_view(tiny.deps, tiny.name, loaded["snapshot"],
                             _drawn(loaded["editor"]["value"], ("", (2, 2, 8, 8))), "alice", chosen="cool")
    assert out["status"].startswith("Saved 1") and _live(tiny, image)[0][0] == "cool"
    colours = annotate.label_colours(["warm", "cool"])
    assert out["editor"]["boxes"][0]["color"] == annotate.box_colour(colours["cool"]) == "rgb(60, 180, 75)"
    assert list(out["boxes"].iloc[0]) == ["cool", "2, 2, 8, 8", "user", "alice"]


# --- undo -----------------------------------------------------------------------------------------------------------

def test_undo_reverts_my_own_save_without_asking(tiny: TinyProject) -> None:
    image = tiny.image_ids[3]
    _save_as(tiny, image, "bob", ("cool", (1, 1, 9, 9)))
    mine = _save_as(tiny, image, "alice", ("warm", (10, 10, 20, 20)))
    out = annotate.undo_view(tiny.deps, tiny.name, mine, None, "alice")
    assert out["status"].startswith("undone the last change:")
    assert [(label, author) for label, author, *_ in _live(tiny, image)] == [("cool", "bob")]


def test_undo_of_someone_elses_change_asks_first_then_undoes_on_confirmation(tiny: TinyProject) -> None:
    image = tiny.image_ids[4]
    seen = _save_as(tiny, image, "bob", ("cool", (1, 1, 9, 9)))
    asked = annotate.undo_view(tiny.deps, tiny.name, seen, None, "alice")
    assert "bob's" in asked["status"] and "confirm" in asked["status"] and "editor" not in asked
    assert asked["undo_button"]["value"] == "Confirm undo" and asked["undo_armed"] is not None
    assert len(_live(tiny, image)) == 1  # nothing undone by the first click
    done = annotate.undo_view(tiny.deps, tiny.name, seen, asked["undo_armed"], "alice")
    assert done["status"].startswith("undone the last change by bob") and _live(tiny, image) == []
    assert done["undo_button"]["value"] == annotate.UNDO_LABEL and done["undo_armed"] is None


def test_undo_through_the_api_needs_confirm_true(tiny: TinyProject) -> None:
    image = tiny.image_ids[4]
    _save_as(tiny, image, "bob", ("cool", (1, 1, 9, 9)))
    common = {"author": "alice", "data_dir": tiny.deps.data_dir}
    asked = annotations.undo(tiny.deps.engine, tiny.name, image, **common)
    assert isinstance(asked, UndoConfirmation) and len(_live(tiny, image)) == 1
    again = annotations.undo(tiny.deps.engine, tiny.name, image, confirm=asked.change_id + 1, **common)
    assert isinstance(again, UndoConfirmation)  # confirming another change confirms nothing
    done = annotations.undo(tiny.deps.engine, tiny.name, image, confirm=True, **common)
    assert not isinstance(done, UndoConfirmation) and _live(tiny, image) == []


def test_undo_of_imported_boxes_asks_first(tiny: TinyProject) -> None:
    image = tiny.image_ids[5]
    loaded = annotations.load_boxes(tiny.deps.engine, tiny.name, image, data_dir=tiny.deps.data_dir)
    annotations.save_boxes(tiny.deps.engine, tiny.name, loaded.snapshot, [("cool", (1, 1, 9, 9))], author="import",
                           data_dir=tiny.deps.data_dir, source="imported")
    asked = annotations.undo(tiny.deps.engine, tiny.name, image, author="alice", data_dir=tiny.deps.data_dir)
    assert isinstance(asked, UndoConfirmation) and "an import's" in asked.message and "imported boxes" in asked.message


def test_undo_from_a_stale_view_is_refused_and_shows_the_stored_boxes(tiny: TinyProject) -> None:
    image = tiny.image_ids[0]
    stale = _save_as(tiny, image, "alice", ("warm", (1, 1, 9, 9)))
    _save_as(tiny, image, "alice", ("warm", (12, 12, 20, 20)))  # the same user, in another tab
    out = annotate.undo_view(tiny.deps, tiny.name, stale, None, "alice")
    assert out["status"].startswith("Conflict") and "Nothing was undone" in out["status"]
    assert len(_live(tiny, image)) == 2 and len(out["editor"]["boxes"]) == 2


def test_undo_with_nothing_to_undo_says_so(tiny: TinyProject) -> None:
    loaded = annotate.load_view(tiny.deps, tiny.name, tiny.image_ids[0])
    with pytest.raises(gr.Error, match="nothing to undo"):
        annotate.undo_view(tiny.deps, tiny.name, loaded["snapshot"], None, "alice")


# --- the next image -------------------------------------------------------------------------------------------------

def test_next_with_nothing_picked_opens_the_next_image_without_a_box(tiny: TinyProject) -> None:
    first, second = tiny.image_ids[:2]
    assert annotate.step_image(tiny.deps, tiny.name, None, 1) == first
    _save_as(tiny, first, "alice", ("warm", (1, 1, 9, 9)))
    assert annotate.step_image(tiny.deps, tiny.name, None, 1) == second
    assert annotate.step_image(tiny.deps, tiny.name, 0, 1) == second  # the frontend's "nothing" is 0


def test_next_never_puts_an_error_in_the_image_id_box(tiny: TinyProject) -> None:
    with pytest.warns(UserWarning, match="Pick a project"):
        assert annotate.step_image(tiny.deps, "", None, 1) == gr.skip()


def test_next_needing_box_goes_through_training_images_by_name_and_wraps(tiny: TinyProject) -> None:
    train = tiny.image_ids[:6]  # the last two are validation images
    assert next_needing_box(tiny.deps.engine, tiny.name, train[4]) == train[5]
    assert next_needing_box(tiny.deps.engine, tiny.name, train[5]) == train[0]  # wraps round
    for image in train:
        _save_as(tiny, image, "alice", ("warm", (1, 1, 9, 9)))
    assert next_needing_box(tiny.deps.engine, tiny.name) is None


def test_load_with_no_image_shows_a_hint_not_an_error(tiny: TinyProject) -> None:
    out = annotate.load_view(tiny.deps, tiny.name, 0)
    assert out["editor"] is None and "Next" in out["title"]


# --- proposals and the queue ----------------------------------------------------------------------------------------

def _guided_checkpoint(tiny: TinyProject, sha: str, metrics: dict) -> int:
    """A checkpoint row of a training run with lam > 0 that ran while a training image had a box."""
    with session_scope(tiny.deps.engine) as session:
        active = get_checkpoint(session, tiny.checkpoint_id)  # the same file, under another sha: another row
        run = create_training_run(session, project_id=active.project_id, config={"lam": 0.5})
        update_training_run(session, run.id, status="running")
        row = register_checkpoint(session, project_id=active.project_id, path=active.path, sha256=sha * 64,
                                  arch=active.arch, run_id=run.id, metrics=metrics)
        update_training_run(session, run.id, status="succeeded")
        return row.id


def test_proposals_come_from_the_active_model_with_a_warning_until_a_guided_one_exists(tiny: TinyProject) -> None:
    image = tiny.image_ids[0]
    first = proposal_model(tiny.deps.engine, tiny.name)
    assert (first.checkpoint_id, first.guided) == (tiny.checkpoint_id, False)
    value = annotate.load_view(tiny.deps, tiny.name, image)["editor"]["value"]
    shortcut = annotate_queue.propose_view(tiny.deps, tiny.name, image, value, "B-cos", "Input", "warm")
    assert "where the model looks now, not where the object is" in shortcut["proposal_note"]["value"]
    assert shortcut["proposal"][0] == "warm" and shortcut["editor"]["boxes"][0]["label"] == "warm"
    _save_as(tiny, tiny.image_ids[1], "alice", ("cool", (1, 1, 9, 9)))  # boxes exist before the runs start
    worse = _guided_checkpoint(tiny, "a", {"worst_group_accuracy": 0.4, "accuracy": 0.9, "epg": 0.9})
    best = _guided_checkpoint(tiny, "b", {"worst_group_accuracy": 0.6, "accuracy": 0.5, "epg": 0.1})
    chosen = proposal_model(tiny.deps.engine, tiny.name)
    assert (chosen.checkpoint_id, chosen.guided) == (best, True) and worse != best
    guided = annotate_queue.propose_view(tiny.deps, tiny.name, image, value, "B-cos", "Input", "warm")
    assert f"guided model #{best}" in guided["proposal_note"]["value"] and "not where" not in guided["status"]


def test_accepting_a_proposal_unchanged_records_it_as_proposed(tiny: TinyProject) -> None:
    image = tiny.image_ids[2]
    loaded = annotate.load_view(tiny.deps, tiny.name, image)
    proposed = annotate_queue.propose_view(tiny.deps, tiny.name, image, loaded["editor"]["value"], "", "", "warm")
    out = annotate.save_view(tiny.deps, tiny.name, loaded["snapshot"], proposed["editor"], "alice", chosen="warm",
                             proposal=proposed["proposal"])
    assert out["status"].startswith("Saved 1") and _live(tiny, image)[0][2] == "proposed"


def test_the_queue_ranks_the_most_wrong_group_first_and_opens_each_image_with_a_proposal(tiny: TinyProject) -> None:
    # fixture evaluation: wrong = images 0, 3, 6; EPG falls with the index; group warm/g = even images (2/4 wrong)
    queue = annotation_queue(tiny.deps.engine, tiny.name)
    ids = tiny.image_ids
    assert queue.image_ids == [ids[0], ids[4], ids[2], ids[3], ids[5], ids[1]]
    assert queue.items[0].reason == "group warm/g: 50% wrong · predicted wrong · EPG 1.00"
    started = annotate_queue.start_queue(tiny.deps, tiny.name, None, None)
    assert started["image_id"] == ids[0] and started["queue_panel"]["visible"]
    opened = annotate_queue.open_view(tiny.deps, tiny.name, ids[0], None, started["queue"])
    assert opened["proposal"] is not None and len(opened["editor"]["value"]["boxes"]) == 1
    assert "image 1 of 6" in opened["queue_note"]
    accepted = annotate_queue.accept(tiny.deps, tiny.name, opened["snapshot"], opened["editor"]["value"], "alice",
                                     opened["label"]["value"], opened["proposal"], started["queue"], ids[0])
    assert accepted["status"].startswith("Saved 1") and accepted["image_id"] == ids[4]
    assert _live(tiny, ids[0])[0][2] == "proposed"
    skipped = annotate_queue.reject(started["queue"], ids[4])
    assert skipped["image_id"] == ids[2] and _live(tiny, ids[4]) == []
    last = annotate_queue.reject(started["queue"], ids[1])
    assert last["queue"] is None and not last["queue_panel"]["visible"]


def test_an_empty_queue_says_every_image_has_a_box(tiny: TinyProject) -> None:
    for image in tiny.image_ids[:6]:
        _save_as(tiny, image, "alice", ("warm", (1, 1, 9, 9)))
    out = annotate_queue.start_queue(tiny.deps, tiny.name, None, None)
    assert out["queue"] is None and "image_id" not in out
