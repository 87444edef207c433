"""Adversarial-input fixtures: a fresh migrated database per test (SQLite, and PostgreSQL when
`TEST_DATABASE_URL` is set), the CLI run against it, and snapshots proving a refusal changed nothing."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

import app
import store

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


def _postgres_engine() -> Iterator[Engine]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = store.open_database(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = store.open_database(make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database (SQLite file outside the data dir, or a private PostgreSQL schema)."""
    if request.param == "sqlite":
        engine = store.open_database(f"sqlite:///{tmp_path / 'db' / 'studio.db'}")
        store.upgrade(engine)
        yield engine
        engine.dispose()
        return
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL not set (PostgreSQL store tests)")
    for engine in _postgres_engine():
        store.upgrade(engine)
        yield engine


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
