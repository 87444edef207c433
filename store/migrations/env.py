"""Alembic environment: runs on the connection `store.db.upgrade` passes in config.attributes."""

from __future__ import annotations

from alembic import context

import store.models_runs  # noqa: F401  (registers the tables on Base.metadata)
from store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through store.upgrade(engine), not the alembic command line")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
