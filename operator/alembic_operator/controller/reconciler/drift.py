"""The drift check after a passed verification (``spec.verify.drift`` warn or fail), in phase Verifying.

1. :func:`~.verify.after` starts the drift Job (the app's image: ``alembic-operator drift``)
   instead of ending the run; :func:`~.verify.follow` follows it from then on.
2. :func:`after`: the differences go to ``status.drift``; none, or warn → Succeeded (warn: a
   Warning Event names them); a failed check (policy fail, or the step could not compare) →
   a rollback like a failed verification (the migration committed).

Must not: compare anything itself (the step does); start anything but the restore.
"""

from __future__ import annotations

from collections.abc import Callable

from alembic_operator.api import results
from alembic_operator.api.conditions import EventReason, Reason
from alembic_operator.api.status_drift import DriftStatus
from alembic_operator.api.steps import Step
from alembic_operator.controller.reconciler import rollback
from alembic_operator.controller.reconciler.context import Context
from alembic_operator.controller.reconciler.outcomes import Outcome

#: At most this many differences are kept in status.drift.
MAX_KEPT = 20


def after(ctx: Context, outcome: Outcome, *, succeed: Callable[[Context], None]) -> None:
    """Record the differences; ``succeed`` (a warning first when there are some) or roll back."""
    data = outcome.data(results.DriftResult)
    found = list(data.differences) if data is not None else []
    ctx.status.drift = DriftStatus(policy=ctx.spec.verify.drift, differences=found[:MAX_KEPT], checked_at=ctx.now)
    if not outcome.ok:
        cause = f"schema drift check failed: {outcome.message}"
        ctx.step_condition(Step.DRIFT, "False", outcome.reason or Reason.STEP_FAILED, cause)
        rollback.begin(ctx, cause)
        return
    if found:
        ctx.event("Warning", EventReason.SCHEMA_DRIFT, outcome.message)
    ctx.step_condition(Step.DRIFT, "True", Reason.STEP_SUCCEEDED, outcome.message)
    succeed(ctx)
