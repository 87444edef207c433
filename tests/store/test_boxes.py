"""Box writes: validation, optimistic concurrency, soft delete, history, undo, the editor's save."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import store
from store.box_history import last_change
from store.boxes import guided_checkpoints, next_unannotated_image, ranked_unannotated_images
from store.runs import (
    EvaluationImageResult,
    create_training_run,
    record_evaluation,
    register_checkpoint,
    update_training_run,
)

Fixture = tuple[store.Project, store.Image]


def _box(session: Session, image: store.Image, label: str = "cat", author: str = "alice") -> store.Box:
    return store.add_box(session, image_id=image.id, label=label, x0=10, y0=10, x1=50, y1=40, author=author)


def test_validation_names_image_and_box(session: Session, project_with_image: Fixture) -> None:
    _, image = project_with_image
    store.add_box(session, image_id=image.id, label="cat", x0=0, y0=0, x1=100, y1=80, author="a")  # touches border
    with pytest.raises(ValueError, match=r"box \(90, 10, 101, 20\) on image a.jpg .* outside the 100x80 image"):
        store.add_box(session, image_id=image.id, label="cat", x0=90, y0=10, x1=101, y1=20, author="a")
    with pytest.raises(ValueError, match="empty or inverted"):
        store.add_box(session, image_id=image.id, label="cat", x0=30, y0=10, x1=20, y1=20, author="a")
    with pytest.raises(ValueError, match=r'label "Cat" is not a class of project pets \(did you mean "cat"\?\)'):
        store.add_box(session, image_id=image.id, label="Cat", x0=1, y0=1, x1=2, y1=2, author="a")


def test_conflict_on_stale_revision_changes_nothing(session: Session, project_with_image: Fixture) -> None:
    _, image = project_with_image
    box = _box(session, image)
    session.commit()
    store.update_box(session, box.id, 1, author="bob", x1=60)  # tab 1 saves
    session.commit()
    stale = r"box \d+ on image \d+ was changed by bob at .* you loaded revision 1"
    with pytest.raises(store.ConflictError, match=stale):
        store.update_box(session, box.id, 1, author="alice", label="dog")  # tab 2 is stale
    session.rollback()
    [stored] = store.list_boxes(session, image.id)
    assert (stored.revision, stored.x1, stored.label, stored.author) == (2, 60, "cat", "bob")
    assert [e.action for e in store.box_history(session, image.id)] == ["create", "update"]


def test_soft_delete_keeps_box_and_history(session: Session, project_with_image: Fixture) -> None:
    _, image = project_with_image
    box = _box(session, image)
    store.delete_box(session, box.id, 1, author="bob")
    session.commit()
    assert store.list_boxes(session, image.id) == []
    [kept] = store.list_boxes(session, image.id, include_deleted=True)
    assert kept.deleted_at is not None and kept.revision == 2
    create, delete = store.box_history(session, image.id)
    assert (create.action, create.author, create.before, create.after["x1"]) == ("create", "alice", None, 50)
    assert (delete.action, delete.author) == ("delete", "bob")
    assert (delete.before["deleted"], delete.after["deleted"]) == (False, True)
    with pytest.raises(store.ConflictError, match="deleted by bob"):
        store.delete_box(session, box.id, 1, author="alice")


def test_undo_walks_back_through_changes(session: Session, project_with_image: Fixture) -> None:
    _, image = project_with_image
    box = _box(session, image)
    store.update_box(session, box.id, 1, author="alice", label="dog", x0=20)
    store.delete_box(session, box.id, 2, author="alice")
    session.commit()
    assert [e.action for e in store.undo_last_change(session, image.id, "alice")] == ["restore"]
    [restored] = store.list_boxes(session, image.id)
    assert (restored.label, restored.x0) == ("dog", 20)
    assert [e.action for e in store.undo_last_change(session, image.id, "alice")] == ["update"]
    [reverted] = store.list_boxes(session, image.id)
    assert (reverted.label, reverted.x0, reverted.revision) == ("cat", 10, 5)
    assert [e.action for e in store.undo_last_change(session, image.id, "alice")] == ["delete"]
    assert store.list_boxes(session, image.id) == []
    assert store.undo_last_change(session, image.id, "alice") == []
    session.commit()
    history = store.box_history(session, image.id)
    assert [e.action for e in history] == ["create", "update", "delete", "restore", "update", "delete"]
    assert [e.undo_of_id for e in history[3:]] == [history[2].id, history[1].id, history[0].id]


def test_undo_reverts_a_whole_save_as_one_change(session: Session, project_with_image: Fixture) -> None:
    _, image = project_with_image
    first = _box(session, image)  # an earlier change, by itself
    session.commit()
    drafts = [store.BoxDraft(label="dog", x0=1, y0=1, x1=5, y1=5), store.BoxDraft(label="cat", x0=6, y0=6, x1=9, y1=9),
              store.BoxDraft(id=first.id, label="dog", x0=first.x0, y0=first.y0, x1=first.x1, y1=first.y1)]
    store.save_image_boxes(session, image.id, drafts, {first.id: 1}, author="bob")  # 2 creates + 1 update
    session.commit()
    undone = store.undo_last_change(session, image.id, "bob")
    assert sorted(e.action for e in undone) == ["delete", "delete", "update"]
    [left] = store.list_boxes(session, image.id)
    assert (left.id, left.label) == (first.id, "cat")  # the image as it was before bob's save
    session.commit()
    assert [e.action for e in store.undo_last_change(session, image.id, "bob")] == ["delete"]  # then the earlier one
    assert store.list_boxes(session, image.id) == []


def test_save_image_boxes_applies_a_diff(session: Session, project_with_image: Fixture) -> None:
    _, image = project_with_image
    keep, change, drop = (_box(session, image) for _ in range(3))
    session.commit()
    loaded = {b.id: b.revision for b in store.list_boxes(session, image.id)}
    drafts = [store.BoxDraft("cat", 10, 10, 50, 40, id=keep.id), store.BoxDraft("dog", 1, 2, 3, 4, id=change.id),
              store.BoxDraft("dog", 5, 5, 25, 25)]
    result = store.save_image_boxes(session, image.id, drafts, loaded, "carol")
    session.commit()
    assert (result.created, result.updated, result.deleted) == (1, 1, 1)
    assert [(b.label, b.x0) for b in result.boxes] == [("cat", 10), ("dog", 1), ("dog", 5)]
    assert store.get_box(session, drop.id).deleted_at is not None


def test_save_image_boxes_conflict_writes_nothing(session: Session, project_with_image: Fixture) -> None:
    _, image = project_with_image
    box = _box(session, image)
    session.commit()
    loaded = {box.id: 1}
    _box(session, image, author="bob")  # another tab adds a box after we loaded
    session.commit()
    with pytest.raises(store.ConflictError, match=r"changed since you loaded it: box \d+ was added by bob"):
        store.save_image_boxes(session, image.id, [], loaded, "alice")
    session.rollback()
    assert len(store.list_boxes(session, image.id)) == 2
    with pytest.raises(ValueError, match="outside"):
        store.save_image_boxes(session, image.id, [store.BoxDraft("cat", 0, 0, 500, 5)],
                               {b.id: b.revision for b in store.list_boxes(session, image.id)}, "alice")
    session.rollback()
    assert len(store.box_history(session, image.id)) == 2


def test_overlapping_saves_on_one_image_run_in_turn_and_the_second_conflicts(
        engine: Engine, session: Session, project_with_image: Fixture) -> None:
    """Two tabs whose saves overlap in time: the second waits for the first and is then refused, on every backend."""
    import threading

    _, image = project_with_image
    first = store.BoxDraft(label="cat", x0=1, y0=1, x1=9, y1=9)
    store.save_image_boxes(session, image.id, [first], {}, author="alice")  # holds the image until commit
    outcome: list[BaseException | None] = []

    def second_tab() -> None:
        try:
            with Session(engine) as other:
                store.save_image_boxes(other, image.id, [store.BoxDraft(label="dog", x0=2, y0=2, x1=8, y1=8)], {},
                                       author="bob")
                other.commit()
            outcome.append(None)
        except BaseException as exc:  # reported to the main thread
            outcome.append(exc)

    thread = threading.Thread(target=second_tab)
    thread.start()
    thread.join(0.5)
    waited = thread.is_alive()
    session.commit()
    thread.join(30)
    assert not thread.is_alive() and len(outcome) == 1
    assert waited and isinstance(outcome[0], store.ConflictError) and "added by alice" in str(outcome[0]), outcome
    assert [b.author for b in store.list_boxes(session, image.id)] == ["alice"]


def test_two_tabs_undoing_at_once_undo_two_changes(engine: Engine, session: Session,
                                                     project_with_image: Fixture) -> None:
    import threading

    _, image = project_with_image
    box = _box(session, image)  # change 1: create
    session.commit()
    store.update_box(session, box.id, 1, author="alice", x0=20)  # change 2: update
    session.commit()
    [first] = store.undo_last_change(session, image.id, "alice")  # holds the image until commit
    seen: list[object] = []

    def second_tab() -> None:
        with Session(engine) as other:
            seen.extend(e.undo_of_id for e in store.undo_last_change(other, image.id, "bob"))
            other.commit()

    thread = threading.Thread(target=second_tab)
    thread.start()
    thread.join(0.5)
    session.commit()
    thread.join(30)
    history = store.box_history(session, image.id)
    assert first.undo_of_id == history[1].id and seen == [history[0].id]  # the update, then the create
    assert store.list_boxes(session, image.id) == []


def test_undo_by_author_reverts_their_newest_save_not_a_later_one_by_someone_else(
        session: Session, project_with_image: Fixture) -> None:
    _, image = project_with_image
    mine = _box(session, image, author="alice")
    session.commit()
    theirs = store.add_box(session, image_id=image.id, label="dog", x0=60, y0=10, x1=90, y1=40, author="bob")
    session.commit()
    assert [e.author for e in last_change(session, image.id)] == ["bob"]
    assert [e.box_id for e in last_change(session, image.id, by="alice")] == [mine.id]
    [undone] = store.undo_last_change(session, image.id, "alice", by="alice")
    assert (undone.box_id, undone.action) == (mine.id, "delete")
    assert [b.id for b in store.list_boxes(session, image.id)] == [theirs.id]  # bob's later box is untouched
    assert store.undo_last_change(session, image.id, "alice", by="alice") == []


def test_undo_by_author_refuses_when_someone_changed_that_box_later(session: Session,
                                                                     project_with_image: Fixture) -> None:
    _, image = project_with_image
    box = _box(session, image, author="alice")
    store.update_box(session, box.id, 1, author="bob", x1=70)
    session.commit()
    with pytest.raises(store.ConflictError, match=rf"box {box.id} was updated by bob .* would overwrite"):
        store.undo_last_change(session, image.id, "alice", by="alice")
    session.rollback()
    [kept] = store.list_boxes(session, image.id)
    assert (kept.x1, kept.author) == (70, "bob") and len(store.box_history(session, image.id)) == 2


def test_undo_from_a_stale_view_conflicts_and_writes_nothing(session: Session, project_with_image: Fixture) -> None:
    _, image = project_with_image
    first = _box(session, image, author="alice")
    session.commit()
    seen = {first.id: first.revision}  # a tab loaded the image now
    store.add_box(session, image_id=image.id, label="dog", x0=60, y0=10, x1=90, y1=40, author="alice")  # tab 2
    session.commit()
    with pytest.raises(store.ConflictError, match=r"changed since you loaded it: box \d+ was added by alice"):
        store.undo_last_change(session, image.id, "alice", by="alice", expected_revisions=seen)
    session.rollback()
    assert len(store.list_boxes(session, image.id)) == 2 and len(store.box_history(session, image.id)) == 2
    live = {b.id: b.revision for b in store.list_boxes(session, image.id)}
    assert len(store.undo_last_change(session, image.id, "alice", by="alice", expected_revisions=live)) == 1


def _images(session: Session, project: store.Project, specs: list[tuple[str, str, str | None]]) -> list[store.Image]:
    inputs = [store.ImageInput(path, f"{i:064d}", 100, 80, split=split, group=group)
              for i, (path, split, group) in enumerate(specs, start=1)]
    return [image for image, _ in store.add_images(session, project_id=project.id, images=inputs)]


def test_next_unannotated_image_goes_by_path_skips_boxed_and_other_splits_and_wraps(
        session: Session, project_with_image: Fixture) -> None:
    project, a = project_with_image  # a.jpg, train
    b, c, d = _images(session, project, [("b.jpg", "train", None), ("c.jpg", "val", None), ("d.jpg", "train", None)])
    _box(session, image=b)
    session.commit()
    assert next_unannotated_image(session, project_id=project.id) == a.id
    assert next_unannotated_image(session, project_id=project.id, after_path="a.jpg") == d.id  # b has a box, c is val
    assert next_unannotated_image(session, project_id=project.id, after_path="d.jpg") == a.id  # wraps round
    assert next_unannotated_image(session, project_id=project.id, split="val") == c.id
    for image in (a, d):
        _box(session, image=image)
    assert next_unannotated_image(session, project_id=project.id) is None


def test_ranked_unannotated_images_put_the_most_wrong_group_then_wrong_then_low_epg_first(
        session: Session, project_with_image: Fixture) -> None:
    project, a = project_with_image  # no group: ranked after every grouped image
    easy1, easy2, hard1, hard2, hard3, boxed = _images(session, project, [
        ("e1.jpg", "train", "easy"), ("e2.jpg", "train", "easy"), ("h1.jpg", "train", "hard"),
        ("h2.jpg", "train", "hard"), ("h3.jpg", "train", "hard"), ("h4.jpg", "train", "hard")])
    _box(session, image=boxed)
    checkpoint = register_checkpoint(session, project_id=project.id, path="m.pt", sha256="1" * 64, arch="a")
    verdicts = {easy1: (True, 0.9), easy2: (False, 0.8), hard1: (True, 0.2), hard2: (False, 0.7),
                hard3: (False, 0.5), boxed: (False, 0.1)}  # hard: 3/4 wrong, easy: 1/2
    results = [EvaluationImageResult(image_id=image.id, correct=ok, score=0.5, epg=epg)
               for image, (ok, epg) in verdicts.items()]
    evaluation = record_evaluation(session, checkpoint_id=checkpoint.id, split="train", metrics={}, results=results)
    rows = ranked_unannotated_images(session, project_id=project.id, results_id=evaluation.id,
                                     groups_id=evaluation.id)
    assert [r.image_id for r in rows] == [hard3.id, hard2.id, hard1.id, easy2.id, easy1.id, a.id]
    assert rows[0].group_error_rate == pytest.approx(0.75) and rows[0].correct is False and rows[-1].epg is None
    plain = ranked_unannotated_images(session, project_id=project.id)
    assert [r.image_id for r in plain] == [a.id, easy1.id, easy2.id, hard1.id, hard2.id, hard3.id]


def test_guided_checkpoints_are_those_of_runs_with_lam_and_boxes(session: Session,
                                                                  project_with_image: Fixture) -> None:
    project, image = project_with_image

    def run_checkpoint(lam: float, sha: str) -> store.Checkpoint:
        run = create_training_run(session, project_id=project.id, config={"lam": lam})
        update_training_run(session, run.id, status="running")
        checkpoint = register_checkpoint(session, project_id=project.id, path=f"{sha}.pt", sha256=sha * 64,
                                         arch="a", run_id=run.id)
        update_training_run(session, run.id, status="succeeded")
        session.commit()
        return checkpoint

    run_checkpoint(0.5, "1")  # no box on any training image yet: not guided
    _box(session, image)
    session.commit()
    run_checkpoint(0.0, "2")  # lam 0: not guided
    guided = run_checkpoint(0.5, "3")
    register_checkpoint(session, project_id=project.id, path="4.pt", sha256="4" * 64, arch="a")  # no run
    assert [c.id for c, _ in guided_checkpoints(session, project.id)] == [guided.id]
