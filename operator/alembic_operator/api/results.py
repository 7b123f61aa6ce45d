"""The one compact JSON result a step leaves in its termination message, typed.

Kubernetes keeps at most 4 KiB of a container's termination message, so the
result holds a summary and the verdict; anything larger (per-table counts)
lives in the run's S3 folder and the result names it. The operator reads
this back from the Pod status (never from logs) with :func:`parse`.

Shape (version 1, camelCase on the wire)::

    {"v": 1, "step": "backup", "ok": true, "reason": null,
     "message": "one sentence", "changedDatabase": false, "data": {...}}

``data`` is one model per step (:data:`DATA_MODELS`): what the step reports on
success and, on failure, the details of its error. Every field of a data
model is optional, because a failing step reports only what it knew.

1. A step returns its data model (its ``message`` is the envelope's message).
2. The CLI wraps it, bounds it to 4 KiB and writes it with
   :mod:`alembic_operator.api.termination`.
3. The operator calls :func:`parse`, which never raises: a result it cannot
   read is an :class:`Unreadable`, which the reconciler treats as a failure
   of that step.

Must not: import anything of ours but :mod:`alembic_operator.api.text` and
:mod:`.results_allowances`; do I/O (writing the message is :mod:`.termination`'s job).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from alembic_operator.api import text
from alembic_operator.api.results_allowances import AllowanceUsed, DeclaredAllowance

VERSION = 1
#: Kubernetes truncates termination messages beyond 4096 bytes.
MAX_BYTES = 4096
DEFAULT_PATH = "/dev/termination-log"
#: Where a step writes its result outside a pod (``--result-file`` defaults to it); a pod leaves it
#: unset and the kubelet reads /dev/termination-log.
PATH_ENV = "TERMINATION_MESSAGE_PATH"
#: The reason of an :class:`Unreadable` result.
UNREADABLE_REASON = "UnreadableResult"


class _Wire(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown keys are kept (a newer step may add some)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", defer_build=True)


class StepData(_Wire):
    """What every step's data has: the one-sentence summary, which travels as the envelope's message."""

    message: str = Field(default="", exclude=True)


# --------------------------------------------------------------------------- parts of results


class DestructiveStatement(_Wire):
    """A destructive statement the plan found."""

    revision: str | None = None
    kind: str
    statement: str


class UnrenderedRevision(_Wire):
    """A revision ``plan`` could not render as SQL offline (a data migration that queries, one that refuses)."""

    revision: str
    reason: str


class UncheckedStatement(_Wire):
    """Server-side code in the plan (a DO block, a function, a CALL): what it does is not classified."""

    revision: str | None = None
    kind: str
    statement: str


class RowCountViolation(_Wire):
    """A table that lost rows (``after`` set) or disappeared (``after`` None)."""

    table: str
    before: int
    after: int | None = None


class CountMismatch(_Wire):
    """A table whose restored count differs from the manifest (None: missing, or not in the backup)."""

    table: str
    expected: int | None = None
    actual: int | None = None


class SequenceKept(_Wire):
    """A sequence a restore left at its current value, not lowered to the backup's (no id handed out twice)."""

    sequence: str
    value: int


class BackupVerification(_Wire):
    """The verdict of ``backup --verify restore``."""

    method: str | None = None
    ok: bool | None = None


class TableWrites(_Wire):
    """Rows one table got from other sessions since the backup (approximate)."""

    table: str
    rows: int
    inserted: int = 0
    updated: int = 0
    deleted: int = 0


class ForeignWrites(_Wire):
    """What other sessions wrote since the backup: a restore discards it (status.foreignWrites)."""

    tables: list[TableWrites] = Field(default_factory=list)
    tables_total: int | None = None
    rows: int = 0
    own_writes_known: bool = True
    stats_uri: str | None = None


# --------------------------------------------------------------------------- one model per step


