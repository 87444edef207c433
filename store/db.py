"""Engines, schema upgrades (Alembic, run programmatically) and the one-transaction session helper."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from store.errors import NotFoundError

log = logging.getLogger(__name__)
RowT = TypeVar("RowT")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys on, WAL journal, wait (not fail) when another writer holds the lock."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL (the default) keeps every committed box across a power cut; NORMAL could lose the last one.
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


def open_database(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for `url` (any SQLAlchemy URL); SQLite gets its parent dir, WAL and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file:")
        if not in_memory:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    return create_engine(parsed, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_recycle=1800)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply the migrations up to `revision` and return the revision the database is now at."""
    before = schema_revision(engine)
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:  # its per-step INFO lines are noise in a CLI
        alembic_log.setLevel(logging.WARNING)
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    after = schema_revision(engine)
    if after != before:
        log.info("database schema upgraded to %s (from %s)", after, before or "an empty database")
    else:
        log.debug("database schema up to date at %s", after)
    return after


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back (and re-raise) when it fails."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_row(session: Session, model: type[RowT], row_id: int, what: str) -> RowT:
    """The `model` row with primary key `row_id`; NotFoundError("no {what} with id …") otherwise."""
    row = session.get(model, row_id)
    if row is None:
        raise NotFoundError(f"no {what} with id {row_id}")
    return row
