"""The MigrationRun's ``status.drift``: how the app's models compare with the migrated database.

Written from the drift step's result (``alembic check``'s differences, one line each).

Must not: import anything of ours but :mod:`.schema`; do I/O; decide anything.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from alembic_operator.api.schema import CrdModel as _Model


class DriftStatus(_Model):
    """The differences between the app's models and the database after the migration."""

    policy: str | None = Field(default=None, description="spec.verify.drift when it was checked: warn or fail.")
    differences: list[str] = Field(
        default_factory=list, description="Each difference as alembic check reports it (at most 20)."
    )
    checked_at: datetime | None = Field(default=None, description="When the drift step ended.")
