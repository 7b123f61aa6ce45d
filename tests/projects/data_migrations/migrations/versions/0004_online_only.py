"""online only

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 19:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """A revision that refuses offline mode, as some projects' data fixes do."""
    if op.get_context().as_sql:
        raise RuntimeError("revision 0004 runs online only")
    op.execute('UPDATE "order" SET total = 0 WHERE total IS NULL')


def downgrade() -> None:
    """Downgrade schema."""
