"""The MigrationRun's ``spec.rehearsal``: rehearse the migration on a scratch copy before the real one.

Its own module because :mod:`.spec` is at its size limit; the field itself is ``MigrationRunSpec.rehearsal``.
What a rehearsal is and costs: the ``rehearse`` step (:mod:`alembic_operator.job.commands.rehearse`) and
the phase Rehearsing (:mod:`alembic_operator.controller.reconciler.rehearsal`).

Must not: import anything of ours but :mod:`.schema` and :mod:`.refs`; do I/O.
"""

from __future__ import annotations

from pydantic import Field

from alembic_operator.api.refs import SecretKeyRef
from alembic_operator.api.schema import CrdModel as _Model


class RehearsalSpec(_Model):
    """After the backup, restore it into a scratch database, migrate and verify that copy first."""

    enabled: bool = Field(
        default=False,
        description="true: after the backup, restore it into a scratch database (alembic_rehearsal_<hex>) and "
        "run the same migrate and verify steps there; a failure ends the run Failed with the real database "
        "untouched. The copy is always dropped. Costs the restore's time and the database's size in disk, and "
        "needs CREATEDB on the rehearsal's server.",
    )
    max_database_bytes: int | None = Field(
        default=None,
        ge=1,
        description="Refuse the rehearsal (the run ends Failed, nothing changed) when the real database is "
        "larger than this many bytes; unset: no limit.",
    )
    url_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="A Secret key holding the URL of another server (or branch: Neon, CloudNativePG, any "
        "PostgreSQL) to make the scratch database on; its database is only used to connect. Unset: the real "
        "database's own server.",
    )
    jobs: int = Field(
        default=2, ge=1, le=32, description="Parallel pg_restore jobs (-j) when restoring the scratch copy."
    )
