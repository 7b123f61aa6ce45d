"""rollback.method: downgrade: the app's downgrade goes first and keeps the application's writes; the restore
(with its foreign-writes hold) follows when the downgrade is missing, fails, leaves another schema, or cannot help."""

from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import Phase

from .test_foreign_writes import FOUND, refuse_restore
from .world import World, condition, make_spec, running

DOWNGRADED = {"fromRevision": "b2", "toRevision": "a1", "targetRevision": "a1", "applied": ["b2"]}


def failed_migration(method: str = "downgrade") -> World:
    world = World(make_spec(rollback={"method": method}))
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, reason="MigrationFailed", message="boom in b2", changed=True)
    world.tick()
    assert world.phase == Phase.ROLLING_BACK
    return world


def created(world: World) -> list[str]:
    return [c.step for d in world.decisions for c in d.creates]


def events(world: World, reason: str) -> list[str]:
    return [e.message for d in world.decisions for e in d.events if e.reason == reason]


def test_a_failed_migration_is_downgraded_in_the_apps_image_and_ends_rolled_back_keeping_the_writes():
    world = failed_migration()
    assert created(world)[-1] == "downgrade" and world.status.steps.restore is None
    create = world.decisions[-1].creates[0]
    assert create.manifest["spec"]["template"]["spec"]["containers"][0]["image"] == world.run.spec.migrate.image
    world.tick()  # following it starts nothing new
    assert world.decisions[-1].creates == []

    world.finish("downgrade", data=DOWNGRADED, message="downgraded from b2 to a1 (1 revision undone)")
    world.tick()
    assert world.phase == Phase.ROLLED_BACK
    message = world.status.message or ""
    assert message.startswith("migration failed: boom in b2; rolled back by downgrade to a1")
    assert "writes since the backup were kept" in message and "schema equals the backup's" in message
    rollback = world.status.rollback
    assert rollback is not None
    assert (rollback.method, rollback.used, rollback.downgrade, rollback.to_revision) == (
        "downgrade",
        "downgrade",
        "Succeeded",
        "a1",
    )
    assert condition(world.status, "RolledBack").status == "True"
    assert "restore" not in created(world) and events(world, EventReason.DOWNGRADE_FELL_BACK) == []
    world.tick()  # terminal: nothing more happens
    assert world.decisions[-1].creates == [] and world.decisions[-1].events == []


def test_a_missing_downgrade_falls_back_to_the_restore_and_every_message_says_why():
    world = failed_migration()
    world.finish("downgrade", ok=False, reason="DowngradeMissing", message="revision b2 has no downgrade")
    world.tick()
    assert world.phase == Phase.ROLLING_BACK and created(world)[-1] == "restore"
    rollback = world.status.rollback
    assert rollback is not None and (rollback.used, rollback.downgrade) == ("restore", "Missing")
    assert rollback.fallback == "a revision has no downgrade: revision b2 has no downgrade"
    [fell_back] = events(world, EventReason.DOWNGRADE_FELL_BACK)
    assert fell_back.startswith("a revision has no downgrade: revision b2") and "restoring from s3://" in fell_back

    world.finish("restore", data={"tablesRestored": 4}, message="restored")
    world.tick()
    assert world.phase == Phase.ROLLED_BACK
    assert "rollback.method downgrade fell back to the restore: a revision has no downgrade" in (
        world.status.message or ""
    )
    assert created(world).count("downgrade") == 1  # never a second downgrade


