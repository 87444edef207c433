"""Opening the app's database: engine, schema upgrade, and detection of training runs that died."""

from __future__ import annotations

import logging
import os
from typing import TypeAlias

from sqlalchemy import Engine

from services.settings import Settings
from store.db import open_database, session_scope, upgrade
from store.runs import mark_stale_runs_failed

log = logging.getLogger(__name__)

Database: TypeAlias = Engine
"""The app's database as callers outside the services hold it: opened by `open_store`, handed to service
functions, never queried directly (each service function opens and owns its own transaction)."""


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists on this machine."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_store(settings: Settings, *, upgrade_schema: bool = True) -> Database:
    """Engine for the settings' database, schema upgraded, runs of dead processes marked failed.

    Every command and the app start through here, so a training process killed by SIGKILL or a
    power loss is found and marked failed at the next start.
    """
    engine = open_database(settings.database_url)
    if upgrade_schema:
        upgrade(engine)
    with session_scope(engine) as session:
        stale = mark_stale_runs_failed(session, pid_alive)
    if stale:
        log.warning("marked training runs %s failed: their processes are gone", stale)
    return engine
