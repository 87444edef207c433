"""Gallery paging, training data, checkpoints, evaluations and training runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import store


@pytest.fixture
def gallery(session: Session) -> tuple[store.Project, list[store.Image], store.Evaluation]:
    """6 images (train/val, groups), labels, boxes on some, and an evaluation with EPG and scores."""
    project = store.create_project(session, name="birds", classes=["land", "water"])
    inputs = [store.ImageInput(f"img{i}.png", f"{i:064d}", 64, 64, "train" if i < 4 else "val",
                               "a" if i % 2 else "b") for i in range(6)]
    images = [image for image, _ in store.add_images(session, project_id=project.id, images=inputs)]
    for i, image in enumerate(images):
        store.set_image_labels(session, image_id=image.id, class_names=["water" if i % 3 == 0 else "land"])
    store.add_box(session, image_id=images[0].id, label="water", x0=0, y0=0, x1=8, y1=8, author="a")
    store.add_box(session, image_id=images[2].id, label="land", x0=1, y0=1, x1=9, y1=9, author="a")
    deleted = store.add_box(session, image_id=images[3].id, label="land", x0=1, y0=1, x1=9, y1=9, author="a")
    store.delete_box(session, deleted.id, 1, author="a")
    ckpt = store.register_checkpoint(session, project_id=project.id, path="c.pt", sha256="c" * 64, arch="resnet18")
    results = [store.EvaluationImageResult(img.id, correct=i % 2 == 0, score=0.5 + i / 20, epg=(6 - i) / 10)
               for i, img in enumerate(images[:5])]
    evaluation = store.record_evaluation(session, checkpoint_id=ckpt.id, split="all", metrics={"acc": 0.6},
                                         results=results)
    session.commit()
    return project, images, evaluation


def test_page_filters_and_total(session: Session, gallery: tuple) -> None:
    project, _images, evaluation = gallery
    rows, total = store.page_images(session, project.id, split="train", limit=2)
    assert total == 4 and [r.path for r in rows] == ["img0.png", "img1.png"]
    assert store.page_images(session, project.id, annotated=True)[1] == 2  # the deleted box does not count
    assert store.page_images(session, project.id, annotated=False)[1] == 4
    assert {r.path for r in store.page_images(session, project.id, class_name="water")[0]} == {"img0.png", "img3.png"}
    assert store.page_images(session, project.id, group="a")[1] == 3
    wrong, n = store.page_images(session, project.id, wrong_prediction_eval_id=evaluation.id)
    assert n == 2 and all(r.correct is False for r in wrong)
    with pytest.raises(ValueError, match='did you mean "water"'):
        store.page_images(session, project.id, class_name="Water")


def test_page_sorts_by_evaluation(session: Session, gallery: tuple) -> None:
    project, _images, evaluation = gallery
    rows, _ = store.page_images(session, project.id, sort_by="epg", evaluation_id=evaluation.id)
    assert [r.path for r in rows] == ["img4.png", "img3.png", "img2.png", "img1.png", "img0.png", "img5.png"]
    rows, _ = store.page_images(session, project.id, sort_by="confidence", evaluation_id=evaluation.id,
                                descending=True, limit=2)
    assert [r.path for r in rows] == ["img4.png", "img3.png"] and rows[0].box_count == 0
    with pytest.raises(ValueError, match="needs an evaluation"):
        store.page_images(session, project.id, sort_by="epg")


def test_training_examples(session: Session, gallery: tuple) -> None:
    project, images, _ = gallery
    examples = store.training_examples(session, project.id, "train")
    assert [e.image_id for e in examples] == [i.id for i in images[:4]]
    assert examples[0].labels == (1,) and examples[0].boxes == ((0, 0, 8, 8, 1),)
    assert examples[3].boxes == ()


def test_one_active_checkpoint(session: Session, gallery: tuple) -> None:
    project, _, _ = gallery
    a = store.register_checkpoint(session, project_id=project.id, path="a.pt", sha256="a" * 64, arch="x",
                                  activate=True)
    b = store.register_checkpoint(session, project_id=project.id, path="b.pt", sha256="b" * 64, arch="x",
                                  parent_id=a.id, activate=True)
    session.commit()
    assert store.active_checkpoint(session, project.id).id == b.id
    assert [c.active for c in store.list_checkpoints(session, project.id) if c.id == a.id] == [False]


def test_one_active_training_run_per_project(session: Session, gallery: tuple) -> None:
    project, _, _ = gallery
    run = store.create_training_run(session, project_id=project.id, config={"epochs": 1})
    with pytest.raises(store.ConflictError, match="already has training run"):
        store.create_training_run(session, project_id=project.id, config={})
    session.commit()
    session.add(store.TrainingRun(project_id=project.id, config={}, status="running"))
    with pytest.raises(IntegrityError):  # the database itself refuses a second active run
        session.flush()
    session.rollback()
    store.update_training_run(session, run.id, status="running", pid=123, progress=0.5)
    assert run.started is not None
    beat = run.heartbeat
    assert store.fail_silent_runs(session, timeout_s=60, now=beat + timedelta(seconds=59)) == []  # still beating
    assert run.status == "running"
    assert store.fail_silent_runs(session, timeout_s=60, now=beat + timedelta(seconds=61)) == [run.id]
    assert run.status == "failed" and "no sign of life" in run.error and run.finished is not None
    session.commit()
    assert store.create_training_run(session, project_id=project.id, config={}).status == "queued"
    with pytest.raises(ValueError, match="already failed"):
        store.update_training_run(session, run.id, status="running")
