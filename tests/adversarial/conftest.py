"""Adversarial-input fixtures: a fresh migrated database per test (SQLite, and PostgreSQL when
`TEST_DATABASE_URL` is set), the CLI run against it, and snapshots proving a refusal changed nothing."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

import app
import store
from services.runs import Launched, launch_run, project_runs
from tests.ui.conftest import TinyProject


@dataclass(frozen=True)
class Cli:
    """`python app.py --data-dir DATA --db URL ...` on the test's database."""

    data_dir: Path
    engine: Engine

    def __call__(self, *argv: str) -> int:
        url = self.engine.url.render_as_string(hide_password=False)
        return app.main(["--data-dir", str(self.data_dir), "--db", url, *argv])


@pytest.fixture
def cli(engine: Engine, tmp_path: Path) -> Cli:
    """The command line against the `engine` database, data dir `tmp_path/data`."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return Cli(data_dir, engine)


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table: equal before and after a refused command means nothing was written."""
    with engine.connect() as connection:
        return {table.name: connection.scalar(select(func.count()).select_from(table)) or 0
                for table in store.Base.metadata.sorted_tables}


def tree_state(root: Path) -> dict[str, str]:
    """Every entry under `root` (root included) -> sha256 of a file, `dir`, or `link -> target`."""
    state: dict[str, str] = {}
    paths = [root, *sorted(root.rglob("*"))] if root.exists() or root.is_symlink() else []
    for path in paths:
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            state[rel] = f"link -> {os.readlink(path)}"
        elif path.is_dir():
            state[rel] = "dir"
        else:
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def launch_running(tiny: TinyProject) -> Launched:
    """A real training process on the tiny project, returned once its run row says "running": fixed, exactly 200
    epochs (the adaptive default may stop after 3), so it is still running when a test kills or starves it."""
    engine, settings = tiny.deps.engine, tiny.deps.settings
    launched = launch_run(engine, settings, tiny.name, {"epochs": 200, "batch_size": 2, "schedule": "fixed"})
    deadline = time.monotonic() + 240
    while project_runs(engine, settings, tiny.name)[0].status != "running":
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.5)
    return launched
