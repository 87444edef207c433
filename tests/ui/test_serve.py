"""`python app.py serve` on a fresh data dir creates the demo project before building the UI."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine

import services.demo
import services.explanations
import ui.layout
from services.settings import Settings
from store.db import session_scope
from store.projects import create_project, list_projects
from ui import serve


@pytest.fixture()
def fake_demo(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace the (seconds-long) demo generation by a bare project; record each call's data dir."""
    calls: list[Path] = []

    def create(engine: Engine, settings: Settings, **_: object) -> None:
        calls.append(settings.data_dir)
        with session_scope(engine) as session:
            create_project(session, name=services.demo.DEMO_PROJECT, task="single_label", image_size=64,
                           classes=["a", "b"])

    monkeypatch.setattr(services.demo, "create_demo_project", create)
    return calls


@pytest.fixture()
def launched(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Stop `launch` from serving (and from changing torch's thread count); record the deps it was handed."""
    seen: list[object] = []
    monkeypatch.setattr(services.explanations, "configure_serving_threads", lambda settings: None)  # process-wide
    monkeypatch.setattr(ui.layout, "launch", lambda settings, *, deps=None, **_: seen.append(deps))
    return seen


def project_names(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return [p.name for p in list_projects(session)]


def test_serve_creates_the_demo_project_on_a_fresh_data_dir(tmp_path: Path, fake_demo: list[Path],
                                                             launched: list[object],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with caplog.at_level(logging.INFO, logger=serve.__name__):
        assert serve.run(settings, argparse.Namespace()) == 0
    assert fake_demo == [settings.data_dir] and "created the demo project" in caplog.text
    [deps] = launched
    assert project_names(deps.engine) == ["demo"]  # created before the UI was built, with the app's engine
    assert serve.run(settings, argparse.Namespace()) == 0
    assert len(fake_demo) == 1  # a second start leaves the data dir alone


def test_serve_leaves_a_data_dir_with_projects_alone(tmp_path: Path, fake_demo: list[Path],
                                                      launched: list[object]) -> None:
    from ui.deps import build_deps

    settings = Settings(data_dir=tmp_path / "data")
    with session_scope(build_deps(settings).engine) as session:
        create_project(session, name="mine", task="single_label", image_size=32, classes=["x", "y"])
    assert serve.run(settings, argparse.Namespace()) == 0
    assert fake_demo == [] and project_names(launched[0].engine) == ["mine"]
