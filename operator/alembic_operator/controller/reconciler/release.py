"""Letting go of a deleted run: lift its write fence and leave the database as it is.

Must not: start or delete Jobs (the handler waits until no step Job is active
before it calls :func:`release`, then removes the finalizer).
"""

from __future__ import annotations

from datetime import datetime

from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import MigrationRunStatus
from alembic_operator.controller.reconciler import fence
from alembic_operator.controller.reconciler.actions import Action, Decision, EmitEvent
from alembic_operator.controller.reconciler.context import whole_seconds


def release(*, status: MigrationRunStatus, now: datetime) -> Decision:
    """What to do before a deleted run is let go: scale its fenced workloads back (once)."""
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
    return Decision(status=st, actions=actions)
