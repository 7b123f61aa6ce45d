"""Condition types, reasons and Event reasons of a MigrationRun, with factories (CNPG style).

kstatus (what Flux, Argo CD health checks and ``kstatus`` read):

* ``Reconciling=True`` while the run makes progress, and while it waits for
  an approval (AwaitingApproval: Flux, Argo CD and the Helm hook keep waiting); ``Ready=False``.
* ``Stalled=True`` with a reason on a terminal failure (Failed, RolledBack,
  RollbackFailed) and while a restore waits for a person (RollbackHeld).
* ``Ready=True`` only on Succeeded.
* Every condition carries ``observedGeneration``; ``lastTransitionTime``
  changes only when the status flips (:func:`set_condition`).
* Only Ready carries the run's message; a True Reconciling or Stalled carries a
  short one naming the phase (kstatus reports it), a False one none, so
  ``kubectl describe`` shows the message once. Conditions keep the order of
  :attr:`ConditionType.ALL`.

Per-step conditions (Planned, BackedUp, Migrated, Verified, RolledBack) appear
once their step starts: ``Unknown``/InProgress, then True or False; which step
sets which is in :data:`alembic_operator.api.steps.STEPS` (``condition``), as are
the steps' Event reasons.

Must not: do I/O, read the clock (callers pass ``now``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from alembic_operator.api.model import Condition, Phase

ConditionStatus = Literal["True", "False", "Unknown"]


class ConditionType:
    """Condition types; each constant's comment says what True means."""

    READY = "Ready"  #: the run succeeded: migrated and verified
    RECONCILING = "Reconciling"  #: the operator is making progress on the run
    STALLED = "Stalled"  #: the run ended in failure or waits for a person
    PLANNED = "Planned"  #: the plan step ran and the policy let the run go on
    BACKED_UP = "BackedUp"  #: the backup is complete, uploaded, its size and SHA-256 recorded
    REHEARSED = "Rehearsed"  #: the migration and verification passed on a scratch copy (spec.rehearsal)
    MIGRATED = "Migrated"  #: alembic upgrade completed
    VERIFIED = "Verified"  #: row counts and revision match expectations
    ROLLED_BACK = "RolledBack"  #: the database was restored from the backup

    ALL = (READY, RECONCILING, STALLED, PLANNED, BACKED_UP, REHEARSED, MIGRATED, VERIFIED, ROLLED_BACK)


class Reason:
    """Condition reasons; each constant's comment says what it means."""

    # Ready / Reconciling / Stalled
    SUCCEEDED = "Succeeded"  #: the run migrated and verified the database
    ALREADY_AT_TARGET = "AlreadyAtTarget"  #: the plan found the database at the target: nothing to migrate or back up
    PROGRESSING = "Progressing"  #: the run is under way (see the phase)
    FAILED = "Failed"  #: the run failed; the database did not need a restore
    DESTRUCTIVE_CHANGE_BLOCKED = "DestructiveChangeBlocked"  #: the plan found statements the policy blocks
    BACKUP_FAILED = "BackupFailed"  #: the backup failed; the database is unchanged
    MIGRATION_FAILED = "MigrationFailed"  #: the migration failed
    ROLLED_BACK = "RolledBack"  #: the database was restored after a failure
    ROLLBACK_FAILED = "RollbackFailed"  #: the restore failed; a person must act
    ROLLBACK_HELD = "RollbackHeld"  #: a restore waits for a person's approval
    PARTIALLY_MIGRATED = "PartiallyMigrated"  #: the database may be partially migrated and was left as is
    QUEUED = "Queued"  #: another run on the same database goes first
    INVALID_SPEC = "InvalidSpec"  #: the spec failed validation; nothing was started
    POLICY_REFUSED = "PolicyRefused"  #: the administrator's policy refused the run; nothing was started
    JOB_REJECTED = "JobRejected"  #: the apiserver refused a step's Job, or a foreign Job has its name
    WRITE_FENCE_FAILED = "WriteFenceFailed"  #: a fenced workload is missing or its pods did not stop; nothing changed
    AWAITING_APPROVAL = "AwaitingApproval"  #: the migration waits for a person (status.approval)
    MIGRATION_REJECTED = "MigrationRejected"  #: a person rejected the migration; the database was not touched
    REHEARSAL_FAILED = "RehearsalFailed"  #: the migration or verification failed on the scratch copy; nothing touched

    # per-step
    IN_PROGRESS = "InProgress"  #: the step's Job runs
    STEP_SUCCEEDED = "StepSucceeded"  #: the step succeeded
    STEP_FAILED = "StepFailed"  #: the step failed (details in the message and status.steps)
    DESTRUCTIVE_CHANGES_WARNED = "DestructiveChangesWarned"  #: destructive statements found, allowed with a warning
    DEADLINE_EXCEEDED = "DeadlineExceeded"  #: the step ran past its deadline
    POD_NOT_STARTED = "PodNotStarted"  #: the step's pod never started (image pull, scheduling) in time
    POD_CONFIG_ERROR = "PodConfigError"  #: the pod cannot start: missing Secret or key, bad image name
    POD_EVICTED = "PodEvicted"  #: the step's pod was evicted
    JOB_VANISHED = "JobVanished"  #: the step's Job disappeared before it finished
    NO_RESULT = "NoResult"  #: the step succeeded without a result, or one missing what the run needs (backup URI)
    UNREADABLE_RESULT = "UnreadableResult"  #: the step left a result that is not one of ours; it counts as failed
    FOREIGN_WRITES_DETECTED = "ForeignWritesDetected"  #: the restore found other sessions' writes and did not start


