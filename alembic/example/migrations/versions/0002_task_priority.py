"""Add task.priority with a data migration: nullable, backfill, then NOT NULL with a default.

The backfill uses ``op.execute`` rather than ``op.get_bind().execute`` so the
revision also renders in offline (``--sql``) mode, which ``plan`` relies on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-12 09:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # 1. add the column nullable, so existing rows are valid
    op.add_column("task", sa.Column("priority", sa.String(length=20), nullable=True))
    # 2. backfill: urgent-looking tasks become high, the rest medium
    op.execute("UPDATE task SET priority = 'high' WHERE priority IS NULL AND title ILIKE '%urgent%'")
    op.execute("UPDATE task SET priority = 'medium' WHERE priority IS NULL")
    # 3. only now make it NOT NULL, with a default for new rows
    op.alter_column("task", "priority", existing_type=sa.String(length=20), nullable=False,
                    server_default="medium")


def downgrade() -> None:
    op.drop_column("task", "priority")
