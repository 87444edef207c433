"""Engine, migrations and the transaction helper."""

from __future__ import annotations

import logging
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

import store


def test_sqlite_gets_parent_dir_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = store.open_database(f"sqlite:///{tmp_path / 'new' / 'dir' / 'studio.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "new" / "dir").is_dir()
    engine.dispose()


def test_upgrade_creates_schema_once_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = store.open_database(f"sqlite:///{tmp_path / 'studio.db'}")
    with caplog.at_level(logging.INFO, logger="store.db"):
        assert store.upgrade(engine) == "0002"
    assert "database schema upgraded to 0002" in caplog.text
    assert store.upgrade(engine) == "0002"  # a second start changes nothing
    assert {"project", "box", "box_event", "training_run"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_session_scope_commits_or_rolls_back(engine: Engine) -> None:
    with store.session_scope(engine) as session:
        store.create_project(session, name="kept")
    with pytest.raises(RuntimeError), store.session_scope(engine) as session:
        store.create_project(session, name="lost")
        raise RuntimeError("boom")
    with store.session_scope(engine) as session:
        assert [p.name for p in store.list_projects(session)] == ["kept"]
        assert store.get_project(session, "kept").created.tzinfo == UTC


def test_unknown_project_names_the_known_ones(engine: Engine) -> None:
    with store.session_scope(engine) as session:
        store.create_project(session, name="alpha")
        store.create_project(session, name="beta")
        expected = r"no project named alpah \(did you mean \"alpha\"\?\); known: alpha, beta"
        with pytest.raises(ValueError, match=expected):
            store.get_project(session, "alpah")


def test_project_rules(engine: Engine) -> None:
    with store.session_scope(engine) as session:
        store.create_project(session, name="p", task="single_label", classes=["a", "b"])
        with pytest.raises(ValueError, match="already exists"):
            store.create_project(session, name="p")
        with pytest.raises(ValueError, match="task must be one of"):
            store.create_project(session, name="q", task="regression")
        classes = store.add_classes(session, project_id=store.get_project(session, "p").id, names=["b", "c"])
        assert [(c.name, c.index) for c in classes] == [("a", 0), ("b", 1), ("c", 2)]
