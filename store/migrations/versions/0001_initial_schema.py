"""initial schema

Revision ID: 0001
Revises: -
Create Date: 2026-11-22

The checkpoint.run_id -> training_run foreign key closes a cycle (training_run.base_checkpoint_id
-> checkpoint): SQLite accepts it inline before training_run exists, other backends add it after.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


RUN_FK = "fk_checkpoint_run_id_training_run"


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _run_fk_inline() -> list[sa.ForeignKeyConstraint]:
    if not _is_sqlite():
        return []
    return [sa.ForeignKeyConstraint(["run_id"], ["training_run.id"], name=RUN_FK, ondelete="SET NULL")]


def upgrade() -> None:
    op.create_table('project',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('task', sa.String(length=20), nullable=False),
    sa.Column('image_size', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("task IN ('single_label', 'multi_label')", name=op.f('ck_project_task')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project')),
    sa.UniqueConstraint('name', name=op.f('uq_project_name'))
    )
    op.create_table('checkpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=2048), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('arch', sa.String(length=100), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['checkpoint.id'], name=op.f('fk_checkpoint_parent_id_checkpoint'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_checkpoint_project_id_project'), ondelete='CASCADE'),
    *_run_fk_inline(),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoint'))
    )
    with op.batch_alter_table('checkpoint', schema=None) as batch_op:
        batch_op.create_index('ix_checkpoint_project_created', ['project_id', 'created'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkpoint_run_id'), ['run_id'], unique=False)
        batch_op.create_index('uq_checkpoint_one_active', ['project_id'], unique=True, sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))

    op.create_table('class',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_class_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_class')),
    sa.UniqueConstraint('project_id', 'name', name=op.f('uq_class_project_id_name')),
    sa.UniqueConstraint('project_id', 'position', name=op.f('uq_class_project_id_position'))
    )
    op.create_table('image',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=2048), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=50), nullable=False),
    sa.Column('group_name', sa.String(length=200), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_image_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image')),
    sa.UniqueConstraint('project_id', 'path', name=op.f('uq_image_project_id_path')),
    sa.UniqueConstraint('project_id', 'sha256', name=op.f('uq_image_project_id_sha256'))
    )
    with op.batch_alter_table('image', schema=None) as batch_op:
        batch_op.create_index('ix_image_project_group', ['project_id', 'group_name'], unique=False)
        batch_op.create_index('ix_image_project_split_path', ['project_id', 'split', 'path'], unique=False)

    op.create_table('box',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=False),
    sa.Column('x0', sa.Float(), nullable=False),
    sa.Column('y0', sa.Float(), nullable=False),
    sa.Column('x1', sa.Float(), nullable=False),
    sa.Column('y1', sa.Float(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.CheckConstraint("source IN ('imported', 'user', 'proposed')", name=op.f('ck_box_source')),
    sa.ForeignKeyConstraint(['class_id'], ['class.id'], name=op.f('fk_box_class_id_class'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_box_image_id_image'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_box'))
    )
    with op.batch_alter_table('box', schema=None) as batch_op:
        batch_op.create_index('ix_box_class', ['class_id'], unique=False)
        batch_op.create_index('ix_box_image_live', ['image_id', 'deleted_at'], unique=False)

    op.create_table('evaluation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=50), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['checkpoint.id'], name=op.f('fk_evaluation_checkpoint_id_checkpoint'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation'))
    )
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.create_index('ix_evaluation_checkpoint', ['checkpoint_id', 'split'], unique=False)

    op.create_table('image_label',
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['class_id'], ['class.id'], name=op.f('fk_image_label_class_id_class'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_image_label_image_id_image'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'class_id', name=op.f('pk_image_label'))
    )
    with op.batch_alter_table('image_label', schema=None) as batch_op:
        batch_op.create_index('ix_image_label_class', ['class_id', 'image_id'], unique=False)

    op.create_table('training_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat', sa.DateTime(timezone=True), nullable=True),
    sa.Column('base_checkpoint_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name=op.f('ck_training_run_status')),
    sa.ForeignKeyConstraint(['base_checkpoint_id'], ['checkpoint.id'], name=op.f('fk_training_run_base_checkpoint_id_checkpoint'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_training_run_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_run'))
    )
    with op.batch_alter_table('training_run', schema=None) as batch_op:
        batch_op.create_index('ix_training_run_project_created', ['project_id', 'created'], unique=False)
        batch_op.create_index('uq_training_run_one_active', ['project_id'], unique=True, sqlite_where=sa.text("status IN ('queued', 'running')"), postgresql_where=sa.text("status IN ('queued', 'running')"))

    op.create_table('box_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('box_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('undo_of_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("action IN ('create', 'update', 'delete', 'restore')", name=op.f('ck_box_event_action')),
    sa.ForeignKeyConstraint(['box_id'], ['box.id'], name=op.f('fk_box_event_box_id_box'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_box_event_image_id_image'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['undo_of_id'], ['box_event.id'], name=op.f('fk_box_event_undo_of_id_box_event'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_box_event'))
    )
    with op.batch_alter_table('box_event', schema=None) as batch_op:
        batch_op.create_index('ix_box_event_box', ['box_id'], unique=False)
        batch_op.create_index('ix_box_event_image', ['image_id', 'id'], unique=False)
        batch_op.create_index('ix_box_event_undo_of', ['undo_of_id'], unique=False)

    op.create_table('evaluation_image',
    sa.Column('evaluation_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('epg', sa.Float(), nullable=True),
    sa.Column('iou', sa.Float(), nullable=True),
    sa.Column('correct', sa.Boolean(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('predicted_index', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['evaluation_id'], ['evaluation.id'], name=op.f('fk_evaluation_image_evaluation_id_evaluation'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], name=op.f('fk_evaluation_image_image_id_image'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('evaluation_id', 'image_id', name=op.f('pk_evaluation_image'))
    )
    with op.batch_alter_table('evaluation_image', schema=None) as batch_op:
        batch_op.create_index('ix_evaluation_image_correct', ['evaluation_id', 'correct', 'image_id'], unique=False)
        batch_op.create_index('ix_evaluation_image_epg', ['evaluation_id', 'epg'], unique=False)
        batch_op.create_index('ix_evaluation_image_image', ['image_id'], unique=False)
        batch_op.create_index('ix_evaluation_image_score', ['evaluation_id', 'score'], unique=False)

    if not _is_sqlite():
        op.create_foreign_key(RUN_FK, "checkpoint", "training_run", ["run_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    if not _is_sqlite():
        op.drop_constraint(RUN_FK, "checkpoint", type_="foreignkey")
    with op.batch_alter_table('evaluation_image', schema=None) as batch_op:
        batch_op.drop_index('ix_evaluation_image_score')
        batch_op.drop_index('ix_evaluation_image_image')
        batch_op.drop_index('ix_evaluation_image_epg')
        batch_op.drop_index('ix_evaluation_image_correct')

    op.drop_table('evaluation_image')
    with op.batch_alter_table('box_event', schema=None) as batch_op:
        batch_op.drop_index('ix_box_event_undo_of')
        batch_op.drop_index('ix_box_event_image')
        batch_op.drop_index('ix_box_event_box')

    op.drop_table('box_event')
    with op.batch_alter_table('training_run', schema=None) as batch_op:
        batch_op.drop_index('uq_training_run_one_active', sqlite_where=sa.text("status IN ('queued', 'running')"), postgresql_where=sa.text("status IN ('queued', 'running')"))
        batch_op.drop_index('ix_training_run_project_created')

    op.drop_table('training_run')
    with op.batch_alter_table('image_label', schema=None) as batch_op:
        batch_op.drop_index('ix_image_label_class')

    op.drop_table('image_label')
    with op.batch_alter_table('evaluation', schema=None) as batch_op:
        batch_op.drop_index('ix_evaluation_checkpoint')

    op.drop_table('evaluation')
    with op.batch_alter_table('box', schema=None) as batch_op:
        batch_op.drop_index('ix_box_image_live')
        batch_op.drop_index('ix_box_class')

    op.drop_table('box')
    with op.batch_alter_table('image', schema=None) as batch_op:
        batch_op.drop_index('ix_image_project_split_path')
        batch_op.drop_index('ix_image_project_group')

    op.drop_table('image')
    op.drop_table('class')
    with op.batch_alter_table('checkpoint', schema=None) as batch_op:
        batch_op.drop_index('uq_checkpoint_one_active', sqlite_where=sa.text('active'), postgresql_where=sa.text('active'))
        batch_op.drop_index(batch_op.f('ix_checkpoint_run_id'))
        batch_op.drop_index('ix_checkpoint_project_created')

    op.drop_table('checkpoint')
    op.drop_table('project')
