"""The MigrationRun's ``status.rehearsal``: the scratch database and what the rehearsal on it found.

``database`` is written before the first rehearsal Job is created, so an operator that restarts (or a
run deleted) mid-rehearsal knows which database to drop. The details (per-table writes) are in the run's
S3 folder (``rehearsal.json``); this is the summary.

Must not: import anything of ours but :mod:`.schema`; do I/O; decide anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from alembic_operator.api.schema import CrdModel as _Model


class RehearsedTableWrites(_Model):
    """Rows one table got from the rehearsed migration, on the copy."""

    table: str = Field(description="schema.table")
    inserted: int = Field(default=0, ge=0, description="Rows inserted.")
    updated: int = Field(default=0, ge=0, description="Rows updated.")
    deleted: int = Field(default=0, ge=0, description="Rows deleted.")


class RehearsalStatus(_Model):
    """The rehearsal on a scratch copy (spec.rehearsal)."""

    database: str = Field(description="The scratch database's name; recorded before it is created.")
    outcome: Literal["Succeeded", "Failed"] | None = Field(
        default=None, description="How the rehearsal's migrate and verify ended, once known."
    )
    message: str | None = Field(default=None, description="What the rehearsal found, or why it failed.")
    durations_seconds: dict[str, float] = Field(
        default_factory=dict, description="Seconds each rehearsal step took: prepare, migrate, verify, drop."
    )
    verify: str | None = Field(default=None, description="The verification of the copy: its outcome and message.")
    writes: list[RehearsedTableWrites] = Field(
        default_factory=list, description="Rows the rehearsed migration inserted, updated, deleted (at most 20 tables)."
    )
    report_uri: str | None = Field(default=None, description="S3 URI of rehearsal.json (every table's writes).")
    dropped: bool | None = Field(
        default=None,
        description="true once the scratch database was dropped (or found gone); false: the drop failed and "
        "the database is left for a person to drop.",
    )
    dropped_at: datetime | None = Field(default=None, description="When the drop step ended.")
