"""The MigrationRun contract: spec and status as pydantic models, the single source of truth.

Everything else derives from this module: :mod:`alembic_operator.api.crd` turns it
into the CRD (descriptions reach ``kubectl explain``), the reconciler reads
the spec and writes the status through it, the builders read the spec.

Must not: import kopf, kubernetes or any adapter; do I/O; hold behaviour
beyond validation and small derived values (CNPG's ``*_types.go``).

Conventions:

* JSON uses camelCase (``urlSecretRef``), Python snake_case (``url_secret_ref``);
  both are accepted on input (``populate_by_name``). Serialise with
  :func:`dump` (aliases, no ``None``) before writing to the API.
* Unknown fields are ignored, not rejected: the apiserver prunes them and a
  newer CRD must not break an older operator.
* Spec objects that have defaults get ``default: {}`` in the CRD, so the
  apiserver fills nested defaults even when the user leaves the block out.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# --------------------------------------------------------------------------- base


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", validate_default=True)


def _obj(model: type[BaseModel], description: str, **kwargs: Any) -> Any:
    """A nested object field that defaults to its model's defaults (and to ``{}`` in the CRD)."""
    return Field(default_factory=model, description=description, json_schema_extra={"default": {}}, **kwargs)


#: Free-form Kubernetes core objects we do not re-model (resources, affinity...).
FreeForm = dict[str, Any]

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
COMPRESSION = r"^(none|[0-9]|gzip(:[1-9])?|lz4(:[0-9]+)?|zstd(:[0-9]+)?)$"
LOCK_TIMEOUT = r"^[0-9]+(us|ms|s|min|h|d)?$"


# --------------------------------------------------------------------------- spec: database


class SecretKeyRef(_Model):
    """A key in a Secret of the run's namespace; only Job pods read it (safety rule 1)."""

    name: str = Field(
        description="Name of the Secret in the MigrationRun's namespace.",
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
    )
    key: str = Field(
        default="DATABASE_URL",
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY,
        description="Key in the Secret holding the database URL (postgresql:// or postgresql+asyncpg://).",
    )


class DatabaseSpec(_Model):
    """Which database the run migrates."""

    url_secret_ref: SecretKeyRef = Field(
        description="Secret key holding the database URL. The operator never reads it: Job pods "
        "receive it by secretKeyRef. Runs naming the same Secret and key in a namespace "
        "target the same database and are serialised."
    )


# --------------------------------------------------------------------------- spec: migrate


DEFAULT_MIGRATE_COMMAND = ["alembic-operator", "migrate"]


class MigrateSpec(_Model):
    """How to run the migration."""

    image: str = Field(
        min_length=1,
        description="Application image holding the Alembic scripts and models; the plan and migrate steps run in it.",
    )
    command: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MIGRATE_COMMAND),
        min_length=1,
        json_schema_extra={"default": list(DEFAULT_MIGRATE_COMMAND)},
        description="Container command of the migrate step. With the default "
        "[alembic-operator, migrate] the operator adds --target and "
        "--lock-timeout; a plain [alembic, upgrade, head] also works "
        "(without the advisory lock and result details).",
    )
    args: list[str] = Field(
        default_factory=list, description="Extra arguments appended after the command (and the operator's flags)."
    )
    target: str = Field(
        default="head", min_length=1, max_length=255, description="Alembic revision to upgrade to (default head)."
    )
    working_dir: str | None = Field(
        default=None,
        description="Working directory of the plan and migrate "
        "containers (where alembic.ini lives); "
        "defaults to the image's.",
    )
    lock_timeout: str = Field(
        default="10s",
        pattern=LOCK_TIMEOUT,
        description="PostgreSQL lock_timeout for the migration's statements "
        "(e.g. 10s, 500ms): a migration waiting on a busy table fails "
        "fast instead of blocking the application.",
    )


# --------------------------------------------------------------------------- spec: backup


