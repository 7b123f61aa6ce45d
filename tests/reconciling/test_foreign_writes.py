"""A restore that would discard the application's writes waits for a person (safety rule 3).

The restore step's preflight counts other sessions' writes since the backup
and, told ``--on-foreign-writes hold``, stops with ForeignWritesDetected
without touching the database; the reconciler records them and holds.
"""

from alembic_operator.api import constants
from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import ForeignWritesStatus, Phase, TableWrites

from .world import World, condition, make_spec

FOUND = {
    "foreignWrites": {
        "tables": [
            {"table": "public.project", "rows": 118, "inserted": 118},
            {"table": "public.task", "rows": 2, "updated": 2},
        ],
        "rows": 120,
        "ownWritesKnown": True,
        "statsUri": "s3://backups/pg/shop/x/stats-pre-restore.json",
    }
}


def fail_verification(world: World) -> None:
    world.run_to(Phase.VERIFYING)
    world.finish("verify", ok=False, reason="RowCountViolation", message="public.task lost rows", changed=True)
    world.tick()
    assert world.phase == Phase.ROLLING_BACK


def restore_command(world: World) -> list[str]:
    create = [c for d in world.decisions for c in d.creates if c.step == "restore"][-1]
    return create.manifest["spec"]["template"]["spec"]["containers"][0]["command"]


def refuse_restore(world: World, data: dict = FOUND):
    world.finish(
        "restore",
        ok=False,
        reason="ForeignWritesDetected",
        data=data,
        message="other sessions wrote ~120 rows since the backup",
    )
    return world.tick()


def test_the_restore_job_is_told_to_hold_on_foreign_writes_by_default():
    world = World()
    fail_verification(world)
    assert restore_command(world)[-2:] == ["--on-foreign-writes", "hold"]


def test_a_restore_that_finds_foreign_writes_holds_naming_the_tables_and_counts():
    world = World()
    fail_verification(world)
    decision = refuse_restore(world)
    assert world.phase == Phase.ROLLBACK_HELD
    assert decision.creates == []
    fw = world.status.foreign_writes
    assert fw is not None and fw.rows == 120 and not fw.discarded
    assert [(t.table, t.rows) for t in fw.tables] == [("public.project", 118), ("public.task", 2)]
    assert "public.project: ~118 rows" in world.status.message
    assert constants.ANNOTATION_APPROVE_RESTORE in world.status.message
    held = [e for e in decision.events if e.reason == EventReason.ROLLBACK_HELD]
    assert len(held) == 1 and held[0].type == "Warning" and "public.project" in held[0].message
    assert EventReason.RESTORE_FAILED not in [e.reason for e in decision.events]
    assert condition(world.status, "Ready").status == "False"
    assert condition(world.status, "Stalled").reason == "RollbackHeld"
    assert condition(world.status, "RolledBack").reason == "ForeignWritesDetected"


def test_a_held_restore_stays_held_without_new_events_or_jobs():
    world = World()
    fail_verification(world)
    refuse_restore(world)
    world.advance(120)
    decision = world.tick()
    assert world.phase == Phase.ROLLBACK_HELD
    assert decision.events == [] and decision.creates == []


def test_approving_a_held_restore_starts_a_second_restore_that_may_discard():
    world = World()
    fail_verification(world)
    refuse_restore(world)
    world.annotate(**{constants.ANNOTATION_APPROVE_RESTORE: "true"})
    decision = world.tick()
    assert world.phase == Phase.ROLLING_BACK
    assert [c.step for c in decision.creates] == ["restore"]
    assert world.status.steps.restore.attempt == 2
    assert restore_command(world)[-2:] == ["--on-foreign-writes", "restore"]
    assert EventReason.ROLLBACK_APPROVED in [e.reason for e in decision.events]
    assert condition(world.status, "Stalled").status == "False"


def test_a_restore_that_discarded_writes_says_so_in_status_and_a_warning():
    world = World()
    fail_verification(world)
    refuse_restore(world)
    world.annotate(**{constants.ANNOTATION_APPROVE_RESTORE: "true"})
    world.tick()
    later = {
        "foreignWrites": {
            **FOUND["foreignWrites"],
            "rows": 150,
            "tables": [{"table": "public.project", "rows": 150, "inserted": 150}],
        }
    }
    world.finish("restore", data=later, message="restored 4 tables")
    decision = world.tick()
    assert world.phase == Phase.ROLLED_BACK
    fw = world.status.foreign_writes
    assert fw is not None and fw.discarded and fw.rows == 150
    assert "discarded ~150 rows" in world.status.message and "public.project" in world.status.message
    discarded = [e for e in decision.events if e.reason == EventReason.FOREIGN_WRITES_DISCARDED]
    assert len(discarded) == 1 and discarded[0].type == "Warning"


def test_with_on_foreign_writes_restore_the_restore_goes_ahead_and_records_what_it_discarded():
    world = World(make_spec(rollback={"onForeignWrites": "restore"}))
    fail_verification(world)
    assert restore_command(world)[-2:] == ["--on-foreign-writes", "restore"]
    world.finish("restore", data=FOUND, message="restored")
    world.tick()
    assert world.phase == Phase.ROLLED_BACK
    assert world.status.foreign_writes is not None and world.status.foreign_writes.discarded


def test_without_foreign_writes_the_restore_proceeds_as_before():
    world = World()
    fail_verification(world)
    world.finish("restore", data={"foreignWrites": {"tables": [], "rows": 0}}, message="restored")
    decision = world.tick()
    assert world.phase == Phase.ROLLED_BACK
    assert world.status.foreign_writes is None
    assert EventReason.FOREIGN_WRITES_DISCARDED not in [e.reason for e in decision.events]


def test_foreign_writes_known_before_the_restore_hold_it_before_any_job():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, message="boom", changed=True)
    world.run = world.run.__class__(
        **{
            **world.run.__dict__,
            "status": world.status.model_copy(
                update={
                    "foreign_writes": ForeignWritesStatus(tables=[TableWrites(table="public.orders", rows=3)], rows=3)
                }
            ),
        }
    )
    decision = world.tick()
    assert world.phase == Phase.ROLLBACK_HELD and decision.creates == []


def test_a_hold_whose_own_writes_are_unknown_says_they_are_included():
    world = World()
    fail_verification(world)
    refuse_restore(world, {"foreignWrites": {**FOUND["foreignWrites"], "ownWritesKnown": False}})
    assert "could not be told apart" in world.status.message


def test_a_refusal_without_details_still_holds():
    world = World()
    fail_verification(world)
    refuse_restore(world, {})
    assert world.phase == Phase.ROLLBACK_HELD


def test_a_migration_that_committed_nothing_ends_failed_and_never_restores():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, reason="MigrationFailed", message="boom", changed=False)
    decision = world.tick()
    assert world.phase == Phase.FAILED
    assert "no changes were committed" in world.status.message and "no restore is needed" in world.status.message
    assert decision.creates == [] and world.status.steps.restore is None
