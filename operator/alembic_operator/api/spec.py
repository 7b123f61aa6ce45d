"""The MigrationRun's spec: what to migrate and how (CNPG's ``*_types.go``, the spec half).

Every field carries its description, which reaches the CRD and ``kubectl
explain`` (:mod:`alembic_operator.api.crd`). Objects that have defaults get
``default: {}`` in the CRD, so the apiserver fills nested defaults even when
the user leaves the block out.

Must not: import anything of ours but :mod:`.schema`, :mod:`.refs` and its sections (``spec_*.py``); do I/O;
hold behaviour beyond validation and small derived values.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import ConfigDict, Field

from alembic_operator.api import spec_drift, spec_scope
from alembic_operator.api.refs import DNS_SUBDOMAIN, SECRET_KEY, SecretKeyRef
from alembic_operator.api.schema import CrdModel as _Model
from alembic_operator.api.schema import nested as _obj
from alembic_operator.api.spec_approval import ApprovalSpec
from alembic_operator.api.spec_rehearsal import RehearsalSpec
from alembic_operator.api.spec_rollback import RollbackSpec

#: Free-form Kubernetes core objects we do not re-model (resources, affinity...).
FreeForm = dict[str, Any]

COMPRESSION = r"^(none|[0-9]|gzip(:[1-9])?|lz4(:[0-9]+)?|zstd(:[0-9]+)?)$"
LOCK_TIMEOUT = r"^[0-9]+(us|ms|s|min|h|d)?$"


# --------------------------------------------------------------------------- spec: database


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
    kms_key_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="KMS key (id, ARN or alias) for serverSideEncryption aws:kms; leave out for the "
        "bucket's default key.",
    )
    expected_bucket_owner: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Owner every S3 request requires of the bucket (ExpectedBucketOwner): the AWS account id "
        "on AWS, the owner's id on S3-compatible servers. A bucket another account owns is refused.",
    )

    @pydantic.model_validator(mode="after")
    def _kms_key_needs_kms(self) -> S3Spec:
        if self.kms_key_id is not None and self.server_side_encryption != "aws:kms":
            raise ValueError("kmsKeyId needs serverSideEncryption: aws:kms")
        return self


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
        description="Backup compression. zstd[:level] (the default for the custom format, level 1): pg_dump "
        "writes uncompressed and the step compresses with multi-threaded zstd on the way to S3 (the manifest "
        "records the codec); none, 0-9, gzip[:level] or lz4[:level] are pg_dump's own compression.",
    )
    retention: RetentionSpec = _obj(
        RetentionSpec, "Which older backups of this database to delete after a successful backup."
    )
    schemas: list[spec_scope.SchemaName] = Field(default_factory=list, description=spec_scope.DESCRIPTION)
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

    mode: Literal["exact", "estimated", "content", "off"] = Field(
        default="exact",
        description="exact: COUNT(*) per table; estimated: planner statistics "
        "(fast, approximate); content: exact counts and every backed-up row still there unchanged "
        "(reads the dump and each table); off: check only the revision.",
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
    drift: spec_drift.DriftPolicy = Field(default="ignore", description=spec_drift.DESCRIPTION)


class PlanSpec(_Model):
    """The offline plan (alembic upgrade --sql) run before the backup."""

    destructive: Literal["allow", "warn", "block", "approve"] = Field(
        default="warn",
        description="What to do with destructive statements (DROP, TRUNCATE, DELETE "
        "without WHERE...): allow skips the plan step; warn records them in "
        "status and an Event; block fails the run before the backup; approve waits for a person (AwaitingApproval).",
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
            "drift": self.verify_seconds,
            "downgrade": self.migrate_seconds,
            "rehearse-prepare": self.restore_seconds,  # a rehearsal: its steps' deadlines are the real ones'
            "rehearse-migrate": self.migrate_seconds,
            "rehearse-verify": self.verify_seconds,
            "rehearse-drop": self.verify_seconds,
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
    approval: ApprovalSpec = _obj(ApprovalSpec, "Whether every run waits for a person before migrating.")
    rehearsal: RehearsalSpec = _obj(RehearsalSpec, "Rehearse the migration on a scratch copy before the real one.")
    rollback: RollbackSpec = _obj(RollbackSpec, "What to do when the migration or verification fails.")
    write_fence: WriteFenceSpec | None = Field(
        default=None,
        description="Opt-in write fence: workloads scaled to zero from before the backup to the "
        "end of the run, so no application writes can be lost by a restore.",
    )
    timeouts: TimeoutsSpec = _obj(TimeoutsSpec, "Step deadlines.")
    pod_template: PodTemplateSpec = _obj(PodTemplateSpec, "Settings applied to every step's pod.")
