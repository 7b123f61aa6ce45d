"""Scenario per-migration-tx, step 2: fail after some DDL.

With transaction_per_migration = true, 0005 is already committed when this
fails: migrate must report changedDatabase true and the database stays at 0005.

Revision ID: 0006
Revises: 0005
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_task_archived", "task", ["archived"])
    raise RuntimeError("scenario per-migration-tx: revision 0006 fails after 0005 was committed")


def downgrade() -> None:
    op.drop_index("ix_task_archived", table_name="task")
