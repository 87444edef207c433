"""a run's summary: its outcome, why it stopped and which epoch it kept

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

`training_run.summary` (JSON, NULL for runs made before it and for runs that never finished training):
{"outcome": "improved" | "no_improvement", "stop_reason", "kept_epoch", "selection_rule", "epochs"}.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('training_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('summary', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('training_run', schema=None) as batch_op:
        batch_op.drop_column('summary')