class PlanResult(StepData):
    """``plan``: the upgrade path, statement count and destructive statements (at most 10 listed)."""

    from_revision: str | None = None
    to_revision: str | None = None
    pending: list[str] = Field(default_factory=list)
    statements: int | None = None
    destructive_count: int | None = None
    destructive: list[DestructiveStatement] = Field(default_factory=list)
    policy: Literal["allow", "warn", "block"] | None = None
    output: str | None = None
    location: str | None = None
    rendered: bool = True
    #: Revisions that could not render offline, by id with the reason (every other one is still classified).
    unrendered: list[UnrenderedRevision] = Field(default_factory=list)
    unchecked: list[UncheckedStatement] = Field(default_factory=list)
    #: Data changes the pending revisions declare they intend (tables to shrink, drop or rename).
    declared_allowances: list[DeclaredAllowance] = Field(default_factory=list)


class BackupResult(StepData):
    """``backup``: where the dump is, its size and SHA-256, and what it holds."""

    uri: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    #: Binds the manifest's list of chunk digests (job/storage/manifest.py): a restore given it streams.
    chunks_sha256: str | None = None
    format: str | None = None
    duration_seconds: float | None = None
    server_version: str | None = None
    pg_dump_version: str | None = None
    revision: str | None = None
    tables: int | None = None
    rows: int | None = None
    manifest_uri: str | None = None
    verification: BackupVerification | None = None
    retention_deleted: int | None = None
    mismatches: list[CountMismatch] = Field(default_factory=list)


class MigrateResult(StepData):
    """``migrate``: the revisions before and after and what was applied (also on failure)."""

    from_revision: str | None = None
    to_revision: str | None = None
    target_revision: str | None = None
    applied: list[str] = Field(default_factory=list)
    failed_revision: str | None = None
    duration_seconds: float | None = None
    noop: bool | None = None
    lock_wait_seconds: float | None = None
    shared_connection: bool | None = None
    #: Sessions of the same run a killed earlier migrate pod left behind, ended before this one took the lock.
    orphans_ended: list[int] = Field(default_factory=list)


class VerifyResult(StepData):
    """``verify``: the row-count comparison (status.rowCounts) and the revision found."""

    tables_checked: int | None = None
    rows_before: int | None = None
    rows_after: int | None = None
    violations: list[RowCountViolation] = Field(default_factory=list)
    revision: str | None = None
    verify_uri: str | None = None
    #: Every table verify let shrink, vanish or be renamed, and the revision (or the spec) that allowed it.
    allowances_used: list[AllowanceUsed] = Field(default_factory=list)


class RestoreResult(StepData):
    """``restore``: what was restored and discarded; on failure, whether a new attempt may pass."""

    uri: str | None = None
    sha256_verified: bool | None = None
    tables_restored: int | None = None
    rows: int | None = None
    duration_seconds: float | None = None
    restore_uri: str | None = None
    pg_restore_version: str | None = None
    foreign_writes: ForeignWrites | None = None
    mismatches: list[CountMismatch] = Field(default_factory=list)
    sequences_kept: list[SequenceKept] = Field(default_factory=list)
    """Sequences whose value read before the restore was at least the backup's: they keep it."""
    rolled_back: bool | None = None
    retryable: bool = False
    """The restore failed without changing the database for a reason that may pass (the server or S3
    was away, or its transaction rolled back): a new attempt is safe and may succeed."""


class WaitResult(StepData):
    """``wait``: the revision reached and how long it took."""

    revision: str | None = None
    expected_revision: str | None = None
    waited_seconds: float | None = None
    checks: int | None = None


class RehearsedWrites(_Wire):
    """Rows one table got from the rehearsed migration (the scratch copy's counters against its baseline)."""

    table: str
    inserted: int = 0
    updated: int = 0
    deleted: int = 0


class RehearseResult(StepData):
    """``rehearse``: the scratch copy made (prepare) or dropped, and what the rehearsal wrote (drop)."""

    database: str | None = None
    database_bytes: int | None = None
    restore_seconds: float | None = None
    dropped: bool | None = None
    existed: bool | None = None
    writes: list[RehearsedWrites] = Field(default_factory=list)
    report_uri: str | None = None


class DriftResult(StepData):
    """``drift``: the differences between the app's models and the database (``alembic check``)."""

    policy: Literal["ignore", "warn", "fail"] | None = None
    differences: list[str] = Field(default_factory=list)


