"""Engines, schema upgrades (Alembic, run programmatically) and the one-transaction session helper.

A SQLite file is watched (`SqliteFileGuard`): before every transaction its folder and file must still be there,
writable, and the very file this engine first opened, so a data folder removed or made read-only under a running
server is refused once with one line instead of written to (a deleted file stays writable through open handles).
New connections never create the file again, and SQLite's "database is locked" becomes `DatabaseBusyError`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.orm import Session, sessionmaker

from store.errors import DatabaseBusyError, DatabaseMissingError, DataDirUnavailableError, NotFoundError

log = logging.getLogger(__name__)
RowT = TypeVar("RowT")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# A write waits this long for another process's lock, then answers "the database is busy": within 5 s in all.
SQLITE_BUSY_TIMEOUT_MS = 4_500
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's own files beside the database
_GUARDS: weakref.WeakKeyDictionary[Engine, SqliteFileGuard] = weakref.WeakKeyDictionary()


def sqlite_file(url: str | URL) -> Path | None:
    """The absolute path of a SQLite database file named by `url`; None for other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser().absolute()


class SqliteFileGuard:
    """One SQLite file as an engine opened it: its identity (device, inode) and what is wrong with it now.

    `check()` runs before every transaction; a problem raises `DataDirUnavailableError`, whose `first` says
    whether this is the first report of that problem by this engine (so a polling page logs it once).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.folder = path.parent
        self.identity: tuple[int, int] | None = None
        self._reported: str | None = None
        self._lock = threading.Lock()

    def remember(self) -> None:
        """Record the file's identity (once: the file this engine works on from now on)."""
        if self.identity is None:
            stat = os.stat(self.path)
            self.identity = (stat.st_dev, stat.st_ino)

    def problem(self) -> str | None:
        """What stops this engine from writing safely, as the sentence a user reads; None when nothing does."""
        if not self.folder.is_dir():
            return f"the data folder {self.folder} is gone; nothing was written — restore it and restart"
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return f"the database {self.path} is gone; nothing was written — restore it and restart"
        if self.identity is not None and (stat.st_dev, stat.st_ino) != self.identity:
            return (f"the database {self.path} was replaced by another file while in use; nothing was written — "
                    "restart to use the file now there")
        if not (os.access(self.path, os.W_OK) and os.access(self.folder, os.W_OK)):
            return f"the data folder {self.folder} is read-only; nothing was written — make it writable and restart"
        return None

    def error(self, problem: str) -> DataDirUnavailableError:
        """`problem` as the error to raise, marked first when this engine has not reported it before."""
        with self._lock:
            first, self._reported = problem != self._reported, problem
        return DataDirUnavailableError(problem, first=first)

    def check(self) -> None:
        """Raise `DataDirUnavailableError` when the file is gone, read-only or not the one opened."""
        problem = self.problem()
        if problem is not None:
            raise self.error(problem)
        self._reported = None

    def connect_target(self) -> str:
        """The URI a new connection opens: read-write, never creating the file once it exists (a deleted data
        folder must not come back as an empty database)."""
        mode = "rw" if self.identity is not None else "rwc"
        return f"file:{quote(str(self.path))}?mode={mode}"


def check_database(engine: Engine) -> None:
    """Raise `DataDirUnavailableError` when `engine`'s SQLite file is gone, read-only or replaced (a no-op for
    other databases): call it before writing files that belong with the database."""
    guard = _GUARDS.get(engine)
    if guard is not None:
        guard.check()


def _prepare_sqlite_file(path: Path, *, create: bool) -> SqliteFileGuard:
    """Check the file before the engine exists: present and writable, or absent and allowed to be made."""
    guard = SqliteFileGuard(path)
    if path.exists():
        guard.remember()
        guard.check()
        return guard
    if not create:
        missing = "" if path.parent.is_dir() else f" (its folder {path.parent} does not exist either)"
        raise DatabaseMissingError(f"no database at {path}{missing}")
    leftovers = [path.name + suffix for suffix in SQLITE_SIDE_FILES if path.with_name(path.name + suffix).exists()]
    if leftovers:
        raise DatabaseMissingError(f"the database {path} is missing but its {', '.join(leftovers)} are still there: "
                                   "it was deleted or moved — restore it (nothing was created)")
    if path.parent.is_dir() and not os.access(path.parent, os.W_OK):
        raise guard.error(f"the data folder {path.parent} is read-only; nothing was written — make it writable and "
                          "restart")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirUnavailableError(f"cannot create the data folder {path.parent} ({exc.strerror}); nothing was "
                                      "written — choose a folder you can write") from None
    return guard


