"""RollingBack by downgrade (``rollback.method: downgrade``): undo the migration and keep the application's writes.

1. :func:`chosen`: the spec asks for a downgrade and it has not fallen back yet.
2. :func:`rolling_back`: record ``status.rollback``; when the verification found
   rows lost, fall back at once (a downgrade cannot bring rows back); else start
   the downgrade Job (app image), or follow it.
3. :func:`after`: succeeded (database at the backup's revision, schema equal to
   the backup's by fingerprint) → RolledBack, saying the writes since the backup
   were kept. Missing, failed or another schema → ``status.rollback`` records why
   and the rollback goes on as a restore (``fall_back``: :func:`.rollback.rolling_back`,
   with its foreign-writes hold), whose messages name the reason (:func:`fallback_note`).

Must not: restore (the restore path does, once this fell back); start a downgrade twice.
"""

from __future__ import annotations

from collections.abc import Callable

from alembic_operator.api import errors, results
from alembic_operator.api.conditions import EventReason, Reason
from alembic_operator.api.model import Phase
from alembic_operator.api.status_rollback import DowngradeOutcome, RollbackStatus
from alembic_operator.api.steps import Step
from alembic_operator.controller.reconciler import jobs
from alembic_operator.controller.reconciler.context import Context
from alembic_operator.controller.reconciler.outcomes import Outcome

#: What the rollback does when the downgrade cannot: the restore path.
FallBack = Callable[[Context], None]

#: The downgrade step's failure reasons, as status.rollback.downgrade names them.
OUTCOMES: dict[str, DowngradeOutcome] = {
    errors.DowngradeMissing.reason: "Missing",
    errors.SchemaMismatch.reason: "SchemaDiffers",
}

#: How a fallback's reason begins, by outcome.
_WHY: dict[DowngradeOutcome, str] = {
    "Missing": "a revision has no downgrade",
    "SchemaDiffers": "the schema after the downgrade is not the backup's",
    "Failed": "the downgrade failed",
}


def chosen(ctx: Context) -> bool:
    """Whether this rollback goes (or went) by downgrade: asked for, and not fallen back to the restore."""
    record = ctx.status.rollback
    return ctx.spec.rollback.method == "downgrade" and (record is None or record.used == "downgrade")


def rolling_back(ctx: Context, *, fall_back: FallBack) -> None:
    """Start the downgrade, follow it, or fall back at once when it cannot help."""
    if ctx.status.steps.downgrade is not None:
        jobs.follow(ctx, Step.DOWNGRADE, lambda c, outcome: after(c, outcome, fall_back=fall_back))
        return
    ctx.status.rollback = RollbackStatus(method="downgrade", used="downgrade")
    lost = ctx.status.row_counts.violations if ctx.status.row_counts else []
    if lost:
        why = f"the verification found rows lost ({'; '.join(lost[:3])}), which a downgrade cannot bring back"
        _fall_back(ctx, "NotAttempted", why, fall_back)
        return
    jobs.start(ctx, Step.DOWNGRADE)


def after(ctx: Context, outcome: Outcome, *, fall_back: FallBack) -> None:
    """The downgrade ended: RolledBack with the writes kept, or the restore follows."""
    record = ctx.status.rollback or RollbackStatus(method="downgrade", used="downgrade")
    ctx.status.rollback = record
    if outcome.ok:
        data = outcome.data(results.MigrateResult)
        record.downgrade = "Succeeded"
        record.to_revision = data.to_revision if data is not None else ctx.status.from_revision
        ctx.step_condition(Step.DOWNGRADE, "True", Reason.STEP_SUCCEEDED, outcome.message)
        message = (
            f"{ctx.cause()}; rolled back by downgrade to {record.to_revision or 'base'} (the app's own downgrade, "
            "rollback.method: downgrade): the schema equals the backup's (fingerprint), and the application's "
            f"writes since the backup were kept; the backup stays at {ctx.backup_uri()}"
        )
        ctx.end(Phase.ROLLED_BACK, Reason.ROLLED_BACK, message)
        return
    label = OUTCOMES.get(outcome.reason, "Failed")
    ctx.step_condition(Step.DOWNGRADE, "False", outcome.reason or Reason.STEP_FAILED, outcome.message)
    _fall_back(ctx, label, f"{_WHY[label]}: {outcome.message}", fall_back)


def fallback_note(ctx: Context) -> str:
    """``; rollback.method downgrade fell back to the restore: WHY`` for the restore's messages, or ``""``."""
    record = ctx.status.rollback
    if record is None or record.used != "restore" or not record.fallback:
        return ""
    return f"; rollback.method downgrade fell back to the restore: {record.fallback}"


def _fall_back(ctx: Context, label: DowngradeOutcome, why: str, fall_back: FallBack) -> None:
    """Record why, say so, and hand the rollback to the restore path."""
    record = ctx.status.rollback or RollbackStatus(method="downgrade", used="downgrade")
    record.used, record.downgrade, record.fallback = "restore", label, why
    ctx.status.rollback = record
    ctx.event("Warning", EventReason.DOWNGRADE_FELL_BACK, f"{why}; restoring from {ctx.backup_uri()} instead")
    fall_back(ctx)
