"""The state of one reconcile: a working copy of the status, the actions collected, and small helpers.

The phase modules receive a :class:`Context`, change ``ctx.status`` and add
actions; :meth:`Context.close` turns it into the :class:`~.actions.Decision`.
Ending a run (:meth:`Context.end`) always lifts the write fence: no run ends
with the application scaled down.

Must not: read the clock (``now`` is given), call the API, or decide a phase
(the phase modules do; this module only records what they decide).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from alembic_operator.api import conditions, redact, text
from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import TERMINAL_PHASES, MigrationRunSpec, MigrationRunStatus, Phase, RunView, StepStatus
from alembic_operator.api.steps import STEPS, Step
from alembic_operator.controller import naming
from alembic_operator.controller.reconciler import fence
from alembic_operator.controller.reconciler.actions import Action, Decision, EmitEvent, Requeue
from alembic_operator.controller.reconciler.inputs import Observed
from alembic_operator.controller.settings import Settings

if TYPE_CHECKING:  # queue imports this module (through jobs)
    from alembic_operator.controller.reconciler.queue import Capacity

EventType = Literal["Normal", "Warning"]


def whole_seconds(now: datetime) -> datetime:
    """``now`` in UTC without microseconds (a naive ``now`` is taken as UTC): status times are whole seconds."""
    aware = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    return aware.replace(microsecond=0)


def quote(value: str | None, limit: int = text.MESSAGE_LIMIT) -> str:
    """A step's own words for status and Events: secrets masked, on one line, at most ``limit`` characters."""
    return text.one_line(redact.redact(value or ""), limit)


