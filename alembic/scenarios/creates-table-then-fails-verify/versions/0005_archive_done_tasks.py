"""Scenario creates-table-then-fails-verify: create task_archive and move done tasks into it.

The migration commits, task loses rows (verify fails), and a restore must
bring back the old state including dropping task_archive, a table the
backup never had (pg_restore --clean alone would leave it behind).

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
    op.execute("CREATE TABLE task_archive AS SELECT * FROM task WHERE status = 'done'")
    op.execute("DELETE FROM comment WHERE task_id IN (SELECT id FROM task WHERE status = 'done')")
    op.execute("DELETE FROM task WHERE status = 'done'")


def downgrade() -> None:
    op.execute("INSERT INTO task SELECT * FROM task_archive")
    op.drop_table("task_archive")
