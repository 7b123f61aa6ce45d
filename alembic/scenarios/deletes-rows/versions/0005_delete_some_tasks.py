"""Scenario deletes-rows: a "cleanup" that deletes every tenth task (and its comments) and succeeds.

The migration commits; only the verify step (row counts against the backup
manifest) can tell that rows went missing.

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
    op.execute("DELETE FROM comment WHERE task_id IN (SELECT id FROM task WHERE id % 10 = 0)")
    op.execute("DELETE FROM task WHERE id % 10 = 0")


def downgrade() -> None:
    pass  # deleted rows cannot be brought back: that is what the backup is for
