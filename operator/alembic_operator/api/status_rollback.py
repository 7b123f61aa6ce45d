"""The MigrationRun's ``status.rollback``: how a failed run's database was (or is being) brought back.

Set when a rollback begins with ``spec.rollback.method: downgrade``: the method
asked for, the one that brought the database back (the restore, when the
downgrade was missing, failed or left another schema) and why it fell back.
A run rolled back by restore alone has none (the restore's own record is
``status.steps.restore``).

Must not: import anything of ours but :mod:`.schema`; do I/O; decide anything.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alembic_operator.api.schema import CrdModel as _Model

RollbackMethod = Literal["restore", "downgrade"]
DowngradeOutcome = Literal["Succeeded", "Missing", "Failed", "SchemaDiffers", "NotAttempted"]


class RollbackStatus(_Model):
    """Which rollback method was asked for and used, and how the downgrade went."""

    method: RollbackMethod = Field(description="The method spec.rollback.method asked for.")
    used: RollbackMethod = Field(
        description="The method that brought (or is bringing) the database back: downgrade, or the restore "
        "it fell back to."
    )
    downgrade: DowngradeOutcome | None = Field(
        default=None,
        description="How the downgrade ended: Succeeded; Missing (a revision has no downgrade); Failed; "
        "SchemaDiffers (the schema after it is not the one at the backup); NotAttempted (it could not help).",
    )
    to_revision: str | None = Field(
        default=None, description="The revision the database was downgraded to (the backup's); empty for base."
    )
    fallback: str | None = Field(default=None, description="Why the restore followed instead of the downgrade.")
