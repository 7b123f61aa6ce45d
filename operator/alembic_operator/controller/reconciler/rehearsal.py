"""Rehearsing: the migration and its verification on a scratch copy of the backup, before the real one.

With ``spec.rehearsal.enabled`` the backup hands over here instead of to the migration:

1. :func:`begin` records ``status.rehearsal.database`` (``alembic_rehearsal_<hex>``) and starts nothing:
   the name must be stored before anything is created, so an operator that restarts, or a run that is
   deleted, always knows what to drop.
2. Once the stored status holds it, the Jobs, one at a time (:func:`follow`): ``rehearse-prepare``
   (create the copy, ``pg_restore -j`` the backup into it), ``rehearse-migrate`` (the app's migrate
   command against the copy), ``rehearse-verify`` (the verify command against the copy).
3. ``rehearse-drop`` always comes last, after a success or a failure of any earlier step; a drop that
   fails is tried again (a new attempt) up to ``max_attempts``; then the database is named as left.
4. :func:`_after_drop`: a passed rehearsal starts the real migration — or, under
   ``plan.destructive: approve``, waits for a person when the copy lost rows (:func:`_gated`); a failed
   one ends the run Failed, "rehearsal failed: …; the database was not touched" (no restore, nothing
   held: it never changed).

A deleted run drops its copy from :func:`drop_on_release` (called by :func:`~.release.release`).

Must not: touch the real database (every Job here works on the copy; prepare only reads the real
database's size); roll back or hold anything; start the real migration before the copy is dropped.
"""

from __future__ import annotations

from datetime import datetime

from alembic_operator.api import results
from alembic_operator.api.conditions import EventReason, Reason
from alembic_operator.api.model import MigrationRunStatus, Phase, RunView, StepStatus
from alembic_operator.api.status_rehearsal import RehearsalStatus, RehearsedTableWrites
from alembic_operator.api.steps import Step
from alembic_operator.controller import naming
from alembic_operator.controller.builders import jobs as job_builders
from alembic_operator.controller.builders import rehearsals
from alembic_operator.controller.reconciler import approval, jobs
from alembic_operator.controller.reconciler.actions import Action, CreateJob, EmitEvent
from alembic_operator.controller.reconciler.context import Context
from alembic_operator.controller.reconciler.inputs import Observed
from alembic_operator.controller.reconciler.outcomes import Outcome
from alembic_operator.controller.settings import Settings

#: The rehearsal's steps before the drop, in order, with their short names (status.rehearsal.durationsSeconds).
ORDER = ((Step.REHEARSE_PREPARE, "prepare"), (Step.REHEARSE_MIGRATE, "migrate"), (Step.REHEARSE_VERIFY, "verify"))
SHORT = {**dict(ORDER), Step.REHEARSE_DROP: "drop"}
#: Seconds to wait for the recorded name to be stored before the first Job (the next pass comes sooner
#: anyway: the status patch is an event of the run).
RECORD_WAIT_SECONDS = 1.0


def begin(ctx: Context) -> None:
    """Record the scratch database's name and enter Rehearsing; the first Job waits for the next pass."""
    database = rehearsals.scratch_database(run_uid=ctx.run.uid)
    ctx.status.rehearsal = RehearsalStatus(database=database)
    ctx.status.phase = Phase.REHEARSING
    ctx.status.message = f"rehearsing on scratch database {database}; the database is untouched"
    ctx.event("Normal", EventReason.REHEARSAL_STEP_STARTED, f"rehearsing the migration on {database}")
    ctx.wake(RECORD_WAIT_SECONDS)


def follow(ctx: Context) -> None:
    """Drive the rehearsal one Job at a time; the drop, once started, is followed to its end."""
    if ctx.status.rehearsal is None:  # status lost its record: name it again, and wait for it to be stored
        begin(ctx)
        return
    if ctx.run.status.rehearsal is None:  # recorded by this reconcile: nothing is created before it is stored
        ctx.wake(RECORD_WAIT_SECONDS)
        return
    if ctx.status.steps.rehearse_drop is not None:
        jobs.follow(ctx, Step.REHEARSE_DROP, _after_drop)
        return
    current = next((step for step, _ in reversed(ORDER) if ctx.step(step) is not None), Step.REHEARSE_PREPARE)
    jobs.follow(ctx, current, lambda c, outcome: _after(c, current, outcome))


def _after(ctx: Context, step: Step, outcome: Outcome) -> None:
    """``step`` (before the drop) ended: record it; the next step, or (failed, or verified) the drop."""
    rehearsal = ctx.status.rehearsal
    assert rehearsal is not None  # follow() only runs a step once the name is stored
    _record_duration(ctx, step)
    if step == Step.REHEARSE_VERIFY:
        rehearsal.verify = f"{'Succeeded' if outcome.ok else 'Failed'}: {outcome.message}"
    if not outcome.ok:
        rehearsal.outcome = "Failed"
        rehearsal.message = f"{SHORT[step]} failed: {outcome.message}"
        ctx.step_condition(step, "False", outcome.reason or Reason.STEP_FAILED, rehearsal.message)
        jobs.start(ctx, Step.REHEARSE_DROP)
        return
    if step == Step.REHEARSE_VERIFY:
        rehearsal.outcome = "Succeeded"
        rehearsal.message = f"migrated and verified on {rehearsal.database}: {outcome.message}"
        ctx.step_condition(step, "True", Reason.STEP_SUCCEEDED, rehearsal.message)
        jobs.start(ctx, Step.REHEARSE_DROP)
        return
    jobs.start(ctx, ORDER[[s for s, _ in ORDER].index(step) + 1][0])


