"""Scenario partial-downgrade: 0005 creates task_tag and an index on task.title; its downgrade forgets the index.

The downgrade runs and reaches 0004, but the schema is not the one the
migration started from: the fingerprint check must catch it (SchemaMismatch).

Revision ID: 0005
Revises: 0004
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table("task_tag", sa.Column("task_id", sa.Integer(), nullable=False), sa.Column("tag", sa.Text()))
    op.create_index("ix_task_title", "task", ["title"])


def downgrade() -> None:
    op.drop_table("task_tag")
