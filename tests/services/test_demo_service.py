"""The demo service: a new user's demo project comes with its baseline already evaluated."""

from __future__ import annotations

from sqlalchemy import select

from services.database import open_store
from services.demo import DEMO_PROJECT, evaluate_demo_baseline
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
