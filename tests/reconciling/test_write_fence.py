"""The opt-in write fence: writers scaled to zero before the backup and always scaled back.

The replicas to put back are written to status before anything is scaled, so
an operator killed at any instant still lifts the fence; every way a run ends
(and deleting it) lifts it.
"""

import pytest

from alembic_operator.api import constants
from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import Phase
from alembic_operator.controller import reconciler
from alembic_operator.controller.reconciler import ScaleWorkload

from .world import BACKUP_DATA, MIGRATE_DATA, World, make_spec

KEY = "Deployment/shop-web"
FENCED = {
    "writeFence": {"scaleDown": [{"kind": "Deployment", "name": "shop-web"}], "timeoutSeconds": 60},
    "plan": {"destructive": "allow"},
}


def fenced_world(replicas: int = 3, **over) -> World:
    world = World(make_spec(**{**FENCED, **over}))
    world.add_workload(KEY, replicas)
    return world


def raise_fence(world: World) -> None:
    world.tick()  # records
    world.tick()  # scales
    world.stop_pods(KEY)
    world.tick()  # up: backup starts
    assert world.status.fence.state == "Up" and world.status.steps.backup is not None


def test_the_replicas_are_recorded_before_anything_is_scaled_or_backed_up():
    world = fenced_world()
    decision = world.tick()
    assert world.phase == Phase.BACKING_UP
    assert world.status.fence.replicas == {KEY: 3} and world.status.fence.state == "Raising"
    assert decision.scales == [] and decision.creates == []


def test_the_next_reconcile_scales_to_zero_and_waits_for_the_pods():
    world = fenced_world()
    world.tick()
    decision = world.tick()
    assert decision.scales == [ScaleWorkload(kind="Deployment", name="shop-web", replicas=0)]
    assert decision.creates == []
    decision = world.tick()  # scaled, pods still running
    assert decision.creates == [] and "waiting for the pods of Deployment/shop-web" in world.status.message
    assert decision.requeue_after is not None and decision.requeue_after <= 2


def test_the_backup_starts_only_once_no_pod_is_left():
    world = fenced_world()
    world.tick()
    world.tick()
    world.stop_pods(KEY)
    decision = world.tick()
    assert [c.step for c in decision.creates] == ["backup"]
    assert EventReason.WRITE_FENCE_RAISED in [e.reason for e in decision.events]
    assert world.status.fence.replicas == {KEY: 3}


def test_a_workload_that_does_not_exist_fails_the_run_before_anything_changes():
    world = World(make_spec(**FENCED))
    world.workloads[KEY] = reconciler.WorkloadObservation(exists=False)
    decision = world.tick()
    assert world.phase == Phase.FAILED
    assert "Deployment/shop-web not found" in world.status.message
    assert decision.scales == [] and decision.creates == []


def test_pods_that_never_stop_fail_the_run_and_lift_the_fence():
    world = fenced_world()
    world.tick()
    world.tick()
    world.advance(61)
    decision = world.tick()
    assert world.phase == Phase.FAILED and "did not stop within 60s" in world.status.message
    assert decision.scales == [ScaleWorkload(kind="Deployment", name="shop-web", replicas=3)]
    assert decision.creates == []


def test_a_successful_run_scales_the_workload_back():
    world = fenced_world()
    raise_fence(world)
    world.finish("backup", data=BACKUP_DATA)
    world.tick()
    world.finish("migrate", data=MIGRATE_DATA)
    world.tick()
    world.finish("verify", data={"tablesChecked": 4, "violations": []})
    decision = world.tick()
    assert world.phase == Phase.SUCCEEDED
    assert decision.scales == [ScaleWorkload(kind="Deployment", name="shop-web", replicas=3)]
    assert world.status.fence.state == "Lifted"
    assert EventReason.WRITE_FENCE_LIFTED in [e.reason for e in decision.events]
    assert world.tick().actions == []


@pytest.mark.parametrize("ending", ["nothing-committed", "rolled-back", "restore-failed", "backup-failed"])
def test_every_ending_lifts_the_fence(ending):
    world = fenced_world()
    raise_fence(world)
    if ending == "backup-failed":
        world.finish("backup", ok=False, reason="BackupFailed")
    else:
        world.finish("backup", data=BACKUP_DATA)
        world.tick()
        world.finish("migrate", ok=False, reason="MigrationFailed", changed=ending != "nothing-committed")
        if ending != "nothing-committed":
            world.tick()
            if ending == "rolled-back":
                world.finish("restore")
            else:
                world.finish("restore", ok=False, reason="RestoreFailed")
    decision = world.tick()
    assert world.phase in (Phase.FAILED, Phase.ROLLED_BACK, Phase.ROLLBACK_FAILED)
    assert decision.scales == [ScaleWorkload(kind="Deployment", name="shop-web", replicas=3)]
    assert world.status.fence.state == "Lifted"


def test_a_held_restore_keeps_the_fence_up():
    world = fenced_world()
    raise_fence(world)
    world.finish("backup", data=BACKUP_DATA)
    world.tick()
    world.finish("migrate", ok=False, reason="MigrationFailed", changed=True)
    world.tick()
    world.finish(
        "restore",
        ok=False,
        reason="ForeignWritesDetected",
        data={"foreignWrites": {"tables": [{"table": "public.audit", "rows": 4}], "rows": 4}},
    )
    decision = world.tick()
    assert world.phase == Phase.ROLLBACK_HELD
    assert decision.scales == [] and world.status.fence.state == "Up"


def test_deleting_a_run_lifts_its_fence_and_leaves_the_database_alone():
    world = fenced_world()
    raise_fence(world)
    decision = reconciler.release(status=world.status, now=world.now)
    assert decision.scales == [ScaleWorkload(kind="Deployment", name="shop-web", replicas=3)]
    assert decision.creates == [] and decision.status.fence.state == "Lifted"
    again = reconciler.release(status=decision.status, now=world.now)
    assert again.actions == []


def test_a_restarted_operator_that_finds_the_replicas_recorded_goes_on_scaling():
    world = fenced_world(replicas=2)
    world.tick()  # recorded; the operator dies before anything else
    decision = world.tick()
    assert decision.scales == [ScaleWorkload(kind="Deployment", name="shop-web", replicas=0)]
    assert world.status.fence.replicas == {KEY: 2}


def test_a_terminal_run_whose_fence_is_still_up_gets_it_lifted():
    world = fenced_world()
    raise_fence(world)
    world.finish("backup", ok=False, reason="BackupFailed")
    world.tick()
    status = world.status.model_copy(deep=True)
    status.fence.state = "Up"  # as if an older operator had left it
    world.run = world.run.__class__(**{**world.run.__dict__, "status": status})
    decision = world.tick()
    assert decision.scales == [ScaleWorkload(kind="Deployment", name="shop-web", replicas=3)]


def test_a_queued_run_does_not_touch_the_fence():
    world = fenced_world()
    decision = world.tick(blocked_by="older")
    assert world.phase == Phase.QUEUED and world.status.fence is None and decision.scales == []
    assert constants.ANNOTATION_APPROVE_RESTORE  # (the fence is independent of approvals)
