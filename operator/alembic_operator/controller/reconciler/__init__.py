"""The heart of the operator, pure: (run, observed Jobs and Pods, now) → (new status, actions).

Read it phase by phase: :data:`PHASES` names the function that handles each
phase, one module per concern (CloudNativePG's ``cluster_*.go`` split)::

    queue     Pending, Queued: one run at a time per database, at most max_running_runs at once
    plan      Planning: the destructive-statement policy
    approval  AwaitingApproval: a person approves or rejects the migration
    backup    BackingUp: the write fence (fence), then the backup
    rehearsal Rehearsing: migrate and verify a scratch copy first (spec.rehearsal); always drop it
    migrate   Migrating
    verify    Verifying
    rollback  RollingBack, RollbackHeld
    jobs      start a step's Job and follow it; outcomes reads how it ended
    context   the state of one reconcile; inputs, actions: what goes in and out
    release   a deleted run; :func:`reject`: a run whose spec does not parse
    cleanup   which step Jobs of an ended run are due for deletion (``controller/collecting.py`` deletes them)

Must not: import kopf, kubernetes or the job steps; read the clock; call the
API. (The one impurity: step messages pass through :func:`redact.redact`,
which also masks secrets found in the process environment — the operator has
none.) The handler (``controller/handlers.py``) builds the inputs
(``controller/observing.py``), calls :func:`reconcile`, then applies the
:class:`Decision` (``controller/applying.py``).

How the handler applies a Decision (the crash-safety contract):

1. Execute :class:`ScaleWorkload` actions, then :class:`CreateJob` (409
   AlreadyExists counts as success: Job names are deterministic per run uid,
   step and attempt), then :class:`DeleteJob` (propagation Foreground, 404 is
   fine), then patch ``status`` with ``decision.status`` (``model.dump``),
   then post the :class:`EmitEvent` actions, then schedule :class:`Requeue`.
   A crash after the create and before the patch is harmless: the next
   reconcile decides the same create, sees the Job in ``observed`` and adopts
   it without a new CreateJob. (The reverse order is also safe, only
   wasteful: a Job recorded but never created counts as vanished after
   ``ReconcileSettings.job_grace_seconds`` — repeatable steps get a new
   attempt, a migrate is treated as failed-with-unknown-changes.) Scaling to
   zero happens only after ``status.fence`` holds the replicas to put back
   (:mod:`.fence`), so a scale is never lost either.
2. If a create fails (API error), raise so Kopf retries: the status was not
   patched, so the next reconcile decides the same create again.
3. Re-run on any change of the run, of its Jobs or Pods (label
   ``alembic-operator.dev/run``), and after ``Requeue.after_seconds``.

The flow (each arrow is one Job; failures in brackets)::

    Pending → [Queued] → Planning (unless plan.destructive: allow) → BackingUp → Migrating → Verifying → Succeeded
    with spec.rehearsal: BackingUp → Rehearsing (prepare, migrate, verify, always drop: a scratch copy) → Migrating
    plan blocked/failed, backup failed, migrate failed without changes  → Failed (nothing to restore)
    a failed rehearsal                                                  → Failed (the database was not touched)
    migrate failed with (possible) changes, verify failed               → RollingBack → RolledBack | RollbackFailed
                                                      (foreign writes, hold, not approved) → RollbackHeld → RollingBack
                                                      (rollback.onFailure: none) → Failed, backup URI in the message
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from alembic_operator.api import conditions
from alembic_operator.api.conditions import Reason
from alembic_operator.api.model import TERMINAL_PHASES, MigrationRunStatus, Phase, RunView
from alembic_operator.controller.reconciler import (
    approval,
    backup,
    fence,
    migrate,
    plan,
    queue,
    rehearsal,
    rollback,
    verify,
)
from alembic_operator.controller.reconciler.actions import (
    Action,
    CreateJob,
    Decision,
    DeleteJob,
    EmitEvent,
    Requeue,
    ScaleWorkload,
)
from alembic_operator.controller.reconciler.context import Context, whole_seconds
from alembic_operator.controller.reconciler.inputs import (
    JobCondition,
    JobObservation,
    Observed,
    PodObservation,
    WorkloadObservation,
    workload_key,
)
from alembic_operator.controller.reconciler.queue import (
    WORKING_PHASES,
    Capacity,
    RunSummary,
    find_blocker,
    measure_capacity,
    next_to_start,
)
from alembic_operator.controller.reconciler.release import holding, release
from alembic_operator.controller.settings import Settings

__all__ = [
    "PHASES",
    "WORKING_PHASES",
    "Action",
    "Capacity",
    "CreateJob",
    "Decision",
    "DeleteJob",
    "EmitEvent",
    "JobCondition",
    "JobObservation",
    "Observed",
    "PodObservation",
    "Requeue",
    "RunSummary",
    "RunView",
    "ScaleWorkload",
    "WorkloadObservation",
    "find_blocker",
    "holding",
    "measure_capacity",
    "next_to_start",
    "reconcile",
    "reject",
    "release",
    "workload_key",
]

#: What handles each non-terminal phase; a handler may move the run to a later phase.
PHASES: Mapping[Phase, Callable[[Context], None]] = {
    Phase.PENDING: queue.pending,
    Phase.QUEUED: queue.pending,
    Phase.PLANNING: plan.follow,
    Phase.AWAITING_APPROVAL: approval.waiting,
    Phase.BACKING_UP: backup.follow,
    Phase.REHEARSING: rehearsal.follow,
    Phase.MIGRATING: migrate.follow,
    Phase.VERIFYING: verify.follow,
    Phase.ROLLING_BACK: rollback.rolling_back,
    Phase.ROLLBACK_HELD: rollback.held,
}

#: Phases one reconcile may pass through (Pending → Planning ... is at most a handful); a safety bound.
MAX_PHASES_PER_RECONCILE = 12


def reconcile(
    *,
    run: RunView,
    observed: Observed,
    now: datetime,
    settings: Settings | None = None,
    blocked_by: str | None = None,
    queue_position: int | None = None,
    capacity: Capacity | None = None,
) -> Decision:
    """Decide the run's next status and actions from what is observed; see the module docstring.

    ``blocked_by`` names an unfinished run on the same database that goes first
    (:func:`find_blocker`); ``capacity`` is the operator-wide limit as the run sees it
    (:func:`measure_capacity`, None: no limit). Both only matter before the run starts.
    Idempotent: reconciling the returned status with the same observations
    yields the same status, no CreateJob and no EmitEvent.
    """
    ctx = Context.open(
        run=run,
        observed=observed,
        now=now,
        settings=settings or Settings(),
        blocked_by=blocked_by,
        queue_position=queue_position,
        capacity=capacity,
    )
    for _ in range(MAX_PHASES_PER_RECONCILE):
        phase = ctx.phase
        if phase is None or phase in TERMINAL_PHASES:
            break
        PHASES[phase](ctx)
        if ctx.phase == phase:  # waiting: nothing more to do until something changes
            break
    return ctx.close()


def reject(
    *, status: MigrationRunStatus, generation: int, message: str, now: datetime, reason: str = Reason.INVALID_SPEC
) -> Decision:
    """The Decision for a run that cannot go on: Failed, Stalled/``reason``, a Warning Event. Nothing is created.

    InvalidSpec (the spec cannot be parsed; ``message`` from :func:`model.explain`) prefixes "invalid spec: ";
    JobRejected (the apiserver refused a step's Job, or one of its name is not the run's) keeps ``message``.
    """
    now = whole_seconds(now)
    st = status.model_copy(deep=True)
    if st.phase in TERMINAL_PHASES:
        return Decision(status=st, actions=[])
    st.phase = Phase.FAILED
    st.observed_generation = generation
    st.message = f"invalid spec: {message}" if reason == Reason.INVALID_SPEC else message
    st.started_at = st.started_at or now
    st.finished_at = now
    st.conditions = conditions.kstatus_conditions(
        st.conditions,
        phase=Phase.FAILED,
        reason=reason,
        message=st.message,
        generation=generation,
        now=now,
    )
    actions: list[Action] = [*fence.lift(st, now), EmitEvent("Warning", reason, st.message)]
    return Decision(status=st, actions=actions)