class EventReason:
    """Event reasons, one per transition; each constant's comment says when it is emitted."""

    QUEUED = "Queued"  #: the run waits for another run on the same database
    PLAN_STARTED = "PlanStarted"  #: the plan Job was created
    PLAN_SUCCEEDED = "PlanSucceeded"  #: the plan found nothing blocking
    DESTRUCTIVE_CHANGES = "DestructiveChanges"  #: the plan found destructive statements (policy warn)
    UNRENDERED_REVISIONS = "UnrenderedRevisions"  #: the plan could not render revisions offline (warn): not checked
    PLAN_FAILED = "PlanFailed"  #: the plan failed or blocked the run
    BACKUP_STARTED = "BackupStarted"  #: the backup Job was created
    BACKUP_SUCCEEDED = "BackupSucceeded"  #: the backup is complete and recorded
    BACKUP_FAILED = "BackupFailed"  #: the backup failed
    MIGRATION_STARTED = "MigrationStarted"  #: the migrate Job was created
    MIGRATION_SUCCEEDED = "MigrationSucceeded"  #: the migration completed
    MIGRATION_FAILED = "MigrationFailed"  #: the migration failed
    VERIFY_STARTED = "VerifyStarted"  #: the verify Job was created
    VERIFY_SUCCEEDED = "VerifySucceeded"  #: the verification passed
    VERIFY_FAILED = "VerifyFailed"  #: the verification failed
    RESTORE_STARTED = "RestoreStarted"  #: the restore Job was created
    RESTORE_SUCCEEDED = "RestoreSucceeded"  #: the database was restored
    RESTORE_FAILED = "RestoreFailed"  #: the restore failed
    ROLLBACK_HELD = "RollbackHeld"  #: a restore waits for approval (foreign writes)
    ROLLBACK_APPROVED = "RollbackApproved"  #: a person approved the held restore
    ROLLBACK_SKIPPED = "RollbackSkipped"  #: a restore was needed but is disabled by the spec
    JOB_VANISHED = "JobVanished"  #: a step's Job disappeared; a repeatable step is retried
    STEP_NOT_STARTED = "StepNotStarted"  #: a step's container never started (StartError); a repeatable step is retried
    FOREIGN_WRITES_DISCARDED = "ForeignWritesDiscarded"  #: a restore discarded other sessions' writes (named)
    WRITE_FENCE_RAISED = "WriteFenceRaised"  #: fenced workloads were scaled to zero and their pods are gone
    WRITE_FENCE_LIFTED = "WriteFenceLifted"  #: fenced workloads were scaled back to their recorded replicas
    WRITE_FENCE_FAILED = "WriteFenceFailed"  #: the write fence could not be raised; the run stops
    RUN_SUCCEEDED = "RunSucceeded"  #: the run ended Succeeded
    DRIFT_CHECK_STARTED = "DriftCheckStarted"  #: the drift Job was created (spec.verify.drift)
    DRIFT_CHECKED = "DriftChecked"  #: the drift step ran (differences, if any, are in status.drift)
    SCHEMA_DRIFT = "SchemaDrift"  #: the models and the database differ (warn), or the drift step failed
    AWAITING_APPROVAL = "AwaitingApproval"  #: the migration waits for a person to approve or reject it
    MIGRATION_APPROVED = "MigrationApproved"  #: a person approved the migration (named)
    MIGRATION_REJECTED = "MigrationRejected"  #: a person rejected the migration (named); nothing was changed
    DOWNGRADE_STARTED = "DowngradeStarted"  #: the downgrade Job was created (rollback.method: downgrade)
    DOWNGRADE_SUCCEEDED = "DowngradeSucceeded"  #: downgraded to the backup's revision; the schema equals the backup's
    DOWNGRADE_FAILED = "DowngradeFailed"  #: the downgrade failed, is missing or left another schema
    DOWNGRADE_FELL_BACK = "DowngradeFellBack"  #: the rollback restores from the backup instead (the message says why)
    REHEARSAL_STEP_STARTED = "RehearsalStepStarted"  #: a rehearsal Job (prepare, migrate, verify, drop) was created
    REHEARSAL_STEP_SUCCEEDED = "RehearsalStepSucceeded"  #: a rehearsal step succeeded
    REHEARSAL_STEP_FAILED = "RehearsalStepFailed"  #: a rehearsal step failed (the real database is untouched)
    SCRATCH_DATABASE_LEFT = "ScratchDatabaseLeft"  #: the scratch database could not be dropped (named)


