"""One run at a time per database, and at most so many at once: who starts next, and the Pending/Queued phases.

A run waits for every unfinished run on the same database that has started
(phase past Queued) or was created earlier (name breaks ties): :func:`find_blocker`.
The first in line of its database then waits while ``max_running_runs`` runs have a
step running, operator-wide, counting the first in line of every other database
that was created earlier as ahead of it (:func:`measure_capacity`): oldest first, and two runs
woken by one free slot cannot both take it. A started run never waits for a slot
(a fenced application would stay down), so a run approved after waiting for a person
may exceed the limit for a while. The handler computes both from its index of
runs; :func:`pending` only reads them.

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
    database: str  #: naming.database_label(spec, namespace): unique across namespaces
    creation_timestamp: datetime
    phase: Phase | None = None
    namespace: str = ""


#: Phases in which a run has a step running (or starting): what ``max_running_runs`` counts. A run waiting
#: for a person (AwaitingApproval, RollbackHeld) holds no slot.
WORKING_PHASES = frozenset(
    {Phase.PLANNING, Phase.BACKING_UP, Phase.REHEARSING, Phase.MIGRATING, Phase.VERIFYING, Phase.ROLLING_BACK}
)


@dataclasses.dataclass(frozen=True)
class Capacity:
    """The operator-wide limit as one waiting run sees it."""

    limit: int
    running: int  #: runs in :data:`WORKING_PHASES`
    ahead: int  #: first-in-line runs of other databases, created earlier, not started yet

    @property
    def full(self) -> bool:
        return self.running + self.ahead >= self.limit


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


def measure_capacity(
    *, name: str, namespace: str, creation_timestamp: datetime, others: Iterable[RunSummary], limit: int
) -> Capacity:
    """How the limit of ``limit`` running runs stands for a run that is first in line on its database."""
    me = (creation_timestamp, namespace, name)
    running, waiting = _line(o for o in others if (o.namespace, o.name) != (namespace, name))
    return Capacity(limit=limit, running=running, ahead=sum(1 for order in waiting if order < me))


def next_to_start(runs: Iterable[RunSummary], limit: int) -> list[tuple[str, str]]:
    """(namespace, name) of the runs that free slots let start now: first in line on their database, oldest
    first, as many as ``limit`` leaves room for (the handler wakes them when a run stops running)."""
    running, waiting = _line(runs)
    return [(namespace, name) for _, namespace, name in sorted(waiting)[: max(0, limit - running)]]


def _line(runs: Iterable[RunSummary]) -> tuple[int, list[tuple[datetime, str, str]]]:
    """(runs in :data:`WORKING_PHASES`, (created, namespace, name) of each database's first waiting run,
    for databases where no run has started)."""
    running = 0
    started: set[str] = set()
    first: dict[str, tuple[datetime, str, str]] = {}
    for run in runs:
        if run.phase in TERMINAL_PHASES:
            continue
        if run.phase in WORKING_PHASES:
            running += 1
        if run.phase is not None and PHASE_RANK[run.phase] > PHASE_RANK[Phase.QUEUED]:
            started.add(run.database)
            continue
        order = (run.creation_timestamp, run.namespace, run.name)
        first[run.database] = min(order, first.get(run.database, order))
    return running, [order for database, order in first.items() if database not in started]


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
    if ctx.capacity is not None and ctx.capacity.full:
        _wait_for_slot(ctx, ctx.capacity)
        return
    st.queue = None
    if ctx.spec.plan.destructive == "allow":  # nothing to look for: skip the plan
        approval.gate(ctx)  # approval.required still waits
    else:
        jobs.start(ctx, Step.PLAN)


def _wait_for_slot(ctx: Context, cap: Capacity) -> None:
    """Queued for the operator-wide limit. The Event gives the numbers at that moment; the status stays the
    same until the run starts, so a line of hundreds of runs re-checking costs no writes."""
    st = ctx.status
    if st.phase != Phase.QUEUED or (st.queue is not None and st.queue.blocked_by):
        ahead = f"; {cap.ahead} waiting runs go first" if cap.ahead else ""
        ctx.event(
            "Normal",
            EventReason.QUEUED,
            f"waiting for a free slot: {cap.running} runs are running, at most {cap.limit} at once "
            f"(the operator's maxRunningRuns){ahead}",
        )
    st.phase = Phase.QUEUED
    st.queue = QueueStatus(limit=cap.limit)
    st.message = (
        f"queued: the operator's limit of runs at once (maxRunningRuns: {cap.limit}) is reached; "
        "this run starts when a slot frees, oldest first"
    )
    ctx.wake(ctx.settings.reconcile.queued_poll_seconds)
