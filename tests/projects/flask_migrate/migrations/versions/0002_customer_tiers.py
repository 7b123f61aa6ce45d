"""customer tiers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 19:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column("customer", sa.Column("tier", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_customer_tier", "customer", ["tier"])
    op.execute("UPDATE customer SET tier = id % 3")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_customer_tier", table_name="customer")
    op.drop_column("customer", "tier")
