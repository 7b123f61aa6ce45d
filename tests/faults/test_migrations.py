"""Faults inside the migration itself, its deadline and its pod: each run ends in the phase the design
promises, and the database is exactly as before wherever a rollback was due."""

from __future__ import annotations

import pytest

from testbed import faults
from tests.e2e import dbstate
from tests.faults.support import end_of_rollback, on_pg15, seeded


@on_pg15
@pytest.mark.fault("migration raises mid-way (one transaction)", expected="Failed")
def test_a_migration_raising_in_its_transaction_fails_without_restore_and_nothing_changes(app, database, fault):
    seeded(database)
    before = dbstate.capture(database)
    app.apply(app.manifest("raises", image="example-app:raises"))
    status = app.wait("raises")["status"]
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "Failed", status
    assert "no changes were committed" in status["message"], status["message"]
    assert "restore" not in status["steps"], status["steps"]


@on_pg15
@pytest.mark.fault(
    "migration raises after earlier revisions committed (transaction_per_migration)", expected="RolledBack"
)
def test_a_migration_failing_after_committed_revisions_is_restored(app, database, fault):
    seeded(database)
    before = dbstate.capture(database)
    app.apply(app.manifest("per-tx", image="example-app:per-migration-tx"))
    status = end_of_rollback(app, "per-tx", fault, timeout=240)
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "RolledBack", status
    assert "changes were committed" in status["steps"]["migrate"]["message"], status["steps"]["migrate"]


@pytest.mark.fault("data migration commits row loss; verify catches it", expected="RolledBack")
def test_a_data_migration_losing_rows_is_caught_by_verify_and_restored(app, database, fault):
    seeded(database)
    before = dbstate.capture(database)
    app.apply(app.manifest("deletes", image="example-app:deletes-rows"))
    status = app.wait("deletes", timeout=240)["status"]
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "RolledBack", status
    assert any("task" in v for v in status["rowCounts"]["violations"]), status["rowCounts"]


@on_pg15
@pytest.mark.fault("migrate step exceeds spec.timeouts.migrateSeconds (slow migration)", expected="RolledBack")
def test_a_migration_past_its_deadline_is_stopped_and_restored(app, database, fault):
    seeded(database)
    before = dbstate.capture(database)
    app.apply(app.manifest("deadline", image="example-app:slow", spec={"timeouts": {"migrateSeconds": 2}}))
    status = end_of_rollback(app, "deadline", fault, timeout=240)
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "RolledBack", status
    assert "deadline" in status["steps"]["migrate"]["message"], status["steps"]["migrate"]
    assert status["steps"]["migrate"]["reason"] == "DeadlineExceeded", status["steps"]["migrate"]


@on_pg15
@pytest.mark.fault("a step's pod never starts (image not pullable, pendingSeconds: 5)", expected="Failed")
def test_a_pod_that_never_starts_fails_the_run_clearly_instead_of_hanging(app, database, fault):
    seeded(database)
    before = dbstate.capture(database)
    app.apply(app.manifest("no-image", image="example-app:missing", spec={"timeouts": {"pendingSeconds": 5}}))
    status = app.wait("no-image", timeout=120)["status"]
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "Failed", status
    assert "did not start within 5s" in status["message"], status["message"]
    assert "ErrImagePull" in status["message"] or "ImagePullBackOff" in status["message"], status["message"]
    # Deleted Foreground: the Job stays, being deleted, until its Pod is gone, then goes.
    faults.wait_for("the stuck pod's Job stopped", lambda: not any(j["status"].get("active") for j in app.jobs()), 60)


@on_pg15
@pytest.mark.fault("database already at the target revision (no-op run)", expected="Succeeded")
def test_a_run_on_a_database_already_at_its_target_succeeds_without_restore_or_change(app, database, fault):
    seeded(database)
    before = dbstate.capture(database)
    app.apply(app.manifest("noop"))
    status = app.wait("noop")["status"]
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "Succeeded", status
    assert status["fromRevision"] == status["toRevision"] == "0004", status
    assert "restore" not in status["steps"], status["steps"]