def test_a_failed_downgrade_falls_back_to_the_restore_which_still_holds_for_foreign_writes():
    world = failed_migration()
    world.finish("downgrade", ok=False, reason="DowngradeFailed", message="the downgrade of b2 failed", changed=True)
    world.tick()
    assert created(world)[-1] == "restore"
    assert world.status.rollback is not None and world.status.rollback.downgrade == "Failed"
    restore = [c for d in world.decisions for c in d.creates if c.step == "restore"][-1]
    assert restore.manifest["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "hold"

    refuse_restore(world, FOUND)
    assert world.phase == Phase.ROLLBACK_HELD
    assert "fell back to the restore: the downgrade failed: the downgrade of b2 failed" in (world.status.message or "")


def test_a_schema_that_differs_after_the_downgrade_falls_back_to_the_restore():
    world = failed_migration()
    world.finish(
        "downgrade",
        ok=False,
        reason="SchemaMismatch",
        message="downgraded to a1, but the schema is not the one the migration started from (columns)",
        changed=True,
    )
    world.tick()
    assert created(world)[-1] == "restore"
    rollback = world.status.rollback
    assert rollback is not None and (rollback.used, rollback.downgrade) == ("restore", "SchemaDiffers")
    assert rollback.fallback == (
        "the schema after the downgrade is not the backup's: downgraded to a1, but the schema is not the one the "
        "migration started from (columns)"
    )


def test_rows_the_verification_found_lost_go_straight_to_the_restore_without_a_downgrade():
    world = World(make_spec(rollback={"method": "downgrade"}))
    world.run_to(Phase.VERIFYING)
    world.finish(
        "verify",
        ok=False,
        reason="RowCountViolation",
        data={"violations": [{"table": "public.task", "before": 300, "after": 270}]},
        message="task lost 30 rows",
        changed=True,
    )
    world.tick()
    assert world.phase == Phase.ROLLING_BACK and "downgrade" not in created(world)
    assert created(world)[-1] == "restore"
    rollback = world.status.rollback
    assert rollback is not None and rollback.downgrade == "NotAttempted"
    assert rollback.fallback == (
        "the verification found rows lost (public.task: 300 → 270 rows), which a downgrade cannot bring back"
    )


def test_a_vanished_downgrade_job_is_not_repeated_and_the_restore_follows():
    world = failed_migration()
    del world.jobs[world.job("downgrade")]
    world.advance(world.settings.reconcile.job_grace_seconds + 1)
    world.tick()
    assert created(world).count("downgrade") == 1 and created(world)[-1] == "restore"
    assert world.status.rollback is not None and world.status.rollback.downgrade == "Failed"


def test_the_downgrade_waits_for_a_killed_migrate_pod_to_stop():
    world = World(make_spec(rollback={"method": "downgrade"}))
    world.run_to(Phase.MIGRATING)
    migrate = world.job("migrate")
    world.advance(world.run.spec.timeouts.migrate_seconds + world.settings.jobs.deadline_slack_seconds + 1)
    world.jobs[migrate] = running(migrate)  # overran its deadline: the operator deletes it, its pod lingers
    world.tick()
    assert world.phase == Phase.ROLLING_BACK and "downgrade" not in created(world)
    assert "waiting for the migrate pod to stop" in (world.status.message or "")
    world.settle()
    world.tick()
    assert created(world)[-1] == "downgrade"


def test_the_default_method_restores_and_records_no_rollback_method():
    world = failed_migration(method="restore")
    assert created(world)[-1] == "restore" and world.status.rollback is None


def test_a_crash_after_creating_the_downgrade_or_its_fallback_restore_creates_neither_twice():
    world = World(make_spec(rollback={"method": "downgrade"}))
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, reason="MigrationFailed", message="boom in b2", changed=True)
    first = world.decide()
    [create] = first.creates
    world.jobs[create.name] = running(create.name, at=world.now)  # the create went through; the status patch did not
    world.advance(5)
    again = world.decide()  # the old status again
    assert again.creates == [] and again.status.steps.downgrade is not None
    assert again.status.steps.downgrade.job == create.name

    world.tick()
    world.finish("downgrade", ok=False, reason="DowngradeFailed", message="the downgrade of b2 failed", changed=True)
    fell_back = world.decide()
    [restore] = fell_back.creates
    assert restore.step == "restore"
    world.jobs[restore.name] = running(restore.name, at=world.now)
    world.advance(5)
    replayed = world.decide()  # the status from before the fallback: the downgrade's failure is read again
    assert replayed.creates == [] and replayed.status.steps.restore is not None
    assert replayed.status.rollback is not None and replayed.status.rollback.used == "restore"
