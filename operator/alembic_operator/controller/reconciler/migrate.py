"""Migrating: alembic upgrade in the application's image; never repeated (it may have changed the database).

Success → verify (expecting the revision the migration reported). Failure →
Failed when the step says nothing was committed, else a rollback
(:func:`~.rollback.begin`): unknown counts as changed.

Must not: start a second migrate Job for the same run.
"""

from __future__ import annotations

from alembic_operator.api import results
from alembic_operator.api.conditions import Reason
from alembic_operator.api.model import Phase
from alembic_operator.api.steps import Step
from alembic_operator.controller.reconciler import jobs, rollback
from alembic_operator.controller.reconciler.context import Context
from alembic_operator.controller.reconciler.outcomes import Outcome


def follow(ctx: Context) -> None:
    jobs.follow(ctx, Step.MIGRATE, after)


def after(ctx: Context, outcome: Outcome) -> None:
    """Record the revisions; verify, end Failed (nothing committed) or roll back."""
    data = outcome.data(results.MigrateResult)
    if data is not None and data.from_revision is not None:
        ctx.status.from_revision = data.from_revision
    if data is not None and data.to_revision is not None:
        ctx.status.to_revision = data.to_revision
    if outcome.ok:
        ctx.step_condition(Step.MIGRATE, "True", Reason.STEP_SUCCEEDED, outcome.message)
        jobs.start(ctx, Step.VERIFY)
        return
    cause = f"migration failed: {outcome.message}"
    if outcome.changed is False:
        message = f"{cause}; no changes were committed, so no restore is needed"
        ctx.step_condition(Step.MIGRATE, "False", outcome.reason or Reason.STEP_FAILED, message)
        ctx.end(Phase.FAILED, Reason.MIGRATION_FAILED, message)
        return
    ctx.step_condition(Step.MIGRATE, "False", outcome.reason or Reason.STEP_FAILED, cause)
    rollback.begin(ctx, cause)
