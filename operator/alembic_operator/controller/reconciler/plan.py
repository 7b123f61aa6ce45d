"""Planning: the plan step renders the upgrade's SQL offline; the destructive policy decides what follows.

A database already at the target ends the run Succeeded/AlreadyAtTarget here: no backup, no
migration, no verification (nothing would change, so there is nothing to protect: a Helm hook
runs on every release, most of which carry no revision). Not when ``verify.drift`` asks for the
drift check, which the full path runs.
block + destructive statements → Failed (nothing was changed); warn → an
Event and on to the backup; a failed plan → Failed. ``allow`` never gets
here (:func:`~.queue.pending` skips the plan). Revisions the plan could not
render offline are recorded (``status.plan.unrendered``): under warn an Event
names them; under block and approve :func:`~.approval.gate` waits for a person.
The data changes the revisions declare (``status.plan.declaredAllowances``)
are kept for the verify Job.

Must not: start anything but the backup (through :func:`~.approval.gate`, which may wait for a person first).
"""

from __future__ import annotations

from alembic_operator.api import errors, results, text
from alembic_operator.api.conditions import EventReason, Reason
from alembic_operator.api.model import Phase, PlanStatus
from alembic_operator.api.status_plan import DeclaredAllowance
from alembic_operator.api.steps import Step
from alembic_operator.controller.reconciler import approval, jobs
from alembic_operator.controller.reconciler.context import Context, quote
from alembic_operator.controller.reconciler.outcomes import Outcome


def follow(ctx: Context) -> None:
    jobs.follow(ctx, Step.PLAN, after)


def after(ctx: Context, outcome: Outcome) -> None:
    """Record the findings, then block, fail or go on to the backup."""
    data = outcome.data(results.PlanResult)
    destructive = [_describe(s) for s in data.destructive] if data else []
    if data is not None:
        if data.from_revision is not None:  # the backup and migrate steps confirm it later
            ctx.status.from_revision = data.from_revision
        _record(ctx, data, destructive)
    unrendered = ctx.status.plan.unrendered if ctx.status.plan is not None else []
    listed = quote("; ".join(destructive) or outcome.message, 600)
    blocked = outcome.ok and destructive and ctx.spec.plan.destructive == "block"
    if blocked or outcome.reason == errors.DestructiveChange.reason:
        message = f"blocked by destructive statements: {listed}{_also_unrendered(unrendered)}; nothing was changed"
        ctx.step_condition(Step.PLAN, "False", Reason.DESTRUCTIVE_CHANGE_BLOCKED, message)
        ctx.end(Phase.FAILED, Reason.DESTRUCTIVE_CHANGE_BLOCKED, message)
        return
    if not outcome.ok:
        message = f"plan failed: {outcome.message}; the database is unchanged"
        ctx.step_condition(Step.PLAN, "False", outcome.reason or Reason.STEP_FAILED, message)
        ctx.end(Phase.FAILED, Reason.FAILED, message)
        return
    if data is not None and _at_target(data) and ctx.spec.verify.drift == "ignore":
        _already_at_target(ctx, data, outcome.message)
        return
    if destructive:
        message = f"the plan has {len(destructive)} destructive statement(s): {listed}"
        ctx.event("Warning", EventReason.DESTRUCTIVE_CHANGES, message)
        ctx.step_condition(Step.PLAN, "True", Reason.DESTRUCTIVE_CHANGES_WARNED, message)
    else:
        ctx.step_condition(Step.PLAN, "True", Reason.STEP_SUCCEEDED, outcome.message)
    if unrendered and ctx.spec.plan.destructive == "warn":  # block and approve wait for a person instead
        message = (
            f"the plan could not check {len(unrendered)} revision(s) (not rendered offline): {'; '.join(unrendered)}"
        )
        ctx.event("Warning", EventReason.UNRENDERED_REVISIONS, quote(message, 600))
    approval.gate(ctx)  # AwaitingApproval when the spec asks for a person, else the backup


def _at_target(data: results.PlanResult) -> bool:
    """The plan read the database's revision and it is the target (a result that names neither is not)."""
    return not data.pending and data.to_revision is not None and data.from_revision == data.to_revision


def _already_at_target(ctx: Context, data: results.PlanResult, planned: str) -> None:
    """Succeeded without another step: the plan read the database's revision and found nothing pending."""
    at = data.from_revision or "base"
    ctx.status.to_revision = data.from_revision
    ctx.step_condition(Step.PLAN, "True", Reason.STEP_SUCCEEDED, planned)
    message = (
        f"the database is already at {at}, the target ({quote(ctx.spec.migrate.target, 80)}): "
        "nothing to migrate, so no backup was taken and nothing was changed"
    )
    ctx.end(
        Phase.SUCCEEDED, Reason.ALREADY_AT_TARGET, message, event_reason=EventReason.RUN_SUCCEEDED, event_type="Normal"
    )


def _record(ctx: Context, data: results.PlanResult, destructive: list[str]) -> None:
    """status.plan: the findings, the revisions not rendered and the allowances the revisions declare."""
    unrendered = [_describe_unrendered(u) for u in data.unrendered]
    declared = [
        DeclaredAllowance(revision=a.revision, table=a.table, kind=a.kind, to=a.to) for a in data.declared_allowances
    ]
    if data.statements is not None or destructive or unrendered or declared:
        ctx.status.plan = PlanStatus(
            statements=data.statements, destructive=destructive, unrendered=unrendered, declared_allowances=declared
        )


def _describe_unrendered(found: results.UnrenderedRevision) -> str:
    """``0002: OperationalError: no such table`` (the reason on one line, bounded, secrets masked)."""
    return f"{quote(found.revision, 80)}: {quote(found.reason, 200)}"


def _also_unrendered(unrendered: list[str]) -> str:
    return f"; and {len(unrendered)} revision(s) not rendered offline: {'; '.join(unrendered)}" if unrendered else ""


def _describe(found: results.DestructiveStatement) -> str:
    """A plan finding as one short line: ``b2 DROP COLUMN: ALTER TABLE t DROP COLUMN c``."""
    head = " ".join(part for part in (found.revision, found.kind) if part)
    statement = text.one_line(found.statement, 160)
    return f"{head}: {statement}" if head else statement
