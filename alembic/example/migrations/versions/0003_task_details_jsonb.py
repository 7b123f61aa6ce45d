"""Add task.details, a JSONB column with server default '{}'.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-19 09:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("task", sa.Column("details", postgresql.JSONB(), nullable=False,
                                    server_default=sa.text("'{}'::jsonb")))


def downgrade() -> None:
    op.drop_column("task", "details")
