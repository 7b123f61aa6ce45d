"""Add the composite index ix_task_status_priority on task (status, priority).

Revision ID: 0004
Revises: 0003
Create Date: 2026-01-26 09:00:00
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_task_status_priority", "task", ["status", "priority"])


def downgrade() -> None:
    op.drop_index("ix_task_status_priority", table_name="task")
