"""The demo service: a new user's demo project comes with its baseline already evaluated."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from core.data import GENERATOR_VERSION
from services.database import open_store
from services.demo import DEMO_PROJECT, ensure_demo, evaluate_demo_baseline, warn_if_outdated
from services.settings import Settings
from store.db import session_scope
from store.models_runs import Evaluation, EvaluationImage
from store.projects import get_project
from store.runs import active_checkpoint


def test_the_demo_baseline_is_evaluated_on_test_with_per_image_rows(tiny_project: Settings) -> None:
    engine = open_store(tiny_project)
    evaluate_demo_baseline(engine, tiny_project)
    with session_scope(engine) as session:
        checkpoint = active_checkpoint(session, get_project(session, DEMO_PROJECT).id)
        evaluation = session.scalars(select(Evaluation).where(Evaluation.checkpoint_id == checkpoint.id)).one()
        rows = session.scalars(select(EvaluationImage).where(EvaluationImage.evaluation_id == evaluation.id)).all()
        assert evaluation.split == "test" and len(rows) == 16  # TINY: 16 test images
        assert 0.0 <= evaluation.metrics["accuracy"] <= 1.0 and evaluation.metrics["epg"] is not None
    engine.dispose()


def test_a_failing_evaluation_never_stops_the_app_from_starting(tiny_project: Settings) -> None:
    engine = open_store(tiny_project)
    with session_scope(engine) as session:
        checkpoint = active_checkpoint(session, get_project(session, DEMO_PROJECT).id)
        path = tiny_project.data_dir / checkpoint.path
    path.write_bytes(b"not a checkpoint")  # a damaged file: logged, not raised
    evaluate_demo_baseline(engine, tiny_project)
    with session_scope(engine) as session:
        assert session.scalars(select(Evaluation)).all() == []
    engine.dispose()


def test_an_existing_demo_from_an_older_generator_is_reported_and_left_alone(
        tiny_project: Settings, caplog: pytest.LogCaptureFixture) -> None:
    manifest_path = tiny_project.data_dir / "demo" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert not warn_if_outdated(tiny_project)  # the current version: silent
    manifest_path.write_text(json.dumps({**manifest, "version": GENERATOR_VERSION - 1}))
    engine = open_store(tiny_project)
    with caplog.at_level(logging.WARNING, logger="services.demo"):
        assert ensure_demo(engine, tiny_project, only_if_empty=False) is False
    assert f"version {GENERATOR_VERSION - 1}" in caplog.text and "fresh data dir" in caplog.text
    assert json.loads(manifest_path.read_text())["version"] == GENERATOR_VERSION - 1  # nothing rewritten
    engine.dispose()
