"""The MigrationRun's status: where a run is and what the operator observed and did (written by it only).

Must not: import anything of ours but :mod:`.schema` and its ``status_*`` parts; do I/O; decide anything
(the reconciler does; this holds its record).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

from pydantic import Field

from alembic_operator.api.schema import CrdModel as _Model
from alembic_operator.api.status_approval import ApprovalStatus
from alembic_operator.api.status_drift import DriftStatus
from alembic_operator.api.status_plan import DeclaredAllowance
from alembic_operator.api.status_progress import StepProgress
from alembic_operator.api.status_rehearsal import RehearsalStatus
from alembic_operator.api.status_rollback import RollbackStatus


class Phase(str, enum.Enum):
    """Where a run is. Each value's meaning is in :data:`PHASE_MEANINGS`."""

    PENDING = "Pending"
    QUEUED = "Queued"
    PLANNING = "Planning"
    AWAITING_APPROVAL = "AwaitingApproval"
    BACKING_UP = "BackingUp"
    REHEARSING = "Rehearsing"
    MIGRATING = "Migrating"
    VERIFYING = "Verifying"
    ROLLING_BACK = "RollingBack"
    ROLLBACK_HELD = "RollbackHeld"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"
    ROLLBACK_FAILED = "RollbackFailed"


PHASE_MEANINGS: dict[Phase, str] = {
    Phase.PENDING: "the run was accepted and nothing has started yet",
    Phase.QUEUED: "another run on the same database goes first (status.queue.blockedBy)",
    Phase.PLANNING: "the plan step renders the SQL offline and looks for destructive statements",
    Phase.AWAITING_APPROVAL: "waiting for a person to approve or reject the migration (status.approval); "
    "the database is unchanged",
    Phase.BACKING_UP: "pg_dump streams the database to S3; the database is unchanged",
    Phase.REHEARSING: "the migration and verification run on a scratch copy (status.rehearsal); "
    "the database is unchanged",
    Phase.MIGRATING: "alembic upgrade runs; the backup is complete and recorded",
    Phase.VERIFYING: "row counts and the revision are compared with the backup",
    Phase.ROLLING_BACK: "the database is being restored from the backup, or downgraded to its revision "
    "(rollback.method: downgrade)",
    Phase.ROLLBACK_HELD: "a restore is needed but would discard the application's writes; "
    "waiting for a person to approve it",
    Phase.SUCCEEDED: "terminal: migrated and verified",
    Phase.FAILED: "terminal: the run failed; status.message says whether the database changed",
    Phase.ROLLED_BACK: "terminal: the migration failed and the database was restored from the backup "
    "(or downgraded to its revision: status.rollback)",
    Phase.ROLLBACK_FAILED: "terminal: the restore failed; the database needs a person (backup in status.backup.uri)",
}

TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.ROLLED_BACK, Phase.ROLLBACK_FAILED})
#: The same as the strings a run's ``status.phase`` holds (a str-Enum member does not hash as its value).
TERMINAL_PHASE_VALUES = frozenset(phase.value for phase in TERMINAL_PHASES)

#: Phases in the order a run moves through them; a run never moves to a lower rank
#: (RollingBack and RollbackHeld share one: a held restore resumes when approved).
PHASE_RANK: dict[Phase, int] = {
    Phase.PENDING: 0,
    Phase.QUEUED: 1,
    Phase.PLANNING: 2,
    Phase.AWAITING_APPROVAL: 3,  # after the plan, or after the backup and rehearsal: it shares their rank
    Phase.BACKING_UP: 3,
    Phase.REHEARSING: 3,  # after the backup, before the migration; the database is unchanged
    Phase.MIGRATING: 4,
    Phase.VERIFYING: 5,
    Phase.ROLLBACK_HELD: 6,
    Phase.ROLLING_BACK: 6,
    Phase.SUCCEEDED: 8,
    Phase.FAILED: 8,
    Phase.ROLLED_BACK: 8,
    Phase.ROLLBACK_FAILED: 8,
}


