"""copy legacy orders

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 19:30:00.000000

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
    """A data migration that reads first: it needs a live database (offline there is no bind)."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, total FROM legacy_order")).all()
    for row in rows:
        bind.execute(sa.text('INSERT INTO "order" (id, total) VALUES (:id, :total)'), {"id": row.id, "total": row.total})


def downgrade() -> None:
    """Downgrade schema."""
