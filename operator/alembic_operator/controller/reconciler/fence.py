"""The write fence: scale the application to zero before the backup, and back whenever the run ends.

Raising it takes one safe move per reconcile (:func:`raised`):

1. Record every workload's replicas in ``status.fence`` (no scaling yet: the
   record must be stored before anything is scaled, so a restarted operator
   can always put them back).
2. Next reconcile: scale each to zero (ScaleWorkload, repeated while
   ``spec.replicas`` is not zero).
3. Wait until neither the controller nor the pod list shows a pod; past
   ``writeFence.timeoutSeconds`` the run fails and the fence is lifted.

Lifting (:func:`lift`) is pure on the status, so :func:`~.release.release`
and :meth:`~.context.Context.end` share it.

Must not: scale anything itself (it returns ScaleWorkload actions) or start the backup.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from alembic_operator.api.conditions import EventReason, Reason
from alembic_operator.api.model import FenceStatus, MigrationRunStatus, Phase
from alembic_operator.controller.reconciler.actions import ScaleWorkload
from alembic_operator.controller.reconciler.inputs import workload_key

if TYPE_CHECKING:
    from alembic_operator.controller.reconciler.context import Context


def targets(ctx: Context) -> list[str]:
    """The fenced workloads' keys (``Deployment/shop``); empty without a write fence."""
    spec = ctx.spec.write_fence
    return [workload_key(t.kind, t.name) for t in spec.scale_down] if spec else []


def to_backup(ctx: Context) -> None:
    """Move to BackingUp; the backup Job starts once the write fence (if any) is up."""
    ctx.status.phase = Phase.BACKING_UP
    if targets(ctx):
        ctx.status.message = "raising the write fence before the backup"


def raised(ctx: Context) -> bool:
    """Take the next step of raising the fence; True once no pod of a fenced workload is left."""
    keys = targets(ctx)
    if not keys:
        return True
    if ctx.status.fence is None:
        _record(ctx, keys)
        return False
    if ctx.status.fence.state != "Raising":
        return True
    if ctx.fence_recorded_now:  # the record must be stored before the first scale-down
        ctx.wake(ctx.settings.reconcile.fence_poll_seconds)
        return False
    return _scaled_down(ctx, ctx.status.fence)


def _record(ctx: Context, keys: list[str]) -> None:
    """Step 1: record the replicas of every workload (all must have been read, and exist)."""
    seen = ctx.observed.workloads
    unread = [k for k in keys if k not in seen]
    if unread:
        ctx.status.message = f"write fence: reading {', '.join(unread)}"
        ctx.wake(ctx.settings.reconcile.fence_read_poll_seconds)
        return
    missing = [k for k in keys if not seen[k].exists]
    if missing:
        ctx.end(
            Phase.FAILED,
            Reason.WRITE_FENCE_FAILED,
            f"write fence: {', '.join(missing)} not found in namespace {ctx.run.namespace}; nothing was changed",
            event_reason=EventReason.WRITE_FENCE_FAILED,
        )
        return
    ctx.status.fence = FenceStatus(replicas={k: seen[k].replicas for k in keys}, state="Raising", raised_at=ctx.now)
    ctx.fence_recorded_now = True
    ctx.status.message = f"write fence: recorded {describe(ctx.status)}; scaling to zero"
    ctx.wake(ctx.settings.reconcile.fence_poll_seconds)


def _scaled_down(ctx: Context, fence: FenceStatus) -> bool:
    """Steps 2 and 3: scale to zero what is not, then wait for the pods to stop (or time out)."""
    waiting = []
    for key in fence.replicas:
        seen = ctx.observed.workloads.get(key)
        if seen is None:
            waiting.append(key)
        elif not seen.exists:
            continue
        elif seen.replicas != 0:
            kind, name = key.split("/", 1)
            ctx.actions.append(ScaleWorkload(kind=kind, name=name, replicas=0))
            waiting.append(key)
        elif seen.current or seen.pods:
            waiting.append(key)
    if not waiting:
        fence.state = "Up"
        ctx.event(
            "Normal",
            EventReason.WRITE_FENCE_RAISED,
            f"scaled {', '.join(fence.replicas)} to zero and no pod of them is left; backing up",
        )
        return True
    assert ctx.spec.write_fence is not None  # a fence was recorded, so the spec asks for one
    timeout = ctx.spec.write_fence.timeout_seconds
    if fence.raised_at is not None and (ctx.now - fence.raised_at).total_seconds() > timeout:
        ctx.end(
            Phase.FAILED,
            Reason.WRITE_FENCE_FAILED,
            f"write fence: the pods of {', '.join(waiting)} did not stop within {timeout}s; nothing was changed",
            event_reason=EventReason.WRITE_FENCE_FAILED,
        )
        return False
    ctx.status.message = f"write fence: waiting for the pods of {', '.join(waiting)} to stop before the backup"
    ctx.wake(ctx.settings.reconcile.fence_poll_seconds)
    return False


def lift(status: MigrationRunStatus, now: datetime) -> list[ScaleWorkload]:
    """ScaleWorkload back to every recorded replica count, marking the fence Lifted (in ``status``)."""
    fence = status.fence
    if fence is None or fence.state == "Lifted":
        return []
    scales = [
        ScaleWorkload(kind=key.split("/", 1)[0], name=key.split("/", 1)[1], replicas=replicas)
        for key, replicas in sorted(fence.replicas.items())
    ]
    fence.state = "Lifted"
    fence.lifted_at = now
    return scales


def describe(status: MigrationRunStatus) -> str:
    """``Deployment/shop (3 replicas), StatefulSet/worker (1 replica)``: the fence's record."""
    replicas = status.fence.replicas if status.fence else {}
    return ", ".join(f"{k} ({n} replica{'s' if n != 1 else ''})" for k, n in sorted(replicas.items()))