@dataclasses.dataclass
class Context:
    """One reconcile: the run, what was observed, the clock, and what this reconcile decided so far."""

    run: RunView
    observed: Observed
    now: datetime
    settings: Settings
    status: MigrationRunStatus
    location: str
    blocked_by: str | None = None
    queue_position: int | None = None
    capacity: Capacity | None = None
    actions: list[Action] = dataclasses.field(default_factory=list)
    #: Seconds until the next reconcile should happen even if nothing changes (the smallest asked for).
    requeue: float | None = None
    #: Set when this reconcile recorded the fence's replicas: scaling waits until they are stored.
    fence_recorded_now: bool = False

    @classmethod
    def open(
        cls,
        *,
        run: RunView,
        observed: Observed,
        now: datetime,
        settings: Settings,
        blocked_by: str | None = None,
        queue_position: int | None = None,
        capacity: Capacity | None = None,
    ) -> Context:
        """Start a reconcile: copy the status, accept a new run (Pending) and stamp the generation."""
        now = whole_seconds(now)
        location = naming.location(spec=run.spec, namespace=run.namespace, run_name=run.name, run_uid=run.uid)
        ctx = cls(
            run=run,
            observed=observed,
            now=now,
            settings=settings,
            status=run.status.model_copy(deep=True),
            location=location,
            blocked_by=blocked_by,
            queue_position=queue_position,
            capacity=capacity,
        )
        st = ctx.status
        if st.phase is None:
            st.phase = Phase.PENDING
            st.started_at = now
            st.message = "accepted; waiting to start"
        st.observed_generation = run.generation
        st.target_revision = st.target_revision or run.spec.migrate.target
        st.location = st.location or location
        if st.phase in TERMINAL_PHASES:
            ctx.lift_fence()  # safety net: a terminal run never keeps its write fence up
        return ctx

    @property
    def spec(self) -> MigrationRunSpec:
        return self.run.spec

    @property
    def phase(self) -> Phase | None:
        return self.status.phase

    # ---------------------------------------------------------------- recording

    def event(self, type: EventType, reason: str, message: str) -> None:
        self.actions.append(EmitEvent(type, reason, message))

    def wake(self, seconds: float) -> None:
        """Ask for a reconcile after ``seconds`` at the latest."""
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def step_condition(self, step: Step, status: conditions.ConditionStatus, reason: str, message: str) -> None:
        """Set the step's own condition (Planned, BackedUp, Migrated, Verified, RolledBack)."""
        self.status.conditions = conditions.set_condition(
            self.status.conditions,
            type=STEPS[step].condition,
            status=status,
            reason=reason,
            message=message,
            generation=self.run.generation,
            now=self.now,
        )

    def end(
        self,
        phase: Phase,
        reason: str,
        message: str,
        *,
        event_reason: str | None = None,
        event_type: EventType = "Warning",
    ) -> None:
        """Move to a terminal phase: message, finish time, kstatus conditions, an Event, the fence lifted."""
        st = self.status
        st.phase = phase
        st.message = message
        st.finished_at = self.now
        st.queue = None
        st.conditions = conditions.kstatus_conditions(
            st.conditions, phase=phase, reason=reason, message=message, generation=self.run.generation, now=self.now
        )
        if event_reason:
            self.event(event_type, event_reason, message)
        self.lift_fence()

    def lift_fence(self) -> None:
        """Scale fenced workloads back to their recorded replicas (every end of a run comes through here)."""
        scales = fence.lift(self.status, self.now)
        if scales:
            self.actions.extend(scales)
            self.event(
                "Normal",
                EventReason.WRITE_FENCE_LIFTED,
                f"scaled {fence.describe(self.status)} back ({self.phase.value if self.phase else 'ended'})",
            )

    # ---------------------------------------------------------------- reading

    def step(self, step: Step) -> StepStatus | None:
        return self.status.steps.get(step)

    def job_name(self, step: Step, attempt: int) -> str:
        return naming.job_name(run_name=self.run.name, run_uid=self.run.uid, step=step, attempt=attempt)

    def backup_uri(self) -> str:
        """Where the backup is: its recorded URI, else the run's folder."""
        backup = self.status.backup
        return backup.uri if backup is not None and backup.uri else self.location

    def cause(self) -> str:
        """Why a restore is due: the verification's failure, else the migration's."""
        verify = self.status.steps.verify
        if verify is not None and verify.outcome == "Failed":
            return f"verification failed: {verify.message}"
        drift = self.status.steps.drift
        if drift is not None and drift.outcome == "Failed":
            return f"schema drift check failed: {drift.message}"
        migrate = self.status.steps.migrate
        return f"migration failed: {migrate.message if migrate else 'unknown'}"

    def running_message(self, step: Step, attempt: int) -> str:
        """What the run is doing while ``step`` runs (status.message)."""
        spec = self.spec
        doing = {
            Step.PLAN: f"planning the upgrade to {spec.migrate.target} (destructive statements: "
            f"{spec.plan.destructive})",
            Step.BACKUP: f"backing the database up to {self.location}",
            Step.MIGRATE: f"migrating to {spec.migrate.target}; backup at {self.backup_uri()}",
            Step.VERIFY: "verifying row counts and revision against the backup",
            Step.RESTORE: f"{self.cause()}; restoring the database from {self.backup_uri()}",
            Step.DRIFT: f"comparing the app's models with the migrated database (verify.drift: {spec.verify.drift})",
            Step.DOWNGRADE: f"{self.cause()}; downgrading to the backup's revision (rollback.method: downgrade)",
            Step.REHEARSE_PREPARE: f"rehearsing: restoring the backup into scratch database {self.scratch()} "
            f"(pg_restore -j {spec.rehearsal.jobs}); the database is untouched",
            Step.REHEARSE_MIGRATE: f"rehearsing: migrating scratch database {self.scratch()} to {spec.migrate.target}",
            Step.REHEARSE_VERIFY: f"rehearsing: verifying scratch database {self.scratch()} against the backup",
            Step.REHEARSE_DROP: f"dropping scratch database {self.scratch()}",
        }[step]
        return doing + (f" (attempt {attempt})" if attempt > 1 else "")

    def scratch(self) -> str:
        """The rehearsal's scratch database (status.rehearsal.database), for messages."""
        return self.status.rehearsal.database if self.status.rehearsal else "(not recorded)"

    # ---------------------------------------------------------------- closing

    def close(self) -> Decision:
        """The Decision: kstatus conditions for the phase reached, the actions, one Requeue unless terminal."""
        st = self.status
        generation = self.run.generation
        if st.phase is not None and st.phase not in TERMINAL_PHASES:
            # The reason is the phase's name (Queued, RollbackHeld, Migrating... are reasons too).
            st.conditions = conditions.kstatus_conditions(
                st.conditions,
                phase=st.phase,
                reason=st.phase.value,
                message=st.message or "",
                generation=generation,
                now=self.now,
            )
        st.conditions = conditions.restamp_generation(st.conditions, generation)
        actions = list(self.actions)
        if self.requeue is not None and st.phase not in TERMINAL_PHASES:
            actions.append(Requeue(max(self.settings.reconcile.min_requeue_seconds, float(self.requeue))))
        return Decision(status=st, actions=actions)
