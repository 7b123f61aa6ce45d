"""customers

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 19:00:00.000000

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
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(100), nullable=False),
        sa.Column("name", sa.Text()),
        sa.UniqueConstraint("email"),
        sa.CheckConstraint("length(email) > 3"),
    )
    op.execute(
        "INSERT INTO customer (email, name) "
        "SELECT 'user' || g || '@example.com', 'name ' || g FROM generate_series(1, 50) g"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("customer")
