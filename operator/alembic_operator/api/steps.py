"""The steps of a run: one :class:`Step` type and one table of what each step is.

Before this module a step was a bare string and its facts were spread over
tables in the reconciler (phase, noun, repeatable), the conditions (condition
type, Event reasons) and the builders (image). :data:`STEPS` holds them all,
so adding or changing a step is one row here.

The values of :class:`Step` are the strings used everywhere on the wire: the
CLI subcommand, the Job's step label, the ``status.steps`` field name, the
``step`` of a result. A :class:`Step` is a ``str``, so it compares equal to
those strings and can be used where they were.

Must not: do I/O; be imported by :mod:`~alembic_operator.api.model` or
:mod:`~alembic_operator.api.conditions` (this module imports them: a cycle).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from alembic_operator.api.conditions import ConditionType, EventReason
from alembic_operator.api.model import Phase

#: Which image a step's Job runs: the operator's own (pg_dump, S3) or the application's (alembic scripts).
Image = Literal["operator", "app"]


class Step(enum.StrEnum):
    """A step of a run, run as one Job; its value is the CLI subcommand."""

    PLAN = "plan"  #: render the upgrade's SQL offline and look for destructive statements
    BACKUP = "backup"  #: pg_dump the database to S3 with row counts and write counters
    MIGRATE = "migrate"  #: alembic upgrade under an advisory lock
    VERIFY = "verify"  #: compare row counts and the revision with the backup
    RESTORE = "restore"  #: restore the database from the backup and prove it
    DRIFT = "drift"  #: compare the app's models with the migrated database (alembic check)
    DOWNGRADE = "downgrade"  #: alembic downgrade to the backup's revision (rollback.method: downgrade)
    # The rehearsal (spec.rehearsal): `alembic-operator rehearse prepare|exec|drop`, on a scratch copy.
    REHEARSE_PREPARE = "rehearse-prepare"  #: restore the backup into the scratch database
    REHEARSE_MIGRATE = "rehearse-migrate"  #: the migrate command against the copy
    REHEARSE_VERIFY = "rehearse-verify"  #: the verify command against the copy
    REHEARSE_DROP = "rehearse-drop"  #: report the copy's writes and drop it (always)


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """What the operator needs to know about a step besides its arguments."""

    phase: Phase
    """The run's phase while the step's Job runs."""
    condition: str
    """The per-step condition type (:class:`~alembic_operator.api.conditions.ConditionType`)."""
    started: str
    """Event reason when the Job is created."""
    succeeded: str
    """Event reason when the step succeeded."""
    failed: str
    """Event reason when the step failed."""
    image: Image
    """Which image runs the step."""
    repeatable: bool
    """Whether a vanished Job may get a new attempt; false for migrate, which may have changed the database."""
    noun: str
    """The step as a noun in messages: "the migration failed"."""
    result: str | None = None
    """The subcommand whose result the Job leaves, when not the step's own (a rehearsal runs migrate)."""


def _rehearsal(image: Image, noun: str, result: str, *, repeatable: bool = True) -> StepInfo:
    """A rehearsal step (spec.rehearsal): phase Rehearsing, condition Rehearsed, the rehearsal's Events."""
    return StepInfo(
        phase=Phase.REHEARSING,
        condition=ConditionType.REHEARSED,
        started=EventReason.REHEARSAL_STEP_STARTED,
        succeeded=EventReason.REHEARSAL_STEP_SUCCEEDED,
        failed=EventReason.REHEARSAL_STEP_FAILED,
        image=image,
        repeatable=repeatable,
        noun=noun,
        result=result,
    )


STEPS: Mapping[Step, StepInfo] = MappingProxyType(
    {
        Step.PLAN: StepInfo(
            phase=Phase.PLANNING,
            condition=ConditionType.PLANNED,
            started=EventReason.PLAN_STARTED,
            succeeded=EventReason.PLAN_SUCCEEDED,
            failed=EventReason.PLAN_FAILED,
            image="app",
            repeatable=True,
            noun="plan",
        ),
        Step.BACKUP: StepInfo(
            phase=Phase.BACKING_UP,
            condition=ConditionType.BACKED_UP,
            started=EventReason.BACKUP_STARTED,
            succeeded=EventReason.BACKUP_SUCCEEDED,
            failed=EventReason.BACKUP_FAILED,
            image="operator",
            repeatable=True,
            noun="backup",
        ),
        Step.MIGRATE: StepInfo(
            phase=Phase.MIGRATING,
            condition=ConditionType.MIGRATED,
            started=EventReason.MIGRATION_STARTED,
            succeeded=EventReason.MIGRATION_SUCCEEDED,
            failed=EventReason.MIGRATION_FAILED,
            image="app",
            repeatable=False,
            noun="migration",
        ),
        Step.VERIFY: StepInfo(
            phase=Phase.VERIFYING,
            condition=ConditionType.VERIFIED,
            started=EventReason.VERIFY_STARTED,
            succeeded=EventReason.VERIFY_SUCCEEDED,
            failed=EventReason.VERIFY_FAILED,
            image="operator",
            repeatable=True,
            noun="verification",
        ),
        Step.RESTORE: StepInfo(
            phase=Phase.ROLLING_BACK,
            condition=ConditionType.ROLLED_BACK,
            started=EventReason.RESTORE_STARTED,
            succeeded=EventReason.RESTORE_SUCCEEDED,
            failed=EventReason.RESTORE_FAILED,
            image="operator",
            repeatable=True,
            noun="restore",
        ),
        # After verify, in its phase and condition: a failure (policy fail) rolls back like a failed verify.
        Step.DRIFT: StepInfo(
            phase=Phase.VERIFYING,
            condition=ConditionType.VERIFIED,
            started=EventReason.DRIFT_CHECK_STARTED,
            succeeded=EventReason.DRIFT_CHECKED,
            failed=EventReason.SCHEMA_DRIFT,
            image="app",
            repeatable=True,
            noun="drift check",
        ),
        # rollback.method: downgrade; not repeatable: a vanished downgrade may have changed the database (restore).
        Step.DOWNGRADE: StepInfo(
            phase=Phase.ROLLING_BACK,
            condition=ConditionType.ROLLED_BACK,
            started=EventReason.DOWNGRADE_STARTED,
            succeeded=EventReason.DOWNGRADE_SUCCEEDED,
            failed=EventReason.DOWNGRADE_FAILED,
            image="app",
            repeatable=False,
            noun="downgrade",
        ),
        Step.REHEARSE_PREPARE: _rehearsal("operator", "rehearsal's copy", "rehearse"),
        # Not repeatable: a copy half-migrated by a lost Job says nothing; the rehearsal fails and drops it.
        Step.REHEARSE_MIGRATE: _rehearsal("app", "rehearsed migration", "migrate", repeatable=False),
        Step.REHEARSE_VERIFY: _rehearsal("operator", "rehearsed verification", "verify"),
        Step.REHEARSE_DROP: _rehearsal("operator", "scratch database's drop", "rehearse"),
    }
)


def result_of(step: str) -> str:
    """The name a step's result is parsed under (``results.parse``): the subcommand that wrote it."""
    try:
        result = STEPS[Step(step)].result
    except ValueError:
        return str(step)
    return result or str(step)