class Condition(_Model):
    """A metav1.Condition; types and reasons are documented in :mod:`alembic_operator.api.conditions`."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Type of the condition: Ready, Reconciling, Stalled, Planned, BackedUp, "
        "Migrated, Verified or RolledBack.",
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        max_length=1024,
        min_length=1,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase reason for the condition's last transition.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: datetime = Field(description="When the status last changed.")
    observed_generation: int | None = Field(default=None, ge=0, description="The generation the condition was set for.")


class BackupStatus(_Model):
    """The backup taken for this run, as the backup step reported it."""

    uri: str | None = Field(default=None, description="S3 URI of the dump (file or directory).")
    size_bytes: int | None = Field(default=None, description="Size of the uploaded dump in bytes.")
    size: str | None = Field(default=None, description="Size for humans, e.g. 12.3 MiB.")
    sha256: str | None = Field(default=None, description="SHA-256 of the uploaded dump.")
    chunks_sha256: str | None = Field(
        default=None,
        description="SHA-256 of the manifest's list of the dump's chunk digests: a restore bound to it "
        "checks each chunk before pg_restore reads it.",
    )
    format: str | None = Field(default=None, description="pg_dump format: custom or directory.")
    duration_seconds: float | None = Field(default=None, description="How long the backup took, in seconds.")
    server_version: str | None = Field(default=None, description="PostgreSQL server version dumped.")
    pg_dump_version: str | None = Field(default=None, description="pg_dump version used.")
    manifest_uri: str | None = Field(
        default=None, description="S3 URI of the manifest (per-table row counts, checksum)."
    )


class RowCountsStatus(_Model):
    """The verify step's row-count comparison."""

    tables: int | None = Field(default=None, description="Tables compared.")
    rows_before: int | None = Field(default=None, description="Rows in the compared tables at backup time.")
    rows_after: int | None = Field(default=None, description="Rows in the compared tables after the migration.")
    violations: list[str] = Field(default_factory=list, description="Tables that lost rows or disappeared.")
    allowed: list[str] = Field(
        default_factory=list,
        description="Tables allowed to shrink, vanish or be renamed, and by which revision or the spec.",
    )


class PlanStatus(_Model):
    """The plan step's findings."""

    statements: int | None = Field(default=None, description="SQL statements the upgrade would run.")
    destructive: list[str] = Field(default_factory=list, description="Destructive statements found (abridged).")
    unrendered: list[str] = Field(
        default_factory=list,
        description="Revisions the plan could not render offline, 'id: reason': their statements are not checked.",
    )
    declared_allowances: list[DeclaredAllowance] = Field(
        default_factory=list,
        description="Data changes the pending revisions declare (alembic_operator_allow); verify allows them.",
    )


StepOutcome = Literal["Succeeded", "Failed"]


class StepStatus(_Model):
    """One step's Job and how it ended."""

    job: str | None = Field(default=None, description="Name of the step's current Job.")
    attempt: int = Field(
        default=1, ge=1, description="Attempt number; a new attempt only when a Job of a repeatable step vanished."
    )
    started_at: datetime | None = Field(default=None, description="When the operator created the Job.")
    finished_at: datetime | None = Field(default=None, description="When the step ended.")
    outcome: StepOutcome | None = Field(default=None, description="Succeeded or Failed, once ended.")
    exit_code: int | None = Field(default=None, description="Exit code of the step's container.")
    reason: str | None = Field(default=None, description="Machine-readable reason the step ended.")
    message: str | None = Field(default=None, description="What the step reported.")
    retry: bool | None = Field(
        default=None,
        description="True when the step failed without changing the "
        "database and said a new attempt may pass (a restore "
        "whose server or storage was away).",
    )


class StepsStatus(_Model):
    """Per-step Job records."""

    plan: StepStatus | None = Field(default=None, description="The plan step.")
    backup: StepStatus | None = Field(default=None, description="The backup step.")
    migrate: StepStatus | None = Field(default=None, description="The migrate step.")
    verify: StepStatus | None = Field(default=None, description="The verify step.")
    restore: StepStatus | None = Field(default=None, description="The restore step.")
    drift: StepStatus | None = Field(default=None, description="The drift step (spec.verify.drift).")
    downgrade: StepStatus | None = Field(default=None, description="The downgrade step (rollback.method: downgrade).")
    rehearse_prepare: StepStatus | None = Field(default=None, description="The rehearsal's copy (spec.rehearsal).")
    rehearse_migrate: StepStatus | None = Field(default=None, description="The migration rehearsed on the copy.")
    rehearse_verify: StepStatus | None = Field(default=None, description="The verification of the copy.")
    rehearse_drop: StepStatus | None = Field(default=None, description="The drop of the copy.")

    def get(self, step: str) -> StepStatus | None:
        """The record of ``step`` (a :class:`~alembic_operator.api.steps.Step`), if it started."""
        return self._by_step()[step]

    def put(self, step: str, record: StepStatus) -> None:
        """Replace the record of ``step``."""
        field = step.replace("-", "_")  # rehearse-drop → rehearse_drop
        if field not in type(self).model_fields:  # a KeyError, not a new attribute
            raise KeyError(step)
        setattr(self, field, record)

    def _by_step(self) -> dict[str, StepStatus | None]:
        # The field names are the step names (api/steps.py imports this module, so it cannot be used here).
        return {
            "plan": self.plan,
            "backup": self.backup,
            "migrate": self.migrate,
            "verify": self.verify,
            "restore": self.restore,
            "drift": self.drift,
            "downgrade": self.downgrade,
            "rehearse-prepare": self.rehearse_prepare,
            "rehearse-migrate": self.rehearse_migrate,
            "rehearse-verify": self.rehearse_verify,
            "rehearse-drop": self.rehearse_drop,
        }


class QueueStatus(_Model):
    """Why a run waits."""

    blocked_by: str | None = Field(default=None, description="The run on the same database that goes first.")
    position: int | None = Field(default=None, description="1 = next to start.")
    limit: int | None = Field(
        default=None,
        description="Set while the run waits for the operator's limit of runs running at once (maxRunningRuns).",
    )


