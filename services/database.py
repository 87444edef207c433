"""Opening the app's database: engine, schema upgrade, and detection of training runs that died."""

from __future__ import annotations

import logging
import os
from typing import TypeAlias

from sqlalchemy import Engine

from services.settings import Settings
from store.db import open_database, session_scope, upgrade
from store.runs import fail_silent_runs

log = logging.getLogger(__name__)



def run_heartbeat_timeout_s() -> float:
    """A run silent this long is failed by whoever looks next (env GUIDANCE_RUN_TIMEOUT_S; default 60 s)."""
    return float(os.environ.get("GUIDANCE_RUN_TIMEOUT_S", "60"))


def run_heartbeat_interval_s() -> float:
    """How often a training process touches its run row: well inside the timeout."""
    return min(5.0, run_heartbeat_timeout_s() / 6)


Database: TypeAlias = Engine
"""The app's database as callers outside the services hold it: opened by `open_store`, handed to service
functions, never queried directly (each service function opens and owns its own transaction)."""


def open_store(settings: Settings, *, upgrade_schema: bool = True) -> Database:
    """Engine for the settings' database, schema upgraded, silent runs marked failed.

    Every command and the app start through here, so a training process killed by SIGKILL or a power
    loss is found at the latest here (and by any poll, start or cancel before): a run whose heartbeat is
    older than `run_heartbeat_timeout_s()` is failed, whichever host it ran on.
    """
    engine = open_database(settings.database_url)
    if upgrade_schema:
        upgrade(engine)
    with session_scope(engine) as session:
        stale = fail_silent_runs(session, timeout_s=run_heartbeat_timeout_s())
    if stale:
        log.warning("marked training runs %s failed: no heartbeat for %.0f s", stale, run_heartbeat_timeout_s())
    return engine
