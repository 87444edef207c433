"""Opening the app's database: engine, schema upgrade, and detection of training runs that died."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TypeAlias

from sqlalchemy import Engine

from services.settings import Settings
from store.db import SQLITE_BUSY_TIMEOUT_MS, open_database, session_scope, sqlite_file, upgrade
from store.errors import DatabaseMissingError
from store.runs import fail_silent_runs

log = logging.getLogger(__name__)

MISSING_HINT = ("check --data-dir (or GUIDANCE_DATA_DIR) and --db; importing a data set "
                "(`python app.py import …`) or starting the app (`python app.py`) creates one")


def run_heartbeat_timeout_s() -> float:
    """A run silent this long is failed by whoever looks next (env GUIDANCE_RUN_TIMEOUT_S; default 60 s)."""
    return float(os.environ.get("GUIDANCE_RUN_TIMEOUT_S", "60"))


def run_heartbeat_interval_s() -> float:
    """How often a training process touches its run row: well inside the timeout."""
    return min(5.0, run_heartbeat_timeout_s() / 6)


Database: TypeAlias = Engine
"""The app's database as callers outside the services hold it: opened by `open_store`, handed to service
functions, never queried directly (each service function opens and owns its own transaction)."""


def open_store(settings: Settings, *, upgrade_schema: bool = True, create: bool = True,
               busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000) -> Database:
    """Engine for the settings' database, schema upgraded, silent runs marked failed.

    Every command and the app start through here, so a training process killed by SIGKILL or a power
    loss is found at the latest here (and by any poll, start or cancel before): a run whose heartbeat is
    older than `run_heartbeat_timeout_s()` is failed, whichever host it ran on.

    A missing SQLite database is created only with `create` (the app's start, imports, the demo), and not even
    then beside the runs of an earlier one (`DatabaseMissingError` says what to do); a data folder that is
    read-only raises `DataDirUnavailableError`. Writes wait `busy_timeout_s` for another process's lock.
    """
    path = sqlite_file(settings.database_url)
    if path is not None and create and not path.exists():
        _refuse_a_second_start(settings, path)
    try:
        engine = open_database(settings.database_url, create=create, busy_timeout_s=busy_timeout_s)
    except DatabaseMissingError as exc:
        raise DatabaseMissingError(f"{exc}: {MISSING_HINT}" if not create else str(exc)) from None
    if upgrade_schema:
        upgrade(engine)
    with session_scope(engine) as session:
        stale = fail_silent_runs(session, timeout_s=run_heartbeat_timeout_s())
    if stale:
        log.warning("marked training runs %s failed: no heartbeat for %.0f s", stale, run_heartbeat_timeout_s())
    return engine


def _refuse_a_second_start(settings: Settings, path: Path) -> None:
    """A data folder that holds the runs of an earlier database but not the database was damaged (the file
    deleted or moved, or the folder removed under a running process): starting afresh there would hide that."""
    data_dir = settings.data_dir.resolve()
    runs = data_dir / "runs"
    if path.parent.resolve() != data_dir or not runs.is_dir() or not any(runs.iterdir()):
        return
    raise DatabaseMissingError(f"the database {path} is missing, but {data_dir} holds the runs of an earlier one "
                               f"({runs}): restore the database from a backup, or start afresh in an empty "
                               "--data-dir; nothing was created")