class S3CredentialsRef(_Model):
    """Secret with S3 access keys; leave out to use the pod's ambient identity (IRSA, instance role)."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="Name of the Secret in the MigrationRun's namespace.",
    )
    access_key_id_key: str = Field(
        default="AWS_ACCESS_KEY_ID", pattern=SECRET_KEY, description="Key in the Secret holding the access key id."
    )
    secret_access_key_key: str = Field(
        default="AWS_SECRET_ACCESS_KEY",
        pattern=SECRET_KEY,
        description="Key in the Secret holding the secret access key.",
    )


class S3Spec(_Model):
    """Where backups go. The run's folder is s3://bucket/prefix/namespace/database-id/run-uid8/."""

    bucket: str = Field(
        min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-_]*[a-z0-9]$", description="Bucket name."
    )
    prefix: str = Field(
        default="",
        max_length=512,
        pattern=r"^[^\s]*$",
        description="Key prefix inside the bucket (no leading or trailing slash needed).",
    )
    endpoint: str | None = Field(
        default=None, pattern=r"^https?://", description="Endpoint URL of an S3-compatible server; leave out for AWS."
    )
    region: str = Field(default="us-east-1", min_length=1, description="Region of the bucket.")
    force_path_style: bool = Field(
        default=False, description="Use path-style addressing (most S3-compatible servers need it)."
    )
    credentials_secret_ref: S3CredentialsRef | None = Field(
        default=None,
        description="Secret with access keys; leave out to use the pod's identity "
        "(IRSA, workload identity, instance role).",
    )
    server_side_encryption: Literal["AES256", "aws:kms"] | None = Field(
        default=None, description="Server-side encryption to request for uploaded objects."
    )


class RetentionSpec(_Model):
    """Which old backups of the same database the backup step deletes."""

    keep_last: int = Field(default=10, ge=1, description="Keep at least this many most recent backups of the database.")
    max_age_days: int | None = Field(
        default=None, ge=1, description="Delete backups older than this many days (never one of the keepLast newest)."
    )


class BackupSpec(_Model):
    """How to back the database up before migrating (safety rule 2)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.jobs) || self.format == 'directory'",
                    "message": "jobs needs format: directory (parallel dump and restore)",
                }
            ]
        }
    )

    s3: S3Spec = Field(description="S3 bucket the dump is streamed to.")
    format: Literal["custom", "directory"] = Field(
        default="custom",
        description="pg_dump format: custom (one streamed file) or directory (parallel dump and restore with jobs).",
    )
    jobs: int | None = Field(
        default=None, ge=1, le=64, description="Parallel pg_dump/pg_restore jobs; directory format only."
    )
    compression: str | None = Field(
        default=None,
        pattern=COMPRESSION,
        description="pg_dump compression: none, 0-9, gzip[:level], "
        "lz4[:level] or zstd[:level]; defaults to the step's "
        "choice.",
    )
    retention: RetentionSpec = _obj(
        RetentionSpec, "Which older backups of this database to delete after a successful backup."
    )
    verify: Literal["checksum", "restore"] = Field(
        default="checksum",
        description="checksum: re-read the upload and compare SHA-256; restore: also "
        "restore it into a scratch database (slower, proves it).",
    )

    @pydantic.model_validator(mode="after")
    def _jobs_need_directory(self) -> BackupSpec:
        if self.jobs is not None and self.format != "directory":
            raise ValueError("jobs needs format: directory (parallel dump and restore)")
        return self


# --------------------------------------------------------------------------- spec: verify, plan, rollback


class RowCountsSpec(_Model):
    """Compare row counts after the migration with the backup's manifest."""

    mode: Literal["exact", "estimated", "off"] = Field(
        default="exact",
        description="exact: COUNT(*) per table; estimated: planner statistics "
        "(fast, approximate); off: check only the revision.",
    )
    include: list[str] = Field(
        default_factory=list, description="Glob patterns (schema.table) of tables to check; empty means all."
    )
    exclude: list[str] = Field(default_factory=list, description="Glob patterns (schema.table) of tables to skip.")
    allow_decrease: list[str] = Field(
        default_factory=list, description="Tables (schema.table) the migration may shrink or drop on purpose."
    )


class VerifySpec(_Model):
    """What the verify step checks after the migration."""

    row_counts: RowCountsSpec = _obj(RowCountsSpec, "Row-count comparison with the backup.")


class PlanSpec(_Model):
    """The offline plan (alembic upgrade --sql) run before the backup."""

    destructive: Literal["allow", "warn", "block"] = Field(
        default="warn",
        description="What to do with destructive statements (DROP, TRUNCATE, DELETE "
        "without WHERE...): allow skips the plan step; warn records them in "
        "status and an Event; block fails the run before the backup.",
    )


class RollbackSpec(_Model):
    """What happens when the migration or the verification fails."""

    on_failure: Literal["restore", "none"] = Field(
        default="restore",
        description="restore: bring the database back from the backup; none: leave it and say where the backup is.",
    )
    on_foreign_writes: Literal["hold", "restore"] = Field(
        default="hold",
        description="When the application wrote since the backup: hold waits for a person "
        '(annotation alembic-operator.dev/approve-restore="true"); restore '
        "discards those writes.",
    )


