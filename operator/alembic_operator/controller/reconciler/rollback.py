"""RollingBack and RollbackHeld: restore the database from the backup after a failed migration or verification.

1. :func:`begin`: ``rollback.onFailure: none`` ends Failed with the backup's
   URI in the message; otherwise the phase becomes RollingBack.
2. :func:`rolling_back`: hold when a restore would discard other sessions'
   writes and nobody approved (``rollback.onForeignWrites: hold``); wait for a
   killed migrate pod to stop (it may hold locks); then start the restore.
   With ``rollback.method: downgrade`` the app's downgrade goes first
   (:mod:`.downgrade`); the restore follows only when it falls back, and its
   messages say why.
3. :func:`after`: restored → RolledBack; refused for foreign writes → hold;
   failed without changing anything and the step says a new attempt may pass
   → retry after a pause (attempt N waits N × ``restore_retry_seconds``);
   otherwise RollbackFailed: the database needs a person.

Must not: restore twice at once, or restore while the migrate pod may still run.
"""

from __future__ import annotations

from datetime import datetime

from alembic_operator.api import constants, results
from alembic_operator.api.conditions import EventReason, Reason
from alembic_operator.api.model import ForeignWritesStatus, Phase, StepStatus, TableWrites
from alembic_operator.api.status_approval import ApprovalStatus
from alembic_operator.api.steps import Step
from alembic_operator.controller.builders import jobs as job_builders
from alembic_operator.controller.reconciler import downgrade, jobs
from alembic_operator.controller.reconciler.context import Context
from alembic_operator.controller.reconciler.outcomes import Outcome


def begin(ctx: Context, cause: str) -> None:
    """A restore is due because of ``cause``: roll back, or end Failed when the spec says not to."""
    if ctx.spec.rollback.on_failure == "none":
        message = (
            f"{cause}; the database may be partially migrated and rollback.onFailure is none: restore from "
            f"{ctx.backup_uri()} by hand (alembic-operator restore --location {ctx.location})"
        )
        ctx.end(Phase.FAILED, Reason.PARTIALLY_MIGRATED, message, event_reason=EventReason.ROLLBACK_SKIPPED)
        return
    ctx.status.phase = Phase.ROLLING_BACK
    ctx.status.message = f"{cause}; restoring from {ctx.backup_uri()}"


def rolling_back(ctx: Context) -> None:
    """Follow the restore, or start its next attempt once nothing stands in the way (or go by downgrade)."""
    if downgrade.chosen(ctx):
        if ctx.status.steps.downgrade is None and _step_pod_alive(ctx, Step.MIGRATE):
            return
        downgrade.rolling_back(ctx, fall_back=rolling_back)
        return
    previous = ctx.status.steps.restore
    if previous is not None and _retrying(ctx, previous):
        return
    if previous is not None and not _refused(previous):
        jobs.follow(ctx, Step.RESTORE, after)
        return
    if _must_hold(ctx):
        ctx.status.phase = Phase.ROLLBACK_HELD
        ctx.status.message = _held_message(ctx)
        ctx.event("Warning", EventReason.ROLLBACK_HELD, ctx.status.message)
        ctx.wake(ctx.settings.reconcile.held_poll_seconds)
        return
    if _step_pod_alive(ctx, Step.MIGRATE) or _step_pod_alive(ctx, Step.DOWNGRADE):
        return
    # After a refusal (foreign writes) that was approved, the next attempt restores regardless.
    jobs.start(ctx, Step.RESTORE, previous.attempt + 1 if previous is not None else 1)


def held(ctx: Context) -> None:
    """RollbackHeld: wait for the approval annotation (or a change of policy), then roll back."""
    if _must_hold(ctx):
        ctx.status.message = _held_message(ctx)
        ctx.wake(ctx.settings.reconcile.held_poll_seconds)
        return
    approver = job_builders.restore_approver(run=ctx.run)
    by = f" by {approver}" if approver and approver.lower() != "true" else ""
    if approver is not None:  # who let the restore discard the writes, and when (status outlives the annotation)
        ctx.status.restore_approval = ApprovalStatus(state="Approved", by=approver, decided_at=ctx.now)
    ctx.event("Normal", EventReason.ROLLBACK_APPROVED, f"the held restore was approved{by}; restoring")
    ctx.status.phase = Phase.ROLLING_BACK


def after(ctx: Context, outcome: Outcome) -> None:
    """The restore ended: RolledBack, held (foreign writes), retried later, or RollbackFailed."""
    if not outcome.ok and outcome.reason == Reason.FOREIGN_WRITES_DETECTED:
        # The restore's preflight found other sessions' writes and changed nothing: decide here.
        found = _foreign_writes(outcome, ctx.now)
        if found is not None:
            ctx.status.foreign_writes = found
        elif ctx.status.foreign_writes is None:
            ctx.status.foreign_writes = ForeignWritesStatus(checked_at=ctx.now)
        ctx.step_condition(Step.RESTORE, "False", Reason.FOREIGN_WRITES_DETECTED, outcome.message)
        rolling_back(ctx)  # holds, unless approved meanwhile: then the next attempt starts
        return
    if outcome.ok:
        _restored(ctx, outcome)
        return
    cause = ctx.cause()
    attempt = ctx.status.steps.restore.attempt if ctx.status.steps.restore else 1
    if _may_retry(ctx, outcome.retry, attempt):
        wait = ctx.settings.reconcile.restore_retry_seconds * attempt
        message = (
            f"{cause}; restore attempt {attempt} failed without changing the database ({outcome.message}); "
            f"retrying in {wait}s"
        )
        ctx.step_condition(Step.RESTORE, "False", outcome.reason or Reason.STEP_FAILED, message)
        ctx.status.message = message
        ctx.wake(wait)
        return
    tries = f" (after {attempt} attempts)" if attempt > 1 else ""
    message = (
        f"{cause}{downgrade.fallback_note(ctx)}, and the restore failed too{tries}: {outcome.message}; "
        "the database needs a person: "
        f"restore it from {ctx.backup_uri()} (alembic-operator restore --location {ctx.location})"
    )
    ctx.step_condition(Step.RESTORE, "False", outcome.reason or Reason.STEP_FAILED, message)
    ctx.end(Phase.ROLLBACK_FAILED, Reason.ROLLBACK_FAILED, message)


