"""Refused box saves leave the database exactly as it was (issue 15, items 3 and 6), on SQLite and PostgreSQL.

3. `/load_boxes("demo", 4)` then `/save_boxes("nope", ...)` used to write the box and its history, then report
   "no project 'nope'": the project and the image's membership are now checked before any write.
6. One save of 20,000 boxes held the server for a minute: a save holds at most `MAX_BOXES_PER_SAVE` boxes,
   refused before any work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import store
from services import annotations
from services.annotations import MAX_BOXES_PER_SAVE
from services.errors import NotFoundError
from services.explanations import ExplanationService
from services.models import ModelCache
from services.settings import Settings
from tests.adversarial.conftest import row_counts
from tests.store.conftest import write_image
from ui.deps import AppDeps
from ui.handlers import annotate

WIDTH, HEIGHT = 100, 80
ONE_BOX = [("cat", (10.0, 10.0, 40.0, 30.0))]


@dataclass(frozen=True)
class Projects:
    """Project "demo" (4 images) and project "other" (1 image), both with classes cat and dog."""

    deps: AppDeps
    demo_images: list[int]
    other_image: int


def _add_project(session: Session, data_dir: Path, name: str, count: int, shade: int) -> list[int]:
    project = store.create_project(session, name=name, task="single_label", image_size=32, classes=["cat", "dog"])
    inputs = []
    for i in range(count):
        path = write_image(data_dir / name / f"{i}.png", (WIDTH, HEIGHT), (shade, 10 * i, 50))
        inputs.append(store.ImageInput(f"{name}/{i}.png", f"{shade:02x}{i:062x}", WIDTH, HEIGHT))
        assert path.exists()
    return [image.id for image, _ in store.add_images(session, project_id=project.id, images=inputs)]


@pytest.fixture
def projects(engine: Engine, tmp_path: Path) -> Projects:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, device="cpu")
    models = ModelCache()
    deps = AppDeps(settings=settings, engine=engine, models=models,
                   explanations=ExplanationService(settings, models, cache_dir=data_dir / "cache" / "explanations"))
    with store.session_scope(engine) as session:
        demo = _add_project(session, data_dir, "demo", 4, 1)
        [other] = _add_project(session, data_dir, "other", 1, 2)
    return Projects(deps, demo, other)


def _editor_value(value: dict, boxes: list[tuple[str, tuple[float, ...]]], scale: float) -> dict:
    """The editor's value holding `boxes` (original pixels) at display scale, as the browser sends it."""
    shown = [{"xmin": c[0] * scale, "ymin": c[1] * scale, "xmax": c[2] * scale, "ymax": c[3] * scale, "label": label}
             for label, c in boxes]
    return {**value, "boxes": shown}


@pytest.mark.parametrize(("project", "message"), [("nope", "no project named nope"),
                                                  ("other", "not part of project 'other'")])
def test_save_boxes_to_a_project_the_image_is_not_in_writes_nothing(projects: Projects, project: str,
                                                                     message: str) -> None:
    image = projects.demo_images[3]
    value, snapshot, _, _ = annotate.load_annotation(projects.deps, "demo", image)  # /load_boxes("demo", 4)
    before = row_counts(projects.deps.engine)
    edited = _editor_value(value, ONE_BOX, snapshot.scale)
    with pytest.raises(gr.Error, match=message):  # /save_boxes("nope", ... one new box ...)
        annotate.save_annotation(projects.deps, project, snapshot, edited, "mallory")
    assert row_counts(projects.deps.engine) == before
    with pytest.raises(NotFoundError, match=message):  # the service refuses it the same way
        annotations.save_boxes(projects.deps.engine, project, snapshot, ONE_BOX, author="mallory",
                               data_dir=projects.deps.data_dir)
    assert row_counts(projects.deps.engine) == before

    *_, status = annotate.save_annotation(projects.deps, "demo", snapshot, edited, "alice")  # the right project
    after = row_counts(projects.deps.engine)
    assert status.startswith("Saved 1") and (after["box"], after["box_event"]) == (before["box"] + 1,
                                                                                   before["box_event"] + 1)


