"""The backup itself is damaged before a restore needs it: the restore checks first and touches nothing.

"As the failed migration left it" is measured, not assumed: the same migration
runs by hand on a twin (CREATE DATABASE ... TEMPLATE) of the seeded database,
and the run's database must end byte-for-byte like the twin — no half-restore.
"""

from __future__ import annotations

import contextlib

import pytest

from testbed import faults
from tests.e2e import dbstate
from tests.faults.support import migrate_by_hand, on_pg15, seeded, twin


@pytest.fixture
def failed_migration_state(database):
    """The state the deletes-rows migration leaves, measured on a twin database."""
    seeded(database)
    copy = faults.wait_for("a twin of the seeded database", lambda: twin(database), timeout=30, interval=1)
    try:
        done = migrate_by_hand(copy, "deletes-rows")
        assert done.returncode == 0, done.stderr
        yield dbstate.capture(copy)
    finally:
        with contextlib.suppress(Exception):
            database.server.drop_database(copy.name)


def _damaged_backup_run(app, database, s3, name: str, damage) -> dict:
    app.apply(app.manifest(name, image="example-app:deletes-rows"))
    bucket, key = faults.split_uri(faults.wait_for_backup(app, name))
    damage(s3.client(), bucket, key)
    return app.wait(name, timeout=240)["status"]


@on_pg15
@pytest.mark.fault("dump object corrupted (one byte flipped) before the restore", expected="RollbackFailed")
def test_a_corrupted_dump_is_refused_by_its_checksum_and_the_database_is_not_half_restored(
    app, database, s3, failed_migration_state, fault
):
    before = dbstate.capture(database)
    status = _damaged_backup_run(app, database, s3, "corrupt", faults.flip_byte)
    fault.saw(status)
    fault.intact(dbstate.capture(database), failed_migration_state, what="the database as the failed migration left it")
    assert before != failed_migration_state
    assert status["phase"] == "RollbackFailed", status
    message = status["message"]
    assert "does not match its manifest" in message and "sha256" in message, message
    # a downloaded dump fails before the database is touched; a streamed one, chunk by chunk, may fail
    # inside the restore's transaction: then "unchanged" is said only after the rollback was checked
    assert "nothing was restored" in message or "the database is unchanged" in message, message
    assert "needs a person" in message and status["backup"]["uri"] in message, message
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Stalled"]["status"] == "True", conditions
    assert ("Warning", "RunRollbackFailed") in [(t, r) for t, r, _ in app.events("corrupt")] or any(
        t == "Warning" and "restore" in m.lower() for t, _r, m in app.events("corrupt")
    ), app.events("corrupt")


@on_pg15
@pytest.mark.fault("dump object deleted before the restore", expected="RollbackFailed")
def test_a_deleted_dump_fails_the_rollback_loudly_and_the_database_is_left_as_the_migration_left_it(
    app, database, s3, failed_migration_state, fault
):
    status = _damaged_backup_run(app, database, s3, "deleted-dump", faults.delete_object)
    fault.saw(status)
    fault.intact(dbstate.capture(database), failed_migration_state, what="the database as the failed migration left it")
    assert status["phase"] == "RollbackFailed", status
    message = status["message"]
    assert "missing" in message and "needs a person" in message, message