FenceState = Literal["Raising", "Up", "Lifted"]


class FenceStatus(_Model):
    """Write-fence bookkeeping: replica counts to put back, written before anything is scaled.

    Raising: replicas recorded, workloads scaled to zero, pods still stopping.
    Up: no pod of any fenced workload is left; the backup may start.
    Lifted: every workload was scaled back to its recorded replicas.
    """

    replicas: dict[str, int] = Field(default_factory=dict, description="kind/name → replicas before scaling down.")
    state: FenceState = Field(default="Raising", description="Raising, Up or Lifted.")
    raised_at: datetime | None = Field(default=None, description="When the replicas were recorded.")
    lifted_at: datetime | None = Field(default=None, description="When the workloads were scaled back.")


class TableWrites(_Model):
    """Rows one table got from sessions other than the migration's, since the backup (approximate)."""

    table: str = Field(description="schema.table")
    rows: int = Field(
        ge=0,
        description="Rows inserted, updated or deleted by other sessions (approximate: "
        "from PostgreSQL's cumulative statistics).",
    )
    inserted: int = Field(default=0, ge=0, description="Of which inserted.")
    updated: int = Field(default=0, ge=0, description="Of which updated.")
    deleted: int = Field(default=0, ge=0, description="Of which deleted.")


class ForeignWritesStatus(_Model):
    """Writes by other sessions since the backup, which a restore discards (safety rule 3)."""

    tables: list[TableWrites] = Field(
        default_factory=list, description="Tables written to, most rows first (at most 20)."
    )
    rows: int = Field(default=0, ge=0, description="Rows written by other sessions in all tables (approximate).")
    own_writes_known: bool = Field(
        default=True,
        description="Whether the migration's own writes could be told apart; when false they are counted here too.",
    )
    checked_at: datetime | None = Field(default=None, description="When the restore step counted them.")
    discarded: bool = Field(default=False, description="True once a restore went ahead and discarded them.")
    stats_uri: str | None = Field(default=None, description="S3 URI of the statistics the count came from.")

    def summary(self, limit: int = 5) -> str:
        """E.g. ``public.task: ~120 rows, public.project: ~3 rows``."""
        parts = [f"{t.table}: ~{t.rows} rows" for t in self.tables[:limit]]
        if len(self.tables) > limit:
            parts.append(f"{len(self.tables) - limit} more tables")
        return ", ".join(parts)


class MigrationRunStatus(_Model):
    """What the operator observed and did; written by the operator only."""

    phase: Phase | None = Field(
        default=None,
        description="Where the run is: " + "; ".join(f"{p.value}: {m}" for p, m in PHASE_MEANINGS.items()) + ".",
    )
    observed_generation: int | None = Field(default=None, description="The generation last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="kstatus conditions (Ready, Reconciling, Stalled) and per-step conditions.",
    )
    message: str | None = Field(default=None, description="One sentence saying what happened or is happening.")
    from_revision: str | None = Field(default=None, description="Alembic revision before the migration.")
    to_revision: str | None = Field(default=None, description="Alembic revision after the migration.")
    target_revision: str | None = Field(default=None, description="The revision requested (spec.migrate.target).")
    location: str | None = Field(default=None, description="The run's S3 folder (dump, manifest, results).")
    backup: BackupStatus | None = Field(default=None, description="The backup taken for this run.")
    row_counts: RowCountsStatus | None = Field(default=None, description="Row-count verification.")
    plan: PlanStatus | None = Field(default=None, description="The plan's findings.")
    steps: StepsStatus = Field(default_factory=StepsStatus, description="Per-step Jobs.")
    queue: QueueStatus | None = Field(default=None, description="Set while Queued.")
    foreign_writes: ForeignWritesStatus | None = Field(
        default=None,
        description="Writes by other sessions since the backup that a restore would discard "
        "(or did discard), as the restore step counted them.",
    )
    fence: FenceStatus | None = Field(default=None, description="Write-fence bookkeeping.")
    rollback: RollbackStatus | None = Field(
        default=None, description="How the database was brought back (rollback.method: downgrade, or its fallback)."
    )
    drift: DriftStatus | None = Field(default=None, description="The app's models against the migrated database.")
    rehearsal: RehearsalStatus | None = Field(
        default=None, description="The rehearsal on a scratch copy (spec.rehearsal): its database and findings."
    )
    approval: ApprovalStatus | None = Field(default=None, description="The approval the migration waits or waited for.")
    restore_approval: ApprovalStatus | None = Field(
        default=None, description="Who approved a held restore (annotation approve-restore), and when."
    )
    progress: StepProgress | None = Field(
        default=None, description="How far the running (or last) backup or restore has streamed (the PROGRESS column)."
    )
    started_at: datetime | None = Field(default=None, description="When the operator first saw the run.")
    finished_at: datetime | None = Field(default=None, description="When the run reached a terminal phase.")
