"""AwaitingApproval: a person approves or rejects the migration before the database is changed.

1. :func:`gate` (after the plan, or where it was skipped): the run must wait
   when ``approval.required`` is true, when ``plan.destructive: approve``
   and destructive statements were found, or when the plan could not render
   some revisions offline under ``block`` or ``approve`` (nobody checked them:
   a person decides, instead of the run failing forever; each is named).
   Then ``status.approval`` records why and what (Waiting), a Warning Event
   says how to decide, and the phase becomes AwaitingApproval; otherwise the run goes straight on (:func:`proceed`).
   :func:`ask` does the same for what is found later: rows a rehearsal deleted on its copy
   (:mod:`.rehearsal`) under ``plan.destructive: approve``, which the offline plan could not see.
2. :func:`waiting`, guard clauses in order: a rejection (annotation
   ``reject-migration``) ends the run Failed, nothing touched; no approval yet
   → keep waiting; an approval (``approve-migration``) is recorded with its
   user's name and the run goes on.
3. :func:`proceed`: the backup (nothing was backed up yet), else the migration.

A rejection wins over an approval set at the same time (the safe choice).
The annotations' values name the user: the chart's admission policy admits
only the user's own name, and only from a user with the verb ``approve``;
without the policy "true" also decides (recorded as given).

Must not: start anything but the backup or the migration; read the
approve-restore annotation (:mod:`.rollback` does); decide once a run left
AwaitingApproval (a late rejection changes nothing: delete the run instead).
"""

from __future__ import annotations

from alembic_operator.api import constants
from alembic_operator.api.conditions import EventReason, Reason
from alembic_operator.api.model import Phase, RunView
from alembic_operator.api.status_approval import ApprovalStatus
from alembic_operator.api.steps import Step
from alembic_operator.controller.reconciler import fence, jobs
from alembic_operator.controller.reconciler.context import Context, quote

#: At most this much of the plan's findings goes into status.approval.summary and the messages.
SUMMARY_LIMIT = 600


def decided_by(*, run: RunView, annotation: str) -> str | None:
    """The user named by ``annotation`` on the run; None when unset, empty or "false"."""
    value = run.annotations.get(annotation, "").strip()
    return value if value and value.lower() != "false" else None


def gate(ctx: Context) -> None:
    """Wait for a person when the spec asks for it; otherwise go on at once."""
    reasons = _reasons(ctx)
    if not reasons:
        proceed(ctx)
        return
    ask(ctx, reasons=reasons)


def ask(ctx: Context, *, reasons: list[str], found: str = "") -> None:
    """Wait in AwaitingApproval for ``reasons``; ``found`` (what a rehearsal saw) joins the plan's summary."""
    summary = quote(f"{_summary(ctx)}; {found}", SUMMARY_LIMIT) if found else _summary(ctx)
    ctx.status.approval = ApprovalStatus(state="Waiting", reasons=reasons, summary=summary, requested_at=ctx.now)
    ctx.status.phase = Phase.AWAITING_APPROVAL
    ctx.status.message = _waiting_message(ctx)
    if not _annotated(ctx):  # decided beforehand: the next call records it, no call to action
        ctx.event("Warning", EventReason.AWAITING_APPROVAL, ctx.status.message)


def waiting(ctx: Context) -> None:
    """AwaitingApproval: end on a rejection, wait for an approval, go on once approved."""
    record = ctx.status.approval or ApprovalStatus(state="Waiting", requested_at=ctx.now)
    rejecter = decided_by(run=ctx.run, annotation=constants.ANNOTATION_REJECT_MIGRATION)
    if rejecter is not None:
        ctx.status.approval = record.model_copy(update={"state": "Rejected", "by": rejecter, "decided_at": ctx.now})
        message = f"the migration was rejected{_by(rejecter)}; the database was not touched"
        ctx.end(Phase.FAILED, Reason.MIGRATION_REJECTED, message, event_reason=EventReason.MIGRATION_REJECTED)
        return
    approver = decided_by(run=ctx.run, annotation=constants.ANNOTATION_APPROVE_MIGRATION)
    if approver is None:
        ctx.status.message = _waiting_message(ctx)
        ctx.wake(ctx.settings.reconcile.held_poll_seconds)  # the annotation's change wakes the run sooner
        return
    ctx.status.approval = record.model_copy(update={"state": "Approved", "by": approver, "decided_at": ctx.now})
    ctx.event("Normal", EventReason.MIGRATION_APPROVED, f"the migration was approved{_by(approver)}; going on")
    proceed(ctx)


def proceed(ctx: Context) -> None:
    """The step after the gate: the backup when none was taken yet, else the migration."""
    if ctx.status.steps.backup is None:
        fence.to_backup(ctx)
    else:
        jobs.start(ctx, Step.MIGRATE)


def _reasons(ctx: Context) -> list[str]:
    reasons = []
    if ctx.spec.approval.required:
        reasons.append("approval.required is true")
    found = ctx.status.plan.destructive if ctx.status.plan is not None else []
    if found and ctx.spec.plan.destructive == "approve":
        reasons.append(f"{len(found)} destructive statement(s) and plan.destructive is approve")
    policy = ctx.spec.plan.destructive
    if policy in ("block", "approve"):
        for unrendered in ctx.status.plan.unrendered if ctx.status.plan is not None else []:
            revision, _, why = unrendered.partition(": ")
            reasons.append(
                f"revision {revision} not rendered offline ({why}), so not checked; plan.destructive is {policy}"
            )
    return reasons


def _summary(ctx: Context) -> str:
    """What a person approves: ``a1 → head: 3 statement(s); destructive: b2 DROP COLUMN: ...``."""
    st = ctx.status
    parts = [f"{st.from_revision or '?'} → {st.target_revision or ctx.spec.migrate.target}"]
    if st.plan is not None and st.plan.statements is not None:
        parts.append(f"{st.plan.statements} statement(s)")
    if st.plan is not None and st.plan.destructive:
        parts.append("destructive: " + "; ".join(st.plan.destructive))
    if st.plan is not None and st.plan.unrendered:
        parts.append("not rendered offline: " + "; ".join(st.plan.unrendered))
    return quote(", ".join(parts[:1]) + (": " + "; ".join(parts[1:]) if parts[1:] else ""), SUMMARY_LIMIT)


def _waiting_message(ctx: Context) -> str:
    record = ctx.status.approval
    why = "; ".join(record.reasons) if record is not None and record.reasons else "approval is required"
    what = record.summary if record is not None and record.summary else ""
    return (
        f"waiting for approval ({why}){': ' + what if what else ''}; annotate the run "
        f"{constants.ANNOTATION_APPROVE_MIGRATION}=<your user name> to migrate, or "
        f"{constants.ANNOTATION_REJECT_MIGRATION}=<your user name> to end it with the database untouched"
    )


def _annotated(ctx: Context) -> bool:
    return any(
        decided_by(run=ctx.run, annotation=a)
        for a in (constants.ANNOTATION_APPROVE_MIGRATION, constants.ANNOTATION_REJECT_MIGRATION)
    )


def _by(user: str) -> str:
    return f" by {user}" if user.lower() != "true" else ""