class RunResult(StepData):
    """``run``: how the followed MigrationRun ended."""

    phase: str | None = None
    from_revision: str | None = None
    to_revision: str | None = None
    backup: str | None = None


#: Subcommand → its data model (the Job steps, then the clients ``wait`` and ``run``).
DATA_MODELS: Mapping[str, type[StepData]] = {
    "plan": PlanResult,
    "backup": BackupResult,
    "migrate": MigrateResult,
    "verify": VerifyResult,
    "restore": RestoreResult,
    "rehearse": RehearseResult,
    "drift": DriftResult,
    "downgrade": MigrateResult,  # the migration in reverse: from, to, the revisions undone
    "wait": WaitResult,
    "run": RunResult,
}

DataT = TypeVar("DataT", bound=StepData)


class StepResult(BaseModel, Generic[DataT]):
    """The envelope: the verdict and the step's data."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", defer_build=True)

    v: Literal[1]
    step: str
    ok: bool
    reason: str | None
    message: str
    changed_database: bool
    """Whether the database may have been changed (on failure: the operator restores only then)."""
    data: DataT
    truncated: bool = False
    """Lists or fields of ``data`` were cut to fit 4 KiB."""


@dataclasses.dataclass(frozen=True)
class Unreadable:
    """A result that is not one of ours: malformed, truncated, of another version or step, mistyped.

    It reads like a failed result, so the reconciler handles it as any failure of the step;
    whether the database changed is unknown (``changed_database`` None).
    """

    step: str
    problem: str
    excerpt: str
    ok: Literal[False] = False
    reason: str = UNREADABLE_REASON
    changed_database: None = None

    @property
    def message(self) -> str:
        return f"the {self.step} step left an unreadable result ({self.problem})"


# --------------------------------------------------------------------------- reading


def _problem(error: pydantic.ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "result"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _check_envelope(value: Any, step: str) -> str | None:
    """What is wrong with the envelope's identity (not JSON object, version, step), or None."""
    if not isinstance(value, dict):
        return f"not a JSON object but {type(value).__name__}"
    version = value.get("v")
    if version != VERSION or isinstance(version, bool):
        return f"version {version!r} is not {VERSION}"
    if value.get("step") != step:
        return f"it is the result of step {value.get('step')!r}, not {step!r}"
    return None


def parse(step: str, message: str | bytes | None) -> StepResult[Any] | Unreadable | None:
    """The ``step``'s result from its termination message; never raises.

    None when there is no message at all; an :class:`Unreadable` naming the
    problem when it is not JSON, not UTF-8, not version 1, of another step, or
    mistyped (``"message": 5``, ``"data": []``); else a :class:`StepResult`
    whose ``data`` is the step's model (:data:`DATA_MODELS`).
    """
    step = str(step)
    if message is None or not message.strip():
        return None
    if isinstance(message, bytes):
        raw = message
        try:
            message = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Unreadable(
                step=step,
                problem=f"not UTF-8: {exc.reason} at byte {exc.start}",
                excerpt=text.one_line(raw.decode("utf-8", "replace"), 300),
            )
    excerpt = text.one_line(message, 300)
    model = DATA_MODELS.get(step)
    if model is None:
        return Unreadable(step=step, problem=f"{step!r} is not a step with a result", excerpt=excerpt)
    try:
        value = json.loads(message)
    except ValueError as exc:
        truncated = " (truncated?)" if len(message.encode("utf-8", "replace")) >= MAX_BYTES else ""
        return Unreadable(step=step, problem=f"not JSON{truncated}: {exc}", excerpt=excerpt)
    wrong = _check_envelope(value, step)
    if wrong is not None:
        return Unreadable(step=step, problem=wrong, excerpt=excerpt)
    try:
        envelope: type[StepResult[Any]] = StepResult[model]  # type: ignore[valid-type]
        result = envelope.model_validate_json(message, strict=True)
    except pydantic.ValidationError as exc:
        return Unreadable(step=step, problem=_problem(exc), excerpt=excerpt)
    result.data.message = result.message
    return result