# --------------------------------------------------------------------------- factories


def set_condition(
    conditions: Iterable[Condition],
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """Return ``conditions`` with ``type`` set; keep lastTransitionTime unless the status flips."""
    result: list[Condition] = []
    found = False
    for cond in conditions:
        if cond.type != type:
            result.append(cond)
            continue
        found = True
        ltt = cond.last_transition_time if cond.status == status else now
        result.append(
            Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=ltt,
                observed_generation=generation,
            )
        )
    if not found:
        result.append(
            Condition(
                type=type,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now,
                observed_generation=generation,
            )
        )
    return sorted(result, key=_position)


def _position(cond: Condition) -> int:
    """Where ``cond`` goes in the list: the order of ConditionType.ALL, unknown types last (stable)."""
    return ConditionType.ALL.index(cond.type) if cond.type in ConditionType.ALL else len(ConditionType.ALL)


def kstatus_conditions(
    conditions: Iterable[Condition], *, phase: Phase, reason: str, message: str, generation: int | None, now: datetime
) -> list[Condition]:
    """Set Ready, Reconciling and Stalled for ``phase`` (``reason`` is the ended run's: Succeeded or
    AlreadyAtTarget on success, why it failed otherwise).

    ``message`` goes on Ready only (see the module docstring).
    """
    rows: list[tuple[str, ConditionStatus, str]]
    if phase == Phase.SUCCEEDED:
        rows = [
            (ConditionType.READY, "True", reason),
            (ConditionType.RECONCILING, "False", reason),
            (ConditionType.STALLED, "False", reason),
        ]
    elif phase in (Phase.FAILED, Phase.ROLLED_BACK, Phase.ROLLBACK_FAILED, Phase.ROLLBACK_HELD):
        rows = [
            (ConditionType.READY, "False", reason),
            (ConditionType.RECONCILING, "False", reason),
            (ConditionType.STALLED, "True", reason),
        ]
    else:
        rows = [
            (ConditionType.READY, "False", Reason.PROGRESSING),
            (ConditionType.RECONCILING, "True", reason),
            (ConditionType.STALLED, "False", Reason.PROGRESSING),
        ]
    conds = list(conditions)
    for type_, status, why in rows:
        text = message if type_ == ConditionType.READY else _kstatus_message(type_, status, phase)
        conds = set_condition(
            conds, type=type_, status=status, reason=why, message=text, generation=generation, now=now
        )
    return conds


def _kstatus_message(type_: str, status: ConditionStatus, phase: Phase) -> str:
    """The short message of Reconciling or Stalled: the phase when True (kstatus shows it), else none."""
    if status != "True":
        return ""
    if type_ == ConditionType.STALLED:
        return f"phase {phase.value}; the Ready condition says why"
    return f"the run is in phase {phase.value}"


def restamp_generation(conditions: Iterable[Condition], generation: int | None) -> list[Condition]:
    """Keep every condition but mark it observed at ``generation`` (kstatus reads it)."""
    return [c.model_copy(update={"observed_generation": generation}) for c in conditions]
