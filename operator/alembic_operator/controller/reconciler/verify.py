"""Verifying: row counts and the revision against the backup's manifest; success ends the run.

A failed verification rolls back (:func:`~.rollback.begin`): the migration
committed, so the database changed.

Must not: judge row counts itself (the verify step does; this records its verdict).
"""

from __future__ import annotations

from alembic_operator.api import results
from alembic_operator.api.conditions import EventReason, Reason
from alembic_operator.api.model import Phase, RowCountsStatus
from alembic_operator.api.steps import Step
from alembic_operator.controller.reconciler import drift, jobs, rollback
from alembic_operator.controller.reconciler.context import Context, quote
from alembic_operator.controller.reconciler.outcomes import Outcome


def follow(ctx: Context) -> None:
    if ctx.status.steps.drift is not None:  # verify passed and the drift check follows in this phase
        jobs.follow(ctx, Step.DRIFT, lambda c, outcome: drift.after(c, outcome, succeed=succeed))
        return
    jobs.follow(ctx, Step.VERIFY, after)


def after(ctx: Context, outcome: Outcome) -> None:
    """Record the row counts; end Succeeded or roll back."""
    st = ctx.status
    data = outcome.data(results.VerifyResult)
    if data is not None:
        counted = (data.tables_checked, data.rows_before, data.rows_after)
        allowed = [quote(u.describe(), 300) for u in data.allowances_used]  # never hide a table that vanished
        if data.violations or allowed or any(n is not None for n in counted):
            st.row_counts = RowCountsStatus(
                tables=data.tables_checked,
                rows_before=data.rows_before,
                rows_after=data.rows_after,
                violations=[_describe(v) for v in data.violations],
                allowed=allowed,
            )
        if data.revision is not None and st.to_revision is None:
            st.to_revision = data.revision
    if not outcome.ok:
        cause = f"verification failed: {outcome.message}"
        ctx.step_condition(Step.VERIFY, "False", outcome.reason or Reason.STEP_FAILED, cause)
        rollback.begin(ctx, cause)
        return
    ctx.step_condition(Step.VERIFY, "True", Reason.STEP_SUCCEEDED, outcome.message)
    if ctx.spec.verify.drift != "ignore":
        jobs.start(ctx, Step.DRIFT)  # the models against the migrated database; it ends the run (drift.after)
        return
    succeed(ctx)


def succeed(ctx: Context) -> None:
    """End Succeeded, summing up what was migrated and verified."""
    st = ctx.status
    tables = st.row_counts.tables if st.row_counts else None
    what = f"{tables} tables" if tables is not None else "the database"
    allowed = "; ".join(st.row_counts.allowed) if st.row_counts else ""
    message = (
        f"migrated {st.from_revision or '(base)'} → {st.to_revision or st.target_revision} "
        f"and verified {what}{f' (allowed: {allowed})' if allowed else ''}; backup at {ctx.backup_uri()}"
    )
    ctx.end(Phase.SUCCEEDED, Reason.SUCCEEDED, message, event_reason=EventReason.RUN_SUCCEEDED, event_type="Normal")


def _describe(violation: results.RowCountViolation) -> str:
    """``public.orders: 10 → 7 rows`` (a vanished table: ``→ gone``)."""
    after = "gone" if violation.after is None else f"{violation.after} rows"
    return f"{violation.table}: {violation.before} → {after}"
