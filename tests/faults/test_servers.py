"""The servers a run depends on fail under it: PostgreSQL restarted, the S3 server stopped, S3 refusing
the credentials, the bucket missing."""

from __future__ import annotations

import signal
import time

import pytest

from testbed import faults
from tests.e2e import dbstate
from tests.faults.support import activity, end_of_rollback, on_pg15, seeded


def _wait_restoring(app, database, run: str) -> int:
    """The restore step's pid, once its pod runs."""
    faults.wait_for(f"{run} to start restoring", lambda: faults.run_phase(app, run) == "RollingBack", timeout=180)
    return faults.wait_for_step_pid(app.cluster, app.namespace, run, "restore", timeout=120)


@on_pg15
@pytest.mark.fault("PostgreSQL restarted during the migration", expected="Failed")
def test_postgres_restarted_mid_migration_fails_the_run_with_nothing_committed(app, database, fault):
    seeded(database)
    before = dbstate.capture(database)
    app.apply(app.manifest("pg-restart", image="example-app:slow"))
    faults.wait_for_step_pid(app.cluster, app.namespace, "pg-restart", "migrate")
    faults.wait_for("the migration to be inside its transaction", lambda: activity(database, "%pg_sleep%"), timeout=60)
    database.server.restart("fast")
    status = app.wait("pg-restart", timeout=240)["status"]
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "Failed", status
    assert "no changes were committed" in status["message"], status["message"]


@on_pg15
@pytest.mark.fault("PostgreSQL restarted during the restore", expected="RolledBack")
def test_postgres_restarted_mid_restore_still_ends_restored(app, database, fault):
    seeded(database)
    faults.fill(database, 150_000)
    before = dbstate.capture(database)
    app.apply(app.manifest("pg-restore", image="example-app:deletes-rows"))
    _wait_restoring(app, database, "pg-restore")
    faults.wait_for("the restore to be loading data", lambda: activity(database, "%COPY%"), timeout=120, interval=0.05)
    database.server.restart("fast")
    status = end_of_rollback(app, "pg-restore", fault, timeout=300)
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "RolledBack", status


@on_pg15
@pytest.mark.fault("S3 server stopped during the backup upload", expected="Failed")
def test_s3_stopped_mid_upload_fails_the_backup_and_leaves_no_complete_object(app, database, s3, fault):
    seeded(database, revision="0003")  # a revision to migrate, so the backup runs
    faults.fill(database, 150_000)
    before = dbstate.capture(database)
    app.apply(app.manifest("s3-upload", spec={"backup": {"compression": "0"}}))
    step = faults.wait_for_step_pid(app.cluster, app.namespace, "s3-upload", "backup")
    dump = faults.wait_for_child(step, "pg_dump", with_arg="--format")
    faults.freeze_after(dump, 2 << 20)  # stopped mid-stream, 2 MiB into the upload
    s3.stop()
    faults.kill(dump, signal.SIGCONT)
    try:
        status = app.wait("s3-upload", timeout=180)["status"]
    finally:
        s3.start()
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "Failed", status
    assert "backup failed" in status["message"], status["message"]
    assert [k for k in s3.keys(app.bucket) if k.endswith(("dump.pgdump", "manifest.json"))] == []
    left = s3.open_uploads(app.bucket)
    if left:  # the abort could not reach a stopped server; an unfinished upload is not an object
        fault.note(f"{len(left)} unfinished multipart upload(s) left (the server was down for the abort)")
    assert "migrate" not in status["steps"], status["steps"]


@on_pg15
@pytest.mark.fault("S3 server stopped during the restore download", expected="RolledBack")
def test_s3_stopped_mid_restore_still_ends_restored(app, database, s3, fault):
    seeded(database)
    faults.fill(database, 150_000)
    before = dbstate.capture(database)
    app.apply(app.manifest("s3-restore", image="example-app:deletes-rows", spec={"backup": {"compression": "0"}}))
    _wait_restoring(app, database, "s3-restore")
    s3.stop()
    time.sleep(3)
    s3.start()
    status = end_of_rollback(app, "s3-restore", fault, timeout=300)
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "RolledBack", status


@on_pg15
@pytest.mark.fault("wrong S3 credentials", expected="Failed")
def test_wrong_s3_credentials_fail_the_backup_naming_the_refusal_and_touch_nothing(app, database, s3, fault):
    seeded(database, revision="0003")  # a revision to migrate, so the backup runs
    before = dbstate.capture(database)
    wrong = "wrong-" + s3.secret_key[::-1]
    app.cluster.kubectl(
        "-n",
        app.namespace,
        "create",
        "secret",
        "generic",
        "s3-wrong",
        f"--from-literal=AWS_ACCESS_KEY_ID={s3.access_key}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={wrong}",
    )
    app.apply(app.manifest("wrong-keys", spec={"backup": {"s3": {"credentialsSecretRef": {"name": "s3-wrong"}}}}))
    status = app.wait("wrong-keys")["status"]
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "Failed", status
    assert "S3 rejected the credentials" in status["message"], status["message"]
    assert "database is unchanged" in status["message"], status["message"]
    assert wrong not in str(status)
    assert s3.keys(app.bucket) == []


@on_pg15
@pytest.mark.fault("bucket missing", expected="Failed")
def test_a_missing_bucket_fails_the_backup_naming_it_and_creates_nothing(app, database, s3, fault):
    seeded(database, revision="0003")  # a revision to migrate, so the backup runs
    before = dbstate.capture(database)
    app.apply(app.manifest("no-bucket", spec={"backup": {"s3": {"bucket": "no-such-bucket-for-faults"}}}))
    status = app.wait("no-bucket")["status"]
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "Failed", status
    assert "no-such-bucket-for-faults" in status["message"], status["message"]
    assert "no-such-bucket-for-faults" not in [b["Name"] for b in s3.client().list_buckets()["Buckets"]]
