"""Scenario multiple-heads: branch b of two unmerged revisions on top of 0004.

migrate, plan and wait must refuse with a RevisionError naming both heads.

Revision ID: 0005b
Revises: 0004
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005b"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table("branch_b", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("branch_b")
