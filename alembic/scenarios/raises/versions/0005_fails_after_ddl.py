"""Scenario raises: create a table, add a column, backfill, then fail.

With the default single transaction, PostgreSQL rolls all of it back: migrate
must report MigrationFailed with changedDatabase false and the schema must be
exactly as before.

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
    op.create_table("audit_log", sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("entry", sa.String(), nullable=False))
    op.add_column("task", sa.Column("archived", sa.Boolean(), nullable=True))
    op.execute("UPDATE task SET archived = false WHERE archived IS NULL")
    raise RuntimeError("scenario raises: revision 0005 fails after its DDL")


def downgrade() -> None:
    op.drop_column("task", "archived")
    op.drop_table("audit_log")
