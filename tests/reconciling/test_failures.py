"""Step failures and where they lead: Failed without restore, or a rollback."""

from alembic_operator.api.conditions import EventReason
from alembic_operator.api.model import Phase

from .world import BACKUP_DATA, World, condition, make_spec


def test_a_failed_backup_ends_failed_without_restore():
    world = World()
    world.run_to(Phase.BACKING_UP)
    world.finish("backup", ok=False, reason="BackupFailed", message="pg_dump exited 1")
    decision = world.tick()
    assert world.phase == Phase.FAILED
    assert world.status.message == "backup failed: pg_dump exited 1; the database is unchanged"
    assert decision.creates == []
    assert world.status.steps.migrate is None and world.status.steps.restore is None
    assert condition(world.status, "Stalled").reason == "BackupFailed"
    assert condition(world.status, "BackedUp").status == "False"


def test_a_backup_that_reports_success_without_a_checksum_does_not_let_the_migration_start():
    world = World()
    world.run_to(Phase.BACKING_UP)
    world.finish("backup", data={k: v for k, v in BACKUP_DATA.items() if k != "sha256"})
    world.tick()
    assert world.phase == Phase.FAILED
    assert "without its URI, size and SHA-256" in world.status.message
    assert world.status.steps.migrate is None


def test_a_failed_plan_ends_failed_with_the_database_unchanged():
    world = World()
    world.tick()
    world.finish("plan", ok=False, reason="RevisionError", message="unknown target x")
    world.tick()
    assert world.phase == Phase.FAILED
    assert world.status.message == "plan failed: unknown target x; the database is unchanged"


def test_a_migration_failure_without_committed_changes_ends_failed_with_no_restore():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, reason="MigrationFailed", message="column x already exists", changed=False)
    decision = world.tick()
    assert world.phase == Phase.FAILED
    assert "no changes were committed" in world.status.message
    assert "no restore is needed" in world.status.message
    assert decision.creates == []
    assert condition(world.status, "Stalled").reason == "MigrationFailed"


def test_a_migration_failure_with_committed_changes_starts_a_restore():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, reason="MigrationFailed", message="boom in b2", changed=True)
    decision = world.tick()
    assert world.phase == Phase.ROLLING_BACK
    assert [c.step for c in decision.creates] == ["restore"]
    assert EventReason.RESTORE_STARTED in [e.reason for e in decision.events]
    assert EventReason.MIGRATION_FAILED in [e.reason for e in decision.events]


def test_a_migration_failure_without_a_readable_result_is_assumed_to_have_changed_the_database():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, raw="Traceback ... sqlalchemy.exc.ProgrammingError", exit_code=1)
    world.tick()
    assert world.phase == Phase.ROLLING_BACK
    assert "exited with code 1" in world.status.steps.migrate.message


def test_with_rollback_none_a_changed_database_is_left_alone_and_the_message_says_where_the_backup_is():
    world = World(make_spec(rollback={"onFailure": "none"}))
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, message="boom", changed=True)
    decision = world.tick()
    assert world.phase == Phase.FAILED
    assert "may be partially migrated" in world.status.message
    assert BACKUP_DATA["uri"] in world.status.message
    assert decision.creates == []
    assert condition(world.status, "Stalled").reason == "PartiallyMigrated"
    assert EventReason.ROLLBACK_SKIPPED in [e.reason for e in decision.events]


def test_verification_violations_start_a_restore_and_are_copied_to_status():
    world = World()
    world.run_to(Phase.VERIFYING)
    violations = [{"table": "public.orders", "before": 10, "after": 7}]
    world.finish(
        "verify",
        ok=False,
        reason="RowCountViolation",
        message="public.orders lost 3 rows",
        changed=True,
        data={"violations": violations, "tablesChecked": 4},
    )
    decision = world.tick()
    assert world.phase == Phase.ROLLING_BACK
    assert world.status.row_counts.violations == ["public.orders: 10 → 7 rows"]
    assert [c.step for c in decision.creates] == ["restore"]


def test_a_successful_restore_ends_rolled_back_and_stalled():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, message="boom", changed=True)
    world.tick()
    world.finish("restore", data={"uri": BACKUP_DATA["uri"]})
    decision = world.tick()
    assert world.phase == Phase.ROLLED_BACK
    assert world.status.message.startswith("migration failed: boom")
    assert f"restored from {BACKUP_DATA['uri']}" in world.status.message
    assert condition(world.status, "Stalled").status == "True"
    assert condition(world.status, "Stalled").reason == "RolledBack"
    assert condition(world.status, "Ready").status == "False"
    assert condition(world.status, "RolledBack").status == "True"
    assert decision.creates == []


def test_a_failed_restore_ends_rollback_failed_with_the_backup_uri():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, message="boom", changed=True)
    world.tick()
    world.finish("restore", ok=False, reason="ChecksumMismatch", message="sha256 differs")
    world.tick()
    assert world.phase == Phase.ROLLBACK_FAILED
    assert BACKUP_DATA["uri"] in world.status.message
    assert "sha256 differs" in world.status.message
    assert condition(world.status, "Stalled").reason == "RollbackFailed"


def test_terminal_runs_create_nothing_and_stay_terminal():
    world = World()
    world.run_to(Phase.SUCCEEDED)
    before = world.status
    for _ in range(3):
        world.advance(3600)
        decision = world.tick()
        assert decision.actions == []
    assert world.status == before


def test_passwords_in_raw_termination_messages_are_redacted():
    world = World()
    world.run_to(Phase.MIGRATING)
    world.finish("migrate", ok=False, raw="could not connect to postgresql://app:s3cret@db:5432/shop")
    world.tick()
    assert "s3cret" not in world.status.model_dump_json()
