"""relax order total

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 19:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_constraint("order_total_positive", "order", type_="check")
    op.alter_column("order", "total", type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    """Downgrade schema."""
    op.alter_column("order", "total", type_=sa.Integer(), existing_type=sa.BigInteger())
    op.create_check_constraint("order_total_positive", "order", "total >= 0")