def _after_drop(ctx: Context, outcome: Outcome) -> None:
    """The copy is gone (or left, after every attempt failed): go on to the real migration, or end Failed."""
    rehearsal = ctx.status.rehearsal
    drop = ctx.status.steps.rehearse_drop
    assert rehearsal is not None and drop is not None
    if not outcome.ok and drop.attempt < ctx.settings.reconcile.max_attempts:
        jobs.start(ctx, Step.REHEARSE_DROP, drop.attempt + 1)
        return
    _record_duration(ctx, Step.REHEARSE_DROP)
    _record_drop(rehearsal, outcome, now=ctx.now)
    if not outcome.ok:
        ctx.event("Warning", EventReason.SCRATCH_DATABASE_LEFT, _left_message(rehearsal.database, outcome.message))
    if rehearsal.outcome == "Succeeded":
        ctx.step_condition(Step.REHEARSE_DROP, "True", Reason.STEP_SUCCEEDED, rehearsal.message or "")
        if not _gated(ctx, rehearsal):
            jobs.start(ctx, Step.MIGRATE)
        return
    message = f"rehearsal failed: {rehearsal.message or 'unknown'}; the database was not touched"
    ctx.step_condition(Step.REHEARSE_DROP, "False", Reason.REHEARSAL_FAILED, message)
    ctx.end(Phase.FAILED, Reason.REHEARSAL_FAILED, message, event_reason=EventReason.REHEARSAL_STEP_FAILED)


def _gated(ctx: Context, rehearsal: RehearsalStatus) -> bool:
    """Under ``plan.destructive: approve``, rows the rehearsed migration deleted wait for a person, unless one
    approved this run already: the plan cannot see a DELETE it could not render; the copy's counters can."""
    deleted = [w for w in rehearsal.writes if w.deleted]
    decided = ctx.status.approval is not None and ctx.status.approval.state == "Approved"
    if ctx.spec.plan.destructive != "approve" or not deleted or decided:
        return False
    found = "the rehearsal deleted " + ", ".join(f"{w.table}: {w.deleted} row(s)" for w in deleted[:5])
    approval.ask(ctx, reasons=[f"{found} and plan.destructive is approve"], found=found)
    return True


def _record_duration(ctx: Context, step: Step) -> None:
    ss = ctx.step(step)
    rehearsal = ctx.status.rehearsal
    if ss is not None and ss.started_at is not None and rehearsal is not None:
        rehearsal.durations_seconds[SHORT[step]] = (ctx.now - ss.started_at).total_seconds()


def _record_drop(rehearsal: RehearsalStatus, outcome: Outcome, *, now: datetime) -> None:
    """status.rehearsal from the drop's result: dropped or not, and what the rehearsal wrote."""
    rehearsal.dropped = outcome.ok
    rehearsal.dropped_at = now
    data = outcome.data(results.RehearseResult)
    if data is not None:
        rehearsal.writes = [
            RehearsedTableWrites(table=w.table, inserted=w.inserted, updated=w.updated, deleted=w.deleted)
            for w in data.writes[:20]
        ]
        rehearsal.report_uri = data.report_uri


def _left_message(database: str, why: str) -> str:
    return f"scratch database {database} could not be dropped ({why}); drop it by hand: DROP DATABASE {database}"


# --------------------------------------------------------------------------- a deleted run


def drop_pending(status: MigrationRunStatus) -> bool:
    """Whether a scratch database was named and not yet dropped (nor given up on)."""
    return status.rehearsal is not None and status.rehearsal.dropped is None


def drop_on_release(
    *, status: MigrationRunStatus, run: RunView, observed: Observed, settings: Settings, now: datetime
) -> list[Action]:
    """For a deleted run (its step Jobs ended): start the drop Job, or record how it ended; ``status`` is updated.

    The handler calls this again until :func:`drop_pending` is false; each call decides from the
    recorded drop Job, so an operator restart in between changes nothing.
    """
    rehearsal = status.rehearsal
    if rehearsal is None or rehearsal.dropped is not None:
        return []
    drop = status.steps.rehearse_drop
    if drop is None or drop.outcome is not None:  # never started, or ended and a new attempt is due
        attempt = 1 if drop is None else drop.attempt + 1
        name = naming.job_name(run_name=run.name, run_uid=run.uid, step=Step.REHEARSE_DROP, attempt=attempt)
        status.steps.rehearse_drop = StepStatus(job=name, attempt=attempt, started_at=now)
        manifest = job_builders.build_step_job(run=run, step=Step.REHEARSE_DROP, settings=settings, attempt=attempt)
        message = f"the run was deleted mid-rehearsal: dropping scratch database {rehearsal.database}"
        return [
            CreateJob(step=Step.REHEARSE_DROP, manifest=manifest),
            EmitEvent("Normal", EventReason.REHEARSAL_STEP_STARTED, message),
        ]
    job = observed.jobs.get(drop.job or "")
    if job is None or not (job.complete or job.has_failed):
        return []  # still running (or not yet seen): the handler checks again
    drop.outcome = "Succeeded" if job.complete else "Failed"
    drop.finished_at = now
    if job.complete:
        rehearsal.dropped, rehearsal.dropped_at = True, now
        return [EmitEvent("Normal", EventReason.REHEARSAL_STEP_SUCCEEDED, f"dropped {rehearsal.database}")]
    if drop.attempt < settings.reconcile.max_attempts:
        return drop_on_release(status=status, run=run, observed=observed, settings=settings, now=now)
    rehearsal.dropped, rehearsal.dropped_at = False, now
    return [EmitEvent("Warning", EventReason.SCRATCH_DATABASE_LEFT, _left_message(rehearsal.database, "drop failed"))]
