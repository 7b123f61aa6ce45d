"""The MigrationRun contract: spec and status as pydantic models, the single source of truth.

Everything else derives from this module: :mod:`alembic_operator.api.crd` turns it
into the CRD (descriptions reach ``kubectl explain``), the reconciler reads
the spec and writes the status through it, the builders read the spec. The
fields live in :mod:`.spec` and :mod:`.status` (on :mod:`.schema`'s base);
this module names them all and adds the run itself and the helpers.

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
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pydantic
from pydantic import BaseModel, Field

from alembic_operator.api.refs import DNS_SUBDOMAIN, SECRET_KEY, SecretKeyRef
from alembic_operator.api.schema import CrdModel as _Model
from alembic_operator.api.spec import (
    COMPRESSION,
    DEFAULT_MIGRATE_COMMAND,
    LOCK_TIMEOUT,
    BackupSpec,
    DatabaseSpec,
    FreeForm,
    MigrateSpec,
    MigrationRunSpec,
    PlanSpec,
    PodTemplateSpec,
    RetentionSpec,
    RowCountsSpec,
    S3CredentialsRef,
    S3Spec,
    ScaleDownTarget,
    TimeoutsSpec,
    VerifySpec,
    WriteFenceSpec,
)
from alembic_operator.api.spec_rollback import RollbackSpec
from alembic_operator.api.status import (
    PHASE_MEANINGS,
    PHASE_RANK,
    TERMINAL_PHASE_VALUES,
    TERMINAL_PHASES,
    BackupStatus,
    Condition,
    FenceState,
    FenceStatus,
    ForeignWritesStatus,
    MigrationRunStatus,
    Phase,
    PlanStatus,
    QueueStatus,
    RowCountsStatus,
    StepOutcome,
    StepsStatus,
    StepStatus,
    TableWrites,
)

#: The model is the spec (:mod:`.spec`) and the status (:mod:`.status`) plus the run and its helpers here;
#: importers keep using ``model.X`` for all of them.
__all__ = [
    "COMPRESSION",
    "DEFAULT_MIGRATE_COMMAND",
    "DNS_SUBDOMAIN",
    "LOCK_TIMEOUT",
    "PHASE_MEANINGS",
    "PHASE_RANK",
    "SECRET_KEY",
    "TERMINAL_PHASES",
    "TERMINAL_PHASE_VALUES",
    "BackupSpec",
    "BackupStatus",
    "Condition",
    "DatabaseSpec",
    "FenceState",
    "FenceStatus",
    "ForeignWritesStatus",
    "FreeForm",
    "MigrateSpec",
    "MigrationRun",
    "MigrationRunSpec",
    "MigrationRunStatus",
    "Phase",
    "PlanSpec",
    "PlanStatus",
    "PodTemplateSpec",
    "QueueStatus",
    "RetentionSpec",
    "RollbackSpec",
    "RowCountsSpec",
    "RowCountsStatus",
    "RunView",
    "S3CredentialsRef",
    "S3Spec",
    "ScaleDownTarget",
    "SecretKeyRef",
    "StepOutcome",
    "StepStatus",
    "StepsStatus",
    "TableWrites",
    "TimeoutsSpec",
    "VerifySpec",
    "WriteFenceSpec",
    "dump",
    "explain",
    "parse_spec",
    "parse_status",
]


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
