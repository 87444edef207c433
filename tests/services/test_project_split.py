"""`python app.py project split`: a project without a validation split gets one carved out of train."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select, update

import app
from services.settings import Settings
from store.db import open_database, session_scope
from store.models import Class, Image, ImageLabel


def _splits_by_class(settings: Settings) -> Counter[tuple[str, str]]:
    engine = open_database(settings.database_url)
    with session_scope(engine) as session:
        rows = session.execute(select(Image.split, Class.name).join(ImageLabel, ImageLabel.image_id == Image.id)
                               .join(Class, Class.id == ImageLabel.class_id)).all()
    engine.dispose()
    return Counter((split, name) for split, name in rows)


def _merge_val_into_train(settings: Settings) -> None:
    engine = open_database(settings.database_url)
    with session_scope(engine) as session:
        session.execute(update(Image).where(Image.split == "val").values(split="train"))
    engine.dispose()


def test_split_carves_a_stratified_seeded_val_and_refuses_to_touch_an_existing_one(
        tiny_project: Settings, caplog: pytest.LogCaptureFixture) -> None:
    _merge_val_into_train(tiny_project)
    before = _splits_by_class(tiny_project)
    cli = ["--data-dir", str(tiny_project.data_dir), "project", "split", "demo"]
    assert app.main([*cli, "--val-fraction", "0.25", "--seed", "3"]) == 0
    after = _splits_by_class(tiny_project)
    for name in ("warm", "cool"):  # each class gives a quarter of its training images
        train = before[("train", name)]
        carved = after[("val", name)]
        assert carved == int(train * 0.25 + 0.5) and after[("train", name)] == train - carved
    assert after[("test", "warm")] == before[("test", "warm")]  # other splits untouched
    assert app.main([*cli, "--val-fraction", "0.25"]) == 2 and "already has" in caplog.text
    assert _splits_by_class(tiny_project) == after  # the refusal changed nothing

    _merge_val_into_train(tiny_project)
    assert app.main([*cli, "--val-fraction", "0.25", "--seed", "3"]) == 0
    assert _splits_by_class(tiny_project) == after  # same seed, same images
    assert app.main([*cli, "--val-fraction", "1.5"]) == 2
