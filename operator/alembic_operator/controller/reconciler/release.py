"""Letting go of a deleted run: lift its write fence, drop its rehearsal's copy, leave the database as it is.

Must not: start a Job but the rehearsal's drop, or delete one (the handler waits until no step Job
is active before it calls :func:`release`, and calls it again while :func:`holding` is true; then it
removes the finalizer).
"""

from __future__ import annotations

from datetime import datetime

from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import MigrationRunStatus, RunView
from alembic_operator.controller.reconciler import fence, rehearsal
from alembic_operator.controller.reconciler.actions import Action, Decision, EmitEvent
from alembic_operator.controller.reconciler.context import whole_seconds
from alembic_operator.controller.reconciler.inputs import Observed
from alembic_operator.controller.settings import Settings


def release(
    *,
    status: MigrationRunStatus,
    now: datetime,
    run: RunView | None = None,
    observed: Observed | None = None,
    settings: Settings | None = None,
) -> Decision:
    """What to do before a deleted run is let go: scale its fenced workloads back (once); with ``run``,
    drop a rehearsal's scratch database (a drop Job, then its outcome: see :func:`holding`)."""
    st = status.model_copy(deep=True)
    actions: list[Action] = list(fence.lift(st, whole_seconds(now)))
    if actions:
        actions.append(
            EmitEvent(
                "Normal",
                EventReason.WRITE_FENCE_LIFTED,
                f"the run was deleted: scaled {fence.describe(st)} back; the database was left as it is",
            )
        )
    if run is not None and rehearsal.drop_pending(st):
        actions += rehearsal.drop_on_release(
            status=st, run=run, observed=observed or Observed(), settings=settings or Settings(), now=whole_seconds(now)
        )
    return Decision(status=st, actions=actions)


def holding(status: MigrationRunStatus) -> bool:
    """Whether a deleted run must stay until its rehearsal's scratch database is dropped (or given up on)."""
    return rehearsal.drop_pending(status)
