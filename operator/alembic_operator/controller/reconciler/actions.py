"""What a reconcile returns: the new status and the actions, in the order the handler applies them.

The order and why it is crash-safe are in the package docstring
(:mod:`alembic_operator.controller.reconciler`); :mod:`alembic_operator.controller.applying`
carries the actions out. Must not: know how an action is applied.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, TypeVar

from alembic_operator.api.model import MigrationRunStatus


@dataclasses.dataclass(frozen=True)
class CreateJob:
    """Create this Job (409 AlreadyExists is success)."""

    step: str
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])


@dataclasses.dataclass(frozen=True)
class DeleteJob:
    """Delete this Job and its pods (404 is fine); Foreground so the Job stays until its pods are gone."""

    name: str
    propagation_policy: Literal["Foreground", "Background"] = "Foreground"


@dataclasses.dataclass(frozen=True)
class ScaleWorkload:
    """Set a Deployment's or StatefulSet's replicas through its scale subresource (404 is fine).

    Applied before the status is written, like :class:`CreateJob`: scaling to
    a fixed number is idempotent, and the replicas to put back were written
    to ``status.fence`` by an earlier reconcile, before any scale-down.
    """

    kind: str
    name: str
    replicas: int


@dataclasses.dataclass(frozen=True)
class EmitEvent:
    """Post an Event on the run (reasons: conditions.EventReason)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Requeue:
    """Reconcile again after this many seconds even if nothing changes."""

    after_seconds: float


Action = CreateJob | DeleteJob | ScaleWorkload | EmitEvent | Requeue
ActionT = TypeVar("ActionT", CreateJob, DeleteJob, ScaleWorkload, EmitEvent, Requeue)


@dataclasses.dataclass
class Decision:
    """The new status (write it whole) and the actions, in the order to apply them."""

    status: MigrationRunStatus
    actions: list[Action]

    def of(self, kind: type[ActionT]) -> list[ActionT]:
        """The actions of one kind, in order."""
        return [a for a in self.actions if isinstance(a, kind)]

    @property
    def creates(self) -> list[CreateJob]:
        return self.of(CreateJob)

    @property
    def deletes(self) -> list[DeleteJob]:
        return self.of(DeleteJob)

    @property
    def scales(self) -> list[ScaleWorkload]:
        return self.of(ScaleWorkload)

    @property
    def events(self) -> list[EmitEvent]:
        return self.of(EmitEvent)

    @property
    def requeue_after(self) -> float | None:
        """The soonest re-check asked for, in seconds."""
        return min((a.after_seconds for a in self.of(Requeue)), default=None)
