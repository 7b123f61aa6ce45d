"""Scenario slow: a data migration with a visible side effect that takes a while.

It inserts one project named 'created-by-0005' (so a test can count that it
ran exactly once) and then sleeps SCENARIO_SLEEP_SECONDS (default 3) so two
concurrent migrate runs overlap.

Revision ID: 0005
Revises: 0004
"""
import os
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    seconds = float(os.environ.get("SCENARIO_SLEEP_SECONDS", "3"))
    op.execute("INSERT INTO project (name, created_at) VALUES ('created-by-0005', now())")
    op.execute(f"SELECT pg_sleep({seconds:g})")


def downgrade() -> None:
    op.execute("DELETE FROM project WHERE name = 'created-by-0005'")