def test_undo_in_a_project_the_image_is_not_in_writes_nothing(projects: Projects) -> None:
    image = projects.demo_images[0]
    loaded = annotations.load_boxes(projects.deps.engine, "demo", image, data_dir=projects.deps.data_dir)
    annotations.save_boxes(projects.deps.engine, "demo", loaded.snapshot, ONE_BOX, author="alice",
                           data_dir=projects.deps.data_dir)
    before = row_counts(projects.deps.engine)
    for project in ("nope", "other"):
        with pytest.raises(NotFoundError):
            annotations.undo(projects.deps.engine, project, image, author="mallory", data_dir=projects.deps.data_dir)
        assert row_counts(projects.deps.engine) == before


def test_store_refuses_a_save_or_undo_for_an_image_of_another_project(projects: Projects) -> None:
    with store.session_scope(projects.deps.engine) as session:
        other_id = store.get_project(session, "other").id
    before = row_counts(projects.deps.engine)
    draft = store.BoxDraft("cat", 10, 10, 40, 30)
    for write in (lambda s: store.save_image_boxes(s, projects.demo_images[1], [draft], {}, "mallory",
                                                   project_id=other_id),
                  lambda s: store.undo_last_change(s, projects.demo_images[1], "mallory", project_id=other_id)):
        with pytest.raises(NotFoundError, match="not part of project"), store.session_scope(projects.deps.engine) as s:
            write(s)
        assert row_counts(projects.deps.engine) == before


def _many(count: int) -> list[tuple[str, tuple[float, float, float, float]]]:
    """`count` distinct valid boxes inside the 100×80 image."""
    return [("cat" if i % 2 else "dog", (float(i % 50), float(i % 40), float(i % 50 + 1 + i % 47),
                                          float(i % 40 + 1 + i % 37))) for i in range(count)]


def test_twenty_thousand_boxes_in_one_save_are_refused_before_any_work(projects: Projects) -> None:
    image = projects.demo_images[2]
    value, snapshot, _, _ = annotate.load_annotation(projects.deps, "demo", image)
    before = row_counts(projects.deps.engine)
    flood = _many(20_000)
    with pytest.raises(gr.Error, match=f"limit of {MAX_BOXES_PER_SAVE} boxes"):
        annotate.save_annotation(projects.deps, "demo", snapshot, _editor_value(value, flood, snapshot.scale), "bot")
    assert row_counts(projects.deps.engine) == before
    with pytest.raises(ValueError, match=f"20,000 boxes in one save is more than the limit of {MAX_BOXES_PER_SAVE}"):
        annotations.save_boxes(projects.deps.engine, "demo", snapshot, flood, author="bot",
                               data_dir=projects.deps.data_dir)
    with pytest.raises(ValueError, match="limit of 500"), store.session_scope(projects.deps.engine) as session:
        store.save_image_boxes(session, image, [store.BoxDraft(label, *c) for label, c in _many(501)], {}, "bot")
    assert row_counts(projects.deps.engine) == before


def test_the_limit_itself_is_allowed(projects: Projects) -> None:
    image = projects.demo_images[1]
    loaded = annotations.load_boxes(projects.deps.engine, "demo", image, data_dir=projects.deps.data_dir)
    saved = annotations.save_boxes(projects.deps.engine, "demo", loaded.snapshot, _many(MAX_BOXES_PER_SAVE),
                                   author="alice", data_dir=projects.deps.data_dir)
    assert MAX_BOXES_PER_SAVE == 500 and saved.created == 500 and len(saved.state.snapshot.boxes) == 500
    with pytest.raises(ValueError, match="limit of 500"):
        annotations.save_boxes(projects.deps.engine, "demo", saved.state.snapshot, _many(MAX_BOXES_PER_SAVE + 1),
                               author="alice", data_dir=projects.deps.data_dir)


@pytest.mark.parametrize("bad", [True, False, "10", None, [1]])
def test_a_coordinate_that_is_not_a_number_is_refused_by_name(projects: Projects, bad: object) -> None:
    value, snapshot, _, _ = annotate.load_annotation(projects.deps, "demo", projects.demo_images[2])
    edited = _editor_value(value, ONE_BOX, snapshot.scale)
    edited["boxes"][0]["xmin"] = bad  # a JSON `true` (an int to Python) was saved as x0 = 1
    before = row_counts(projects.deps.engine)
    with pytest.raises(gr.Error, match=re.escape(f"Box 1: xmin is {bad!r}, not a number of pixels. Nothing was saved")):
        annotate.save_annotation(projects.deps, "demo", snapshot, edited, "mallory")
    assert row_counts(projects.deps.engine) == before
