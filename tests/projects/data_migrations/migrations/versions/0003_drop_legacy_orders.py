"""drop legacy orders

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 19:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# alembic-operator: this revision means to drop legacy_order (its rows moved to "order" in 0002)
alembic_operator_allow = {"drop": ["legacy_order"]}


def upgrade() -> None:
    """Upgrade schema."""
    op.execute("DO $$ BEGIN RAISE NOTICE 'legacy orders archived'; END $$")
    op.drop_table("legacy_order")


def downgrade() -> None:
    """Downgrade schema."""
    op.create_table("legacy_order", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("total", sa.Integer()))
