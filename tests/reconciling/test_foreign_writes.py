"""A restore that would discard the application's writes waits for a person (safety rule 3)."""

from alembic_operator import constants
from alembic_operator.conditions import EventReason
from alembic_operator.model import Phase

from .world import World, condition, make_spec


def fail_migration_with_foreign_writes(world: World) -> None:
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, message="boom", changed=True)
    world.run = world.run.__class__(**{**world.run.__dict__, "status": world.status.model_copy(
        update={"foreign_writes": ["public.orders"]})})


def test_foreign_writes_with_hold_put_the_restore_on_hold_with_a_warning():
    world = World()
    fail_migration_with_foreign_writes(world)
    decision = world.tick()
    assert world.phase == Phase.ROLLBACK_HELD
    assert decision.creates == []
    assert "public.orders" in world.status.message
    assert constants.ANNOTATION_APPROVE_RESTORE in world.status.message
    held = [e for e in decision.events if e.reason == EventReason.ROLLBACK_HELD]
    assert len(held) == 1 and held[0].type == "Warning"
    assert condition(world.status, "Ready").status == "False"
    assert condition(world.status, "Stalled").reason == "RollbackHeld"


def test_a_held_restore_stays_held_without_new_events():
    world = World()
    fail_migration_with_foreign_writes(world)
    world.tick()
    world.advance(120)
    decision = world.tick()
    assert world.phase == Phase.ROLLBACK_HELD
    assert decision.events == [] and decision.creates == []


def test_approving_a_held_restore_starts_it():
    world = World()
    fail_migration_with_foreign_writes(world)
    world.tick()
    world.annotate(**{constants.ANNOTATION_APPROVE_RESTORE: "true"})
    decision = world.tick()
    assert world.phase == Phase.ROLLING_BACK
    assert [c.step for c in decision.creates] == ["restore"]
    assert EventReason.ROLLBACK_APPROVED in [e.reason for e in decision.events]
    assert condition(world.status, "Stalled").status == "False"


def test_with_on_foreign_writes_restore_the_writes_are_discarded_without_waiting():
    world = World(make_spec(rollback={"onForeignWrites": "restore"}))
    fail_migration_with_foreign_writes(world)
    decision = world.tick()
    assert world.phase == Phase.ROLLING_BACK
    assert [c.step for c in decision.creates] == ["restore"]
