"""Start a step's Job and follow it to its end; every step goes through here.

1. :func:`start` records the Job in ``status.steps.<step>`` and asks for it
   (CreateJob, unless it is already observed: then it is adopted).
2. :func:`follow` reads the Job each reconcile; once it ended it records the
   :class:`~.outcomes.Outcome` in status, posts the step's Event and hands the
   Outcome to the step's own ``after`` (plan, backup, migrate, verify, rollback).
3. A Job that vanished gets a new attempt if its step is repeatable; a
   vanished migrate may have changed the database and ends as failed.

Must not: decide what happens after a step (its module's ``after`` does).
"""

from __future__ import annotations

from collections.abc import Callable

from alembic_operator.api.conditions import EventReason, Reason
from alembic_operator.api.model import StepStatus
from alembic_operator.api.steps import STEPS, Step
from alembic_operator.controller.builders import jobs as job_builders
from alembic_operator.controller.reconciler import outcomes
from alembic_operator.controller.reconciler.actions import CreateJob, DeleteJob
from alembic_operator.controller.reconciler.context import Context, quote
from alembic_operator.controller.reconciler.inputs import JobObservation
from alembic_operator.controller.reconciler.outcomes import Outcome

#: What a step's module does once the step ended.
After = Callable[[Context, Outcome], None]


def start(ctx: Context, step: Step, attempt: int = 1) -> None:
    """Record the step's Job in status and create it (unless it already exists: adopt)."""
    name = ctx.job_name(step, attempt)
    ctx.status.steps.put(step, StepStatus(job=name, attempt=attempt, started_at=ctx.now))
    ctx.status.phase = STEPS[step].phase
    if name not in ctx.observed.jobs:
        manifest = job_builders.build_step_job(
            run=ctx.run, step=step, settings=ctx.settings, attempt=attempt, expect_revision=ctx.status.to_revision
        )
        ctx.actions.append(CreateJob(step=step, manifest=manifest))
    ctx.status.message = ctx.running_message(step, attempt)
    ctx.event("Normal", STEPS[step].started, f"created Job {name}: {ctx.status.message}")
    ctx.step_condition(step, "Unknown", Reason.IN_PROGRESS, ctx.status.message)
    ctx.wake(ctx.settings.reconcile.poll_seconds)


def follow(ctx: Context, step: Step, after: After) -> None:
    """Follow the step's current Job; on its end, record the outcome and hand it to ``after``."""
    ss = ctx.step(step)
    if ss is None or ss.job is None:  # status lost its record (should not happen): start afresh
        start(ctx, step)
        return
    if ss.outcome is not None:  # already ended (a transition was interrupted): replay it
        _ended(ctx, step, Outcome.replay(ss), after)
        return
    ss = _adopt_newer_attempt(ctx, step, ss)
    job = ctx.observed.jobs.get(ss.job or "")
    outcome = _vanished(ctx, step, ss) if job is None else outcomes.evaluate(ctx, step, ss, job)
    if outcome is None:
        return
    if job is not None and _never_started(ctx, step, ss, job, outcome):
        return
    ss = ctx.step(step) or ss
    ctx.status.steps.put(
        step,
        ss.model_copy(
            update=dict(
                finished_at=ctx.now,
                outcome="Succeeded" if outcome.ok else "Failed",
                exit_code=outcome.exit_code,
                reason=outcome.reason,
                message=outcome.message,
                retry=outcome.retry,
            )
        ),
    )
    if outcome.delete_job and ss.job:
        ctx.actions.append(DeleteJob(ss.job))
    _ended(ctx, step, outcome, after)


def _adopt_newer_attempt(ctx: Context, step: Step, ss: StepStatus) -> StepStatus:
    """A newer attempt may exist (crash after creating it, before recording it): adopt it."""
    for attempt in range(ctx.settings.reconcile.max_attempts, ss.attempt, -1):
        name = ctx.job_name(step, attempt)
        if name in ctx.observed.jobs:
            adopted = StepStatus(job=name, attempt=attempt, started_at=ctx.observed.jobs[name].start_time or ctx.now)
            ctx.status.steps.put(step, adopted)
            return adopted
    return ss


def _vanished(ctx: Context, step: Step, ss: StepStatus) -> Outcome | None:
    """The recorded Job is not observed: wait out informer lag, then retry a repeatable step or fail."""
    grace = ctx.settings.reconcile.job_grace_seconds
    waited = (ctx.now - (ss.started_at or ctx.now)).total_seconds()
    if waited < grace:  # the informer may lag behind our own create
        ctx.wake(grace - waited)
        return None
    if _attempt_again(ctx, step, ss, EventReason.JOB_VANISHED, f"the {step} Job {ss.job} vanished before it finished"):
        return None
    if step == Step.MIGRATE:
        return Outcome(
            ok=False,
            reason=Reason.JOB_VANISHED,
            changed=None,
            message=f"the migrate Job {ss.job} vanished before it finished, so the database may have changed",
        )
    return Outcome(
        ok=False,
        reason=Reason.JOB_VANISHED,
        message=f"the {step} Job {ss.job} vanished {ss.attempt} times before it finished",
    )


def _never_started(ctx: Context, step: Step, ss: StepStatus, job: JobObservation, outcome: Outcome) -> bool:
    """A repeatable step whose container the runtime could not start (exit 128, StartError: e.g. "failed to
    create shim task: context canceled" on a node starting 100 pods at once): its command never ran, so
    nothing changed and a new attempt is safe. Start it (up to ``max_attempts``) and say so; True then."""
    pod = job.pod
    if outcome.ok or pod is None or pod.termination_reason != "StartError":
        return False
    why = f"the {step} container never started ({quote(pod.termination_message, 200) or 'StartError'})"
    return _attempt_again(ctx, step, ss, EventReason.STEP_NOT_STARTED, why)


def _attempt_again(ctx: Context, step: Step, ss: StepStatus, reason: str, why: str) -> bool:
    """Start the next attempt of a repeatable step that has attempts left, saying ``why``; False otherwise."""
    if not STEPS[step].repeatable or ss.attempt >= ctx.settings.reconcile.max_attempts:
        return False
    ctx.event("Warning", reason, f"{why}; starting attempt {ss.attempt + 1}")
    start(ctx, step, ss.attempt + 1)
    return True


def _ended(ctx: Context, step: Step, outcome: Outcome, after: After) -> None:
    info = STEPS[step]
    if outcome.ok:
        ctx.event("Normal", info.succeeded, f"the {info.noun} succeeded: {outcome.message}")
    elif outcome.reason != Reason.FOREIGN_WRITES_DETECTED:  # not a failure: the RollbackHeld event tells it
        ctx.event("Warning", info.failed, f"the {info.noun} failed: {outcome.message}")
    after(ctx, outcome)
