"""A validation split too small to judge a run (core/train/selection.py `VALIDATION_RULE`): the warning, the fraction
it suggests (which must reach 50 per group when run) and the carve the Data tab's button does."""

from __future__ import annotations

import shlex
from hashlib import sha256
from pathlib import Path

import pytest

import app
from services import validation_split
from services.database import Database, open_store
from services.errors import ConflictError
from services.settings import Settings
from store.db import session_scope
from store.projects import ImageInput, add_images, create_project, get_project, set_image_labels
from store.runs import create_training_run

Counts = dict[str | None, int]  # group (None: no group) -> images


def make_project(engine: Database, name: str, *, val: Counts, train: Counts, test: Counts | None = None) -> None:
    """A single-label project with classes a and b (alternating) and the given images per split and group; the
    files need not exist: the check counts rows."""
    inputs = []
    for split, counts in (("val", val), ("train", train), ("test", test or {})):
        for group, n in counts.items():
            paths = [f"{split}/{group}/{i}.png" for i in range(n)]
            inputs += [ImageInput(path, sha256(path.encode()).hexdigest(), 32, 32, split=split, group=group)
                       for path in paths]
    with session_scope(engine) as session:
        project = create_project(session, name=name, task="single_label", classes=["a", "b"])
        images = [image for image, _ in add_images(session, project_id=project.id, images=inputs)]
        for i, image in enumerate(images):
            set_image_labels(session, image_id=image.id, class_names=["ab"[i % 2]])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def engine(settings: Settings) -> Database:
    return open_store(settings)


def test_a_35_image_val_split_warns_and_its_command_reaches_50(engine: Database, settings: Settings) -> None:
    make_project(engine, "mine", val={None: 35}, train={None: 286}, test={None: 36})  # 357 images, as reported
    check = validation_split.check_validation(engine, "mine")
    assert check.too_small and check.images == 35 and check.group is None
    warning = validation_split.validation_warning(engine, "mine")
    assert warning is not None
    assert "rests on 35 validation images, fewer than 50" in warning and "one epoch cannot judge a run" in warning
    assert check.command == "python app.py project split mine --val-fraction 0.06 --grow"
    assert f"`{check.command}` moves {check.moved} training images into val" in warning
    cli = ["--data-dir", str(settings.data_dir), *shlex.split(check.command)[2:]]
    assert app.main(cli) == 0  # the command the warning names, as a user would paste it
    assert validation_split.validation_warning(engine, "mine") is None
    assert validation_split.check_validation(engine, "mine").images == 35 + check.moved >= 50


def test_without_grow_the_split_command_leaves_an_existing_val_alone(engine: Database, settings: Settings,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    make_project(engine, "mine", val={None: 35}, train={None: 286})
    cli = ["--data-dir", str(settings.data_dir), "project", "split", "mine", "--val-fraction", "0.06"]
    assert app.main(cli) == 2 and "(--grow adds to it)" in caplog.text
    assert validation_split.check_validation(engine, "mine").images == 35


@pytest.mark.parametrize(("val", "train"), [({None: 50}, {None: 10}),
                                            ({"light": 50, "dark": 61, None: 3}, {"light": 5, "dark": 5})])
def test_50_images_behind_the_score_are_enough(engine: Database, val: Counts, train: Counts) -> None:
    make_project(engine, "big", val=val, train=train)
    check = validation_split.check_validation(engine, "big")
    assert not check.too_small and check.warning is None and check.command is None


def test_a_grouped_project_is_judged_by_its_smallest_group(engine: Database) -> None:
    make_project(engine, "grouped", val={"light": 80, "dark": 30}, train={"light": 300, "dark": 200})
    check = validation_split.check_validation(engine, "grouped")
    assert (check.images, check.group, check.grouped) == (30, "dark", True)
    assert "rests on 30 validation images of group 'dark', fewer than 50" in (check.warning or "")
    assert "bringing the smallest group to" in (check.warning or "")
    done = validation_split.carve_bigger_validation(engine, "grouped")
    assert done.moved == check.moved and done.after.group == "dark" and done.after.images == check.reached >= 50
    assert not done.after.too_small
    with pytest.raises(ValueError, match="big enough already"):
        validation_split.carve_bigger_validation(engine, "grouped")


def test_a_group_with_no_val_images_yet_must_reach_50_too(engine: Database) -> None:
    make_project(engine, "new-group", val={"light": 60, None: 10}, train={"light": 100, "dark": 40})
    check = validation_split.check_validation(engine, "new-group")
    assert not check.too_small  # the score rests on light's 60 today: the carve is not asked for
    make_project(engine, "both-short", val={"light": 40}, train={"light": 100, "dark": 40})
    check = validation_split.check_validation(engine, "both-short")
    assert check.too_small and check.command is None and check.short_group == "dark"  # dark: 20 at most
    assert "Carving cannot fix it" in (check.warning or "") and "Import more images of group 'dark'" in check.warning


def test_too_few_training_images_says_so_instead_of_a_command(engine: Database) -> None:
    make_project(engine, "small", val={None: 35}, train={None: 20})
    check = validation_split.check_validation(engine, "small")
    assert check.too_small and check.command is None and check.val_fraction is None
    assert check.reached == 45  # half of each class's 10 training images
    assert check.warning is not None and "Carving cannot fix it" in check.warning
    assert "python app.py" not in check.warning
    with pytest.raises(ValueError, match="Carving cannot fix it"):
        validation_split.carve_bigger_validation(engine, "small")


def test_no_val_split_at_all_gets_a_command_without_grow(engine: Database) -> None:
    make_project(engine, "fresh", val={}, train={None: 600})
    check = validation_split.check_validation(engine, "fresh")
    assert check.images == 0 and "has no validation images" in (check.warning or "")
    assert check.command == "python app.py project split fresh --val-fraction 0.09"


def test_the_carve_is_refused_while_a_run_is_queued(engine: Database) -> None:
    make_project(engine, "busy", val={None: 35}, train={None: 286})
    with session_scope(engine) as session:
        create_training_run(session, project_id=get_project(session, "busy").id, config={})
    with pytest.raises(ConflictError, match="queued"):
        validation_split.carve_bigger_validation(engine, "busy")
    assert validation_split.check_validation(engine, "busy").images == 35  # nothing moved


def test_names_with_spaces_and_quotes_are_quoted_in_the_command(engine: Database) -> None:
    make_project(engine, "my birds' set", val={None: 10}, train={None: 400})
    command = validation_split.check_validation(engine, "my birds' set").command or ""
    assert shlex.split(command)[4] == "my birds' set"