def _restored(ctx: Context, outcome: Outcome) -> None:
    message = f"{ctx.cause()}; the database was restored from {ctx.backup_uri()}{downgrade.fallback_note(ctx)}"
    discarded = _foreign_writes(outcome, ctx.now)
    if discarded is not None and discarded.rows > 0:
        discarded.discarded = True
        ctx.status.foreign_writes = discarded
        lost = (
            f"the restore discarded ~{discarded.rows} rows other sessions wrote since the backup "
            f"({discarded.summary()}); they are in the statistics at {discarded.stats_uri or ctx.location}"
        )
        message = f"{message}; {lost}"
        ctx.event("Warning", EventReason.FOREIGN_WRITES_DISCARDED, lost)
    elif ctx.status.foreign_writes is not None:
        ctx.status.foreign_writes.discarded = True
    ctx.step_condition(Step.RESTORE, "True", Reason.STEP_SUCCEEDED, outcome.message)
    ctx.end(Phase.ROLLED_BACK, Reason.ROLLED_BACK, message)


def _step_pod_alive(ctx: Context, step: Step) -> bool:
    """Whether ``step``'s pod still runs: a killed migrate (or downgrade) may hold connections and locks; wait."""
    ss = ctx.status.steps.get(step)
    job = ctx.observed.jobs.get(ss.job) if ss is not None and ss.job else None
    if job is None or not job.pods_alive:
        return False
    ctx.status.message = f"{ctx.cause()}; waiting for the {step} pod to stop before rolling back"
    ctx.wake(ctx.settings.reconcile.migrate_pod_poll_seconds)
    return True


def _may_retry(ctx: Context, retry: bool | None, attempt: int) -> bool:
    """Whether a failed restore gets another attempt: the step said so, and attempts are left."""
    return bool(retry) and attempt < ctx.settings.reconcile.max_attempts


def _retrying(ctx: Context, ss: StepStatus) -> bool:
    """A restore attempt that failed and may pass next time: start the next one after a pause.

    The restore is atomic and checks the dump first, so a new attempt is safe;
    it re-checks foreign writes itself. True while waiting or when it started one.
    """
    if ss.outcome != "Failed" or not _may_retry(ctx, ss.retry, ss.attempt):
        return False
    wait = ctx.settings.reconcile.restore_retry_seconds * ss.attempt
    waited = (ctx.now - (ss.finished_at or ctx.now)).total_seconds()
    if waited < wait:
        ctx.wake(wait - waited)
        return True
    jobs.start(ctx, Step.RESTORE, ss.attempt + 1)
    return True


def _refused(ss: StepStatus) -> bool:
    """A restore attempt that stopped in its preflight because of foreign writes (nothing was changed)."""
    return ss.outcome == "Failed" and ss.reason == Reason.FOREIGN_WRITES_DETECTED


def _must_hold(ctx: Context) -> bool:
    """Whether a due restore must wait: it would discard other sessions' writes and nobody said yes."""
    found = ctx.status.foreign_writes
    return (
        found is not None
        and not found.discarded
        and ctx.spec.rollback.on_foreign_writes == "hold"
        and not job_builders.restore_approved(run=ctx.run)
    )


def _held_message(ctx: Context) -> str:
    found = ctx.status.foreign_writes
    what = (
        f"other sessions wrote ~{found.rows} rows since the backup ({found.summary()})"
        if found is not None and found.tables
        else "other sessions wrote since the backup"
    )
    if found is not None and not found.own_writes_known:
        what += " (the migration's own writes could not be told apart and are included)"
    return (
        f"{ctx.cause()}{downgrade.fallback_note(ctx)}; {what}, which a restore would discard: annotate the run "
        f"{constants.ANNOTATION_APPROVE_RESTORE}=<your user name> to restore from {ctx.backup_uri()} anyway, "
        f"or delete the run to leave the database as it is"
    )


def _foreign_writes(outcome: Outcome, now: datetime) -> ForeignWritesStatus | None:
    """status.foreignWrites from a restore result's ``foreignWrites``; None when absent or out of range."""
    data = outcome.data(results.RestoreResult)
    found = data.foreign_writes if data is not None else None
    if found is None:
        return None
    try:
        tables = sorted(
            (TableWrites.model_validate(t.model_dump()) for t in found.tables), key=lambda t: (-t.rows, t.table)
        )
        rows = found.rows if "rows" in found.model_fields_set else sum(t.rows for t in tables)
        return ForeignWritesStatus(
            tables=tables[:20],
            rows=rows,
            own_writes_known=found.own_writes_known,
            checked_at=now,
            stats_uri=found.stats_uri,
        )
    except ValueError:  # negative counts: pydantic.ValidationError is a ValueError
        return None
