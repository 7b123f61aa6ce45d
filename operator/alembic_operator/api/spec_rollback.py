"""The MigrationRun's ``spec.rollback``: what happens when the migration or the verification fails.

Its own module because :mod:`.spec` is at its size limit.

Must not: import anything of ours but :mod:`.schema`; do I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alembic_operator.api.schema import CrdModel as _Model


class RollbackSpec(_Model):
    """What happens when the migration or the verification fails."""

    on_failure: Literal["restore", "none"] = Field(
        default="restore",
        description="restore: bring the database back from the backup; none: leave it and say where the backup is.",
    )
    on_foreign_writes: Literal["hold", "restore"] = Field(
        default="hold",
        description="When the application wrote since the backup: hold waits for a person "
        "(annotation alembic-operator.dev/approve-restore=<the approving user name>); restore "
        "discards those writes.",
    )
    method: Literal["restore", "downgrade"] = Field(
        default="restore",
        description="restore: bring the database back from the backup (other sessions' writes since the backup "
        "are discarded, see onForeignWrites); downgrade: run alembic downgrade to the backup's revision in the "
        "app's image, keeping those writes, and require the schema to equal the one at the backup "
        "(fingerprint); when a revision has no downgrade, the downgrade fails or the schema differs, the "
        "restore follows.",
    )