def _translate_error(guard: SqliteFileGuard | None, context: ExceptionContext) -> None:
    """SQLite's errors as a user reads them: busy → `DatabaseBusyError`; a file that cannot be opened or written
    because its folder went away or turned read-only → `DataDirUnavailableError`. Others pass unchanged."""
    original = context.original_exception
    if not isinstance(original, sqlite3.Error):
        return
    name = getattr(original, "sqlite_errorname", "") or ""
    text = str(original).lower()
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        log.debug("database busy: %s", original)  # the caller reports it, once
        raise DatabaseBusyError() from None
    if guard is not None and name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_NOTADB")):
        problem = guard.problem()
        if problem is not None:
            raise guard.error(problem) from None


def _translate_lock_timeout(context: ExceptionContext) -> None:
    """PostgreSQL's lock_timeout (SQLSTATE 55P03, lock_not_available) → `DatabaseBusyError`."""
    if getattr(context.original_exception, "sqlstate", None) == "55P03":
        log.debug("database busy: %s", context.original_exception)
        raise DatabaseBusyError() from None


def _sqlite_pragmas(busy_timeout_ms: int, guard: SqliteFileGuard | None) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        """Foreign keys on, WAL journal, wait (not fail at once) when another writer holds the lock."""
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL (the default) keeps every committed box across a power cut; NORMAL could lose the last one.
            cursor.execute("PRAGMA synchronous=FULL")
        finally:
            cursor.close()
        if guard is not None:
            guard.remember()

    return on_connect


def open_database(url: str | URL, *, echo: bool = False, create: bool = True,
                  busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000) -> Engine:
    """An engine for `url` (any SQLAlchemy URL); SQLite gets its parent dir, WAL, foreign keys and a guard.

    SQLite: a missing file is created only with `create` (else `DatabaseMissingError`), and never beside its own
    leftover -wal/-journal files; a read-only folder raises `DataDirUnavailableError`. A write waits
    `busy_timeout_s` for another process's lock, then raises `DatabaseBusyError`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # PostgreSQL: a statement waits at most `busy_timeout_s` for another session's row or table lock, then
        # answers "the database is busy" like SQLite (the server's lock_timeout, set per connection)
        options = {}
        if parsed.get_backend_name() == "postgresql":  # kept beside any options the URL gives (a search_path)
            given = parsed.query.get("options", "")
            given = " ".join(given) if isinstance(given, tuple) else given
            options["options"] = f"{given} -c lock_timeout={round(busy_timeout_s * 1000)}".strip()
        engine = create_engine(parsed, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=10,
                               pool_recycle=1800, connect_args=options)
        event.listen(engine, "handle_error", _translate_lock_timeout)
        return engine
    path = sqlite_file(parsed)
    guard = _prepare_sqlite_file(path, create=create) if path is not None else None
    engine = create_engine(parsed, echo=echo, connect_args={"timeout": busy_timeout_s})
    event.listen(engine, "connect", _sqlite_pragmas(round(busy_timeout_s * 1000), guard))
    event.listen(engine, "handle_error", lambda context: _translate_error(guard, context))
    if guard is not None:
        _GUARDS[engine] = guard

        def open_file(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
            cargs[:1] = [guard.connect_target()]
            cparams["uri"] = True

        event.listen(engine, "do_connect", open_file)
        event.listen(engine, "begin", lambda _connection: guard.check())  # before every unit of work
    return engine


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
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:  # its per-step INFO lines are noise in a CLI
        alembic_log.setLevel(logging.WARNING)
    before = schema_revision(engine)
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
