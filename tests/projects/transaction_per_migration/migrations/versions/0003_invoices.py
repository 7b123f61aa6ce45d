"""invoices

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 19:00:00.000000

"""
from typing import Sequence, Union
import os
import time

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    if os.environ.get("INJECT_FAILURE") == "hang":  # tests/steps/test_projects.py kills the step here
        time.sleep(120)
    op.create_table(
        "invoice",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customer.id"), nullable=False),
        sa.Column("amount", sa.Numeric(10, 2), nullable=False),
    )
    op.execute(
        "INSERT INTO invoice (customer_id, amount) SELECT 1 + g % 50, g * 1.5 FROM generate_series(1, 100) g"
    )
    op.execute("UPDATE customer SET name = upper(name)")
    # tests/steps/test_projects.py injects a failure here: a Python error, or a statement PostgreSQL refuses
    failure = os.environ.get("INJECT_FAILURE")
    if failure == "raise":
        raise RuntimeError("injected failure in 0003")
    if failure == "sql":
        op.execute("ALTER TABLE invoice ADD CONSTRAINT invoice_large CHECK (amount > 1000)")


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("invoice")
