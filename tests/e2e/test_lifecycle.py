"""A MigrationRun from apply to its end, on the real test bed, for each PostgreSQL version
(`make test` runs the cases marked both_majors on 18, `make test-full` all: tests/conftest.py).

The operator runs as its own ServiceAccount (RBAC from alembic_operator.controller.rbac);
every step runs as a Job whose Pod the bed's real node (kubelet + containerd) runs.
"""

from __future__ import annotations

import hashlib

import pytest

from testbed import operating
from tests.e2e import appdb, dbstate


@pytest.mark.both_majors  # a success and a restore through the operator on 18 too
def test_a_run_on_an_empty_database_succeeds_and_records_where_its_backup_is_and_the_metrics_count_it(
    app, database, s3, operator
):
    operating.wait_until_no_run_is_active(app.cluster)
    metrics_before = operator.metrics()
    app.apply(app.manifest("release-1"))
    run = app.wait("release-1")
    status = run["status"]
    assert status["phase"] == "Succeeded", status
    operating.assert_counted_one_succeeded_run(metrics_before, operator.metrics_once_finished(metrics_before), status)
    assert status["toRevision"] == "0004"
    assert status.get("fromRevision") in (None, "", "base")
    backup = status["backup"]
    assert backup["uri"].startswith(f"s3://{app.bucket}/")
    key = backup["uri"].split("/", 3)[3]
    body = s3.client().get_object(Bucket=app.bucket, Key=key)["Body"].read()
    assert backup["sizeBytes"] == len(body)
    assert backup["sha256"] == hashlib.sha256(body).hexdigest()
    assert "rowCounts" in status
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Reconciling"]["status"] == "False"
    assert status["observedGeneration"] == run["metadata"]["generation"]
    assert database.scalar("SELECT version_num FROM alembic_version") == "0004"

    table = app.cluster.kubectl("-n", app.namespace, "get", "mrun").stdout
    header = table.splitlines()[0].split()
    assert header[:8] == ["NAME", "PHASE", "FROM", "TO", "BACKUP", "PROGRESS", "APPROVAL", "AGE"], table
    assert "Succeeded" in table and "0004" in table

    story = [
        "PlanStarted",
        "PlanSucceeded",
        "BackupStarted",
        "BackupSucceeded",
        "MigrationStarted",
        "MigrationSucceeded",
        "VerifyStarted",
        "VerifySucceeded",
        "RunSucceeded",
    ]
    reasons = [reason for _type, reason, _msg in app.events("release-1")]
    assert [r for r in reasons if r in story] == story, reasons


def test_a_migration_that_raises_ends_failed_without_restore_and_the_database_unchanged(app, database):
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 200)
    before = dbstate.capture(database)
    app.apply(app.manifest("raises-1", image="example-app:raises"))
    status = app.wait("raises-1")["status"]
    assert status["phase"] == "Failed", status
    assert "no changes were committed" in status["message"]
    assert "restore" not in (status.get("steps") or {})
    assert dbstate.capture(database) == before


@pytest.mark.both_majors  # a success and a restore through the operator on 18 too
def test_a_migration_that_deletes_rows_is_rolled_back_with_every_row_back(app, database):
    appdb.migrate_to(database, "0004")
    appdb.seed(database, 300)
    before = dbstate.capture(database)
    app.apply(app.manifest("deletes-1", image="example-app:deletes-rows"))
    status = app.wait("deletes-1", timeout=240)["status"]
    assert status["phase"] == "RolledBack", status
    violations = " ".join(status["rowCounts"]["violations"])
    assert "task" in violations
    assert dbstate.capture(database) == before


def test_a_run_whose_secret_is_missing_fails_naming_it_and_touches_nothing(app, database):
    before = dbstate.capture(database)
    manifest = app.manifest("no-secret", spec={"database": {"urlSecretRef": {"name": "does-not-exist"}}})
    app.apply(manifest)
    status = app.wait("no-secret")["status"]
    assert status["phase"] == "Failed", status
    assert "does-not-exist" in status["message"]
    assert dbstate.capture(database) == before


def test_a_run_whose_bucket_does_not_exist_fails_naming_it_and_touches_nothing(app, database):
    appdb.migrate_to(database, "0002")
    before = dbstate.capture(database)
    app.apply(app.manifest("no-bucket", spec={"backup": {"s3": {"bucket": "no-such-bucket-here"}}}))
    status = app.wait("no-bucket")["status"]
    assert status["phase"] == "Failed", status
    assert "no-such-bucket-here" in status["message"]
    assert dbstate.capture(database) == before


def test_a_run_whose_target_revision_is_unknown_fails_naming_it_and_touches_nothing(app, database):
    appdb.migrate_to(database, "0002")
    before = dbstate.capture(database)
    app.apply(app.manifest("bad-target", spec={"migrate": {"target": "ffff9999"}}))
    status = app.wait("bad-target")["status"]
    assert status["phase"] == "Failed", status
    assert "ffff9999" in status["message"]
    assert dbstate.capture(database) == before
