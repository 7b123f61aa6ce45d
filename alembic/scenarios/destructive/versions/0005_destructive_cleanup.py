"""Scenario destructive: statements plan must mark (and --policy block must refuse).

Drops a column and an index, narrows a column's type, renames a table and
deletes every comment.

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
    op.drop_column("project", "description")
    op.drop_index("ix_task_status_priority", table_name="task")
    op.alter_column("worker", "kind", type_=sa.String(length=10), existing_type=sa.String(length=20))
    op.execute("DELETE FROM comment")
    op.rename_table("worker", "member")


def downgrade() -> None:
    op.rename_table("member", "worker")
    op.alter_column("worker", "kind", type_=sa.String(length=20), existing_type=sa.String(length=10))
    op.create_index("ix_task_status_priority", "task", ["status", "priority"])
    op.add_column("project", sa.Column("description", sa.String(), nullable=True))
