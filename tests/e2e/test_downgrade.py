"""rollback.method: downgrade on the real test bed: a failed migration is undone by the app's own downgrade,
and what the application wrote after the backup survives (a restore would have discarded it)."""

from __future__ import annotations

from datetime import datetime

from testbed.apps import TERMINAL
from tests.e2e import appdb, dbstate
from tests.e2e.writer import Writer
from tests.faults.support import on_pg15

pytestmark = on_pg15  # one bed run: the downgrade step itself is proven on 15 and 18 in tests/steps
PAST_BACKUP = {"Migrating", "Verifying", "RollingBack", *TERMINAL}


def test_a_failed_migration_rolled_back_by_downgrade_keeps_writes_made_after_the_backup_and_the_backups_schema(
    app, database
):
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 300)
    schema_before = dbstate.capture(database).schema
    writer = Writer(database.url, prefix="live").start()  # the old version of the app, serving throughout
    try:
        # per-migration-tx: 0005 adds task.archived and commits, then 0006 fails: the database changed
        spec = {"rollback": {"method": "downgrade"}}
        app.apply(app.manifest("down-1", image="example-app:per-migration-tx", spec=spec))
        app.wait("down-1", phases=PAST_BACKUP, timeout=240)
        written_at = datetime.fromisoformat(
            database.scalar("INSERT INTO project (name, created_at) VALUES ('after-backup', now()) RETURNING now()")
        )
        status = app.wait("down-1", timeout=240)["status"]
    finally:
        committed = writer.stop()

    assert status["phase"] == "RolledBack", status
    assert status["rollback"] == {
        "method": "downgrade",
        "used": "downgrade",
        "downgrade": "Succeeded",
        "toRevision": "0004",
    }
    assert "rolled back by downgrade to 0004" in status["message"], status["message"]
    assert "writes since the backup were kept" in status["message"], status["message"]
    assert "restore" not in status["steps"], status["steps"]
    assert status["steps"]["downgrade"]["outcome"] == "Succeeded", status["steps"]["downgrade"]
    # the write landed after the backup and before the downgrade began: a restore would have discarded it
    assert written_at < datetime.fromisoformat(status["steps"]["downgrade"]["startedAt"].replace("Z", "+00:00"))
    assert database.scalar("SELECT count(*) FROM project WHERE name = 'after-backup'") == "1"
    kept = {row[0] for row in database.query("SELECT name FROM project WHERE name LIKE 'live-%'")}
    assert set(committed) <= kept, sorted(set(committed) - kept)[:5]
    assert dbstate.capture(database).schema == schema_before  # pg_dump --schema-only: the backup's schema
    assert database.scalar("SELECT string_agg(version_num, ',') FROM alembic_version") == "0004"