class ScaleDownTarget(_Model):
    """A workload scaled to zero for the duration of the run."""

    kind: Literal["Deployment", "StatefulSet"] = Field(description="Kind of the workload.")
    name: str = Field(
        min_length=1, max_length=253, pattern=DNS_SUBDOMAIN, description="Name of the workload in the run's namespace."
    )


class WriteFenceSpec(_Model):
    """Opt-in: keep writers out between the backup and the end of the run.

    The operator records each workload's replicas in ``status.fence`` before it
    scales anything, scales them to zero, waits until their pods are gone, and
    only then starts the backup; whatever the outcome (or when the run is
    deleted) it scales them back. While a restore is held the fence stays up.
    """

    scale_down: list[ScaleDownTarget] = Field(
        default_factory=list,
        description="Workloads (in the run's namespace) to scale to zero "
        "before the backup, and back to their recorded replicas "
        "when the run ends.",
    )
    timeout_seconds: int = Field(
        default=300,
        ge=1,
        description="How long to wait for the workloads' pods to stop before the run "
        "fails (nothing changed, the fence is lifted), in seconds.",
    )


class TimeoutsSpec(_Model):
    """Deadlines of the steps, in seconds; a step past its deadline fails."""

    plan_seconds: int = Field(default=300, ge=1, description="Deadline of the plan step, in seconds.")
    backup_seconds: int = Field(default=3600, ge=1, description="Deadline of the backup step, in seconds.")
    migrate_seconds: int = Field(default=1800, ge=1, description="Deadline of the migrate step, in seconds.")
    verify_seconds: int = Field(default=900, ge=1, description="Deadline of the verify step, in seconds.")
    restore_seconds: int = Field(default=3600, ge=1, description="Deadline of the restore step, in seconds.")
    pending_seconds: int = Field(
        default=600,
        ge=1,
        description="How long a step's pod may stay unstarted (image pull failure, "
        "unschedulable) before the step fails, in seconds.",
    )

    def for_step(self, step: str) -> int:
        """The deadline of ``step`` (a :class:`~alembic_operator.api.steps.Step`) in seconds."""
        deadlines = {
            "plan": self.plan_seconds,
            "backup": self.backup_seconds,
            "migrate": self.migrate_seconds,
            "verify": self.verify_seconds,
            "restore": self.restore_seconds,
        }
        return deadlines[step]


class PodTemplateSpec(_Model):
    """Settings applied to every step's pod."""

    service_account_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        description="ServiceAccount of the step pods. Steps need no API access, so by default none is "
        "named and no token is mounted.",
    )
    resources: FreeForm | None = Field(default=None, description="Container resources (core/v1 ResourceRequirements).")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Node selector of the pods.")
    tolerations: list[FreeForm] = Field(default_factory=list, description="Tolerations (core/v1 Toleration).")
    affinity: FreeForm | None = Field(default=None, description="Affinity (core/v1 Affinity).")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels on the pods.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description='Extra annotations on the pods (e.g. sidecar.istio.io/inject: "false").'
    )
    image_pull_secrets: list[FreeForm] = Field(
        default_factory=list, description="Image pull secrets (core/v1 LocalObjectReference)."
    )
    security_context: FreeForm | None = Field(
        default=None, description="Pod security context (core/v1 PodSecurityContext); replaces the restricted default."
    )
    container_security_context: FreeForm | None = Field(
        default=None,
        description="Container security context (core/v1 SecurityContext); replaces the restricted default.",
    )
    priority_class_name: str | None = Field(default=None, description="Priority class of the pods.")


class MigrationRunSpec(_Model):
    """A request to migrate one database to one revision, once. Immutable after creation."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == oldSelf", "message": "spec is immutable: create a new MigrationRun for a new release"}
            ]
        }
    )

    database: DatabaseSpec = Field(description="The database to migrate.")
    migrate: MigrateSpec = Field(description="The migration to run.")
    backup: BackupSpec = Field(description="The backup taken before migrating.")
    verify: VerifySpec = _obj(VerifySpec, "Checks after the migration.")
    plan: PlanSpec = _obj(PlanSpec, "Offline plan and destructive-statement policy.")
    rollback: RollbackSpec = _obj(RollbackSpec, "What to do when the migration or verification fails.")
    write_fence: WriteFenceSpec | None = Field(
        default=None,
        description="Opt-in write fence: workloads scaled to zero from before the backup to the "
        "end of the run, so no application writes can be lost by a restore.",
    )
    timeouts: TimeoutsSpec = _obj(TimeoutsSpec, "Step deadlines.")
    pod_template: PodTemplateSpec = _obj(PodTemplateSpec, "Settings applied to every step's pod.")


# --------------------------------------------------------------------------- status


class Phase(str, enum.Enum):
    """Where a run is. Each value's meaning is in :data:`PHASE_MEANINGS`."""

    PENDING = "Pending"
    QUEUED = "Queued"
    PLANNING = "Planning"
    BACKING_UP = "BackingUp"
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
    Phase.BACKING_UP: "pg_dump streams the database to S3; the database is unchanged",
    Phase.MIGRATING: "alembic upgrade runs; the backup is complete and recorded",
    Phase.VERIFYING: "row counts and the revision are compared with the backup",
    Phase.ROLLING_BACK: "the database is being restored from the backup",
    Phase.ROLLBACK_HELD: "a restore is needed but would discard the application's writes; "
    "waiting for a person to approve it",
    Phase.SUCCEEDED: "terminal: migrated and verified",
    Phase.FAILED: "terminal: the run failed; status.message says whether the database changed",
    Phase.ROLLED_BACK: "terminal: the migration failed and the database was restored from the backup",
    Phase.ROLLBACK_FAILED: "terminal: the restore failed; the database needs a person (backup in status.backup.uri)",
}

TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.ROLLED_BACK, Phase.ROLLBACK_FAILED})

#: Phases in the order a run moves through them; a run never moves to a lower rank
#: (RollingBack and RollbackHeld share one: a held restore resumes when approved).
PHASE_RANK: dict[Phase, int] = {
    Phase.PENDING: 0,
    Phase.QUEUED: 1,
    Phase.PLANNING: 2,
    Phase.BACKING_UP: 3,
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


class PlanStatus(_Model):
    """The plan step's findings."""

    statements: int | None = Field(default=None, description="SQL statements the upgrade would run.")
    destructive: list[str] = Field(default_factory=list, description="Destructive statements found (abridged).")


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

    def get(self, step: str) -> StepStatus | None:
        """The record of ``step`` (a :class:`~alembic_operator.api.steps.Step`), if it started."""
        return self._by_step()[step]

    def put(self, step: str, record: StepStatus) -> None:
        """Replace the record of ``step``."""
        if step not in type(self).model_fields:  # a KeyError, not a new attribute
            raise KeyError(step)
        setattr(self, step, record)

    def _by_step(self) -> dict[str, StepStatus | None]:
        # The field names are the step names (api/steps.py imports this module, so it cannot be used here).
        return {
            "plan": self.plan,
            "backup": self.backup,
            "migrate": self.migrate,
            "verify": self.verify,
            "restore": self.restore,
        }


class QueueStatus(_Model):
    """Why a run waits."""

    blocked_by: str | None = Field(default=None, description="The run on the same database that goes first.")
    position: int | None = Field(default=None, description="1 = next to start.")


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
    started_at: datetime | None = Field(default=None, description="When the operator first saw the run.")
    finished_at: datetime | None = Field(default=None, description="When the run reached a terminal phase.")


class MigrationRun(_Model):
    """A request to back up, migrate and verify one database, restoring on failure."""

    spec: MigrationRunSpec = Field(description="What to migrate and how. Immutable.")
    status: MigrationRunStatus = Field(
        default_factory=MigrationRunStatus, description="What the operator observed and did."
    )


# --------------------------------------------------------------------------- the run as code sees it


@dataclasses.dataclass(frozen=True)
class RunView:
    """A MigrationRun as the reconciler and the builders see it: identity plus parsed spec and status.

    The handler builds it from the object's metadata (``name``, ``namespace``,
    ``uid``, ``generation``, ``creationTimestamp``, ``annotations``) and
    :func:`parse_spec` / :func:`parse_status`.
    """

    name: str
    namespace: str
    uid: str
    spec: MigrationRunSpec
    status: MigrationRunStatus = dataclasses.field(default_factory=lambda: MigrationRunStatus())
    generation: int = 1
    creation_timestamp: datetime | None = None
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def dump(model: BaseModel) -> dict[str, Any]:
    """Serialise for the API: camelCase, JSON types, without ``None`` values."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_spec(raw: dict[str, Any]) -> MigrationRunSpec:
    """Validate a spec dict; raise :class:`pydantic.ValidationError` (see :func:`explain`)."""
    return MigrationRunSpec.model_validate(raw)


def parse_status(raw: dict[str, Any] | None) -> MigrationRunStatus:
    """Read a status dict written by the operator (or empty)."""
    return MigrationRunStatus.model_validate(raw or {})


def explain(error: pydantic.ValidationError) -> str:
    """One line naming each bad field by its JSON path: ``spec.backup.jobs: ...``."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "spec"
        msg = re.sub(r"^Value error, ", "", item["msg"])
        parts.append(f"spec.{loc}: {msg}" if loc != "spec" else f"spec: {msg}")
    return "; ".join(parts)
