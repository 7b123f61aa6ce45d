"""orders and legacy tables

Revision ID: 0001
Revises:
Create Date: 2026-11-29 19:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table("legacy_order", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("total", sa.Integer()))
    op.create_table(
        "order",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.CheckConstraint("total >= 0", name="order_total_positive"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("order")
    op.drop_table("legacy_order")
