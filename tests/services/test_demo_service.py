"""The demo service: a new user's demo project comes with its baseline already evaluated."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from core.data import GENERATOR_VERSION, SyntheticConfig
from services.checkpoints import default_pair, list_project_checkpoints
from services.database import open_store
from services.demo import (
    DEMO_PROJECT,
    DemoPreparation,
    create_demo_project,
    ensure_demo,
    evaluate_demo_baseline,
    warn_if_outdated,
)
from services.demo_data import DemoData, demo_dir
from services.settings import Settings
from store.db import session_scope
from store.models import Image
from store.models_runs import Evaluation, EvaluationImage
from store.projects import get_project
from store.runs import active_checkpoint, create_training_run, mark_run_choice, register_checkpoint
from tests.services.conftest import TINY


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


def test_demo_data_prepared_early_is_waited_for_not_made_again(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", device="cpu")
    config = SyntheticConfig(**TINY)
    data = DemoData(settings, config).begin()  # as `serve` does before its heavy imports
    data.wait_store()
    engine = open_store(settings)
    seen: list[tuple[str, int, int]] = []
    preparation = DemoPreparation()
    preparation.update = lambda stage, done=0, total=0, error="": seen.append((stage, done, total))  # type: ignore
    create_demo_project(engine, settings, config=config, baseline=None, preparation=preparation, data=data)
    manifest = demo_dir(settings) / "manifest.json"
    written = manifest.stat().st_mtime_ns
    with session_scope(engine) as session:
        project = get_project(session, DEMO_PROJECT)
        assert len(session.scalars(select(Image).where(Image.project_id == project.id)).all()) == 96  # 64 + 16 + 16
    assert ("images", 96, 96) in seen and ("import", 0, 96) in seen  # the progress reached the page
    assert manifest.stat().st_mtime_ns == written  # nothing redrawn
    engine.dispose()


def test_a_failed_early_preparation_fails_the_demo_with_its_reason(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", device="cpu")
    (tmp_path / "data").mkdir()
    demo_dir(settings).write_text("a file where the demo folder goes")  # the images cannot be written
    data = DemoData(settings, SyntheticConfig(**TINY)).begin()
    with pytest.raises(RuntimeError, match="preparing the demo data failed"):
        data.wait()
    data = DemoData(settings).begin()
    data.wait_store()
    engine = open_store(settings)
    preparation = DemoPreparation()
    preparation.start(engine, settings, data).join(timeout=60)
    status = preparation.status()
    assert status.stage == "failed" and "preparing the demo data failed" in status.error
    engine.dispose()


def test_compare_opens_on_the_checkpoint_the_newest_run_chose(tiny_project: Settings) -> None:
    engine = open_store(tiny_project)
    with session_scope(engine) as session:
        project = get_project(session, DEMO_PROJECT)
        base = active_checkpoint(session, project.id).id
        run = create_training_run(session, project_id=project.id, config={}, base_checkpoint_id=base)
        session.flush()
        epochs = [register_checkpoint(session, project_id=project.id, path=f"checkpoints/e{e}.pt", sha256=f"{e:064x}",
                                      arch="bcos_small", parent_id=base, run_id=run.id, note=f"run {run.id}, epoch {e}")
                  for e in (1, 2)]
        first, newest = epochs[0].id, epochs[1].id
    assert default_pair(engine, DEMO_PROJECT) == (base, newest)  # no choice recorded yet: the newest
    with session_scope(engine) as session:
        mark_run_choice(session, first)
        mark_run_choice(session, first)  # idempotent
    assert default_pair(engine, DEMO_PROJECT) == (base, first)  # the epoch the run chose, not the last one
    listed = {c.id: c.note for c in list_project_checkpoints(engine, DEMO_PROJECT)}
    assert listed[first] == f"run {run.id}, epoch 1 · the run's choice" and "choice" not in listed[newest]
    engine.dispose()
