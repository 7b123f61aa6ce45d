"""One run at a time per database: who goes first (:func:`find_blocker`), and the Pending/Queued phases.

A run waits for every unfinished run on the same database that has started
(phase past Queued) or was created earlier (name breaks ties). The handler
computes ``blocked_by`` from its index of runs; :func:`pending` only reads it.

Must not: list runs or read the clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from alembic_operator.api.conditions import EventReason, Reason
from alembic_operator.api.model import PHASE_RANK, TERMINAL_PHASES, Phase, QueueStatus
from alembic_operator.api.steps import Step
from alembic_operator.controller.reconciler import admission, approval, jobs

if TYPE_CHECKING:
    from alembic_operator.controller.reconciler.context import Context


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """Another run, as :func:`find_blocker` needs it (from the handler's index of runs)."""

    name: str
    database: str  #: naming.database_label(spec, namespace)
    creation_timestamp: datetime
    phase: Phase | None = None


def find_blocker(
    *, name: str, database: str, creation_timestamp: datetime, others: Iterable[RunSummary]
) -> tuple[str | None, int | None]:
    """(blocked_by, position) of a not-yet-started run: ``blocked_by`` goes first, ``position`` counts
    the runs ahead (1 = next to start); (None, None) when nothing is ahead."""
    ahead = []
    for other in others:
        if other.name == name or other.database != database or other.phase in TERMINAL_PHASES:
            continue
        started = other.phase is not None and PHASE_RANK[other.phase] > PHASE_RANK[Phase.QUEUED]
        if started or (other.creation_timestamp, other.name) < (creation_timestamp, name):
            ahead.append((0 if started else 1, other.creation_timestamp, other.name))
    if not ahead:
        return None, None
    ahead.sort()
    return ahead[0][2], len(ahead)


def pending(ctx: Context) -> None:
    """Pending or Queued: refuse what the administrator's policy forbids; wait while another run goes
    first; else start (the plan, or the backup)."""
    st = ctx.status
    refused = admission.refusal(run=ctx.run, policy=ctx.settings.admission)
    if refused:
        message = f"refused by the administrator's policy: {refused}; nothing was started"
        ctx.end(Phase.FAILED, Reason.POLICY_REFUSED, message, event_reason=Reason.POLICY_REFUSED)
        return
    if ctx.blocked_by:
        if st.phase != Phase.QUEUED:
            ctx.event("Normal", EventReason.QUEUED, f"waiting for run {ctx.blocked_by} on the same database to finish")
        st.phase = Phase.QUEUED
        st.queue = QueueStatus(blocked_by=ctx.blocked_by, position=ctx.queue_position)
        st.message = f"queued behind run {ctx.blocked_by} on the same database"
        ctx.wake(ctx.settings.reconcile.queued_poll_seconds)
        return
    st.queue = None
    if ctx.spec.plan.destructive == "allow":  # nothing to look for: skip the plan
        approval.gate(ctx)  # approval.required still waits
    else:
        jobs.start(ctx, Step.PLAN)
