"""Processes killed for real: the migrate container's process (SIGKILL, like an OOM kill), its Job
deleted by a person, pg_dump killed while it streams into S3, the node's kubelet crashing mid-step."""

from __future__ import annotations

import signal
import time

import pytest

from testbed import faults, tools
from tests.e2e import dbstate
from tests.faults.support import activity, end_of_rollback, on_pg15, seeded


@on_pg15
@pytest.mark.fault("migrate pod's process SIGKILLed mid-migration (slow scenario)", expected="RolledBack")
def test_a_migrate_process_killed_mid_run_is_restored(app, database, fault):
    seeded(database)
    before = dbstate.capture(database)
    app.apply(app.manifest("killed", image="example-app:slow"))
    pid = faults.wait_for_step_pid(app.cluster, app.namespace, "killed", "migrate")
    faults.wait_for("the migration to be inside its transaction", lambda: activity(database, "%pg_sleep%"), timeout=60)
    faults.kill(pid, signal.SIGKILL)
    status = end_of_rollback(app, "killed", fault, timeout=240)
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "RolledBack", status
    assert "137" in status["steps"]["migrate"]["message"] or "signal" in status["steps"]["migrate"]["message"], status[
        "steps"
    ]["migrate"]


@on_pg15
@pytest.mark.fault("migrate Job deleted by a person mid-migration", expected="RolledBack")
def test_a_migrate_job_deleted_mid_run_counts_as_unknown_changes_and_is_restored(app, database, fault):
    seeded(database)
    before = dbstate.capture(database)
    app.apply(app.manifest("deleted", image="example-app:slow"))
    faults.wait_for_step_pid(app.cluster, app.namespace, "deleted", "migrate")
    faults.wait_for("the migration to be inside its transaction", lambda: activity(database, "%pg_sleep%"), timeout=60)
    job = app.get("deleted")["status"]["steps"]["migrate"]["job"]
    app.cluster.kubectl("-n", app.namespace, "delete", "job", job, "--wait=false")
    status = end_of_rollback(app, "deleted", fault, timeout=240)
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "RolledBack", status
    assert "vanished" in status["steps"]["migrate"]["message"], status["steps"]["migrate"]


@on_pg15
@pytest.mark.fault("pg_dump SIGKILLed mid-stream into the S3 multipart upload", expected="Failed")
def test_pg_dump_killed_mid_stream_fails_the_backup_and_leaves_no_complete_looking_object(app, database, s3, fault):
    seeded(database, revision="0003")  # a revision to migrate, so the backup runs
    faults.fill(database, 150_000)
    before = dbstate.capture(database)
    app.apply(app.manifest("dump-killed", spec={"backup": {"compression": "0"}}))
    step = faults.wait_for_step_pid(app.cluster, app.namespace, "dump-killed", "backup")
    dump = faults.wait_for_child(step, "pg_dump", with_arg="--format")
    streamed = faults.freeze_after(dump, 2 << 20)  # stopped mid-stream, 2 MiB into the upload
    fault.note(f"pg_dump killed after writing {streamed >> 20} MiB")
    faults.kill(dump, signal.SIGKILL)
    status = app.wait("dump-killed", timeout=120)["status"]
    fault.saw(status)
    fault.intact(dbstate.capture(database), before)
    assert status["phase"] == "Failed", status
    assert "pg_dump was killed by signal 9" in status["message"], status["message"]
    assert "database is unchanged" in status["message"], status["message"]
    # Safety rule 2: the multipart upload was aborted, nothing that looks like a backup remains.
    assert [k for k in s3.keys(app.bucket) if k.endswith(("dump.pgdump", "manifest.json"))] == []
    assert s3.open_uploads(app.bucket) == []
    assert "migrate" not in status["steps"], status["steps"]


@on_pg15
@pytest.mark.fault("the node's kubelet SIGKILLed mid-migration, restarted 10 s later", expected="Succeeded")
def test_a_kubelet_crash_mid_step_lets_the_step_finish_and_no_step_runs_twice(app, database, kubelet, fault):
    seeded(database)
    before = dbstate.capture(database)
    app.apply(app.manifest("kubelet-crash", image="example-app:slow"))
    faults.wait_for_step_pid(app.cluster, app.namespace, "kubelet-crash", "migrate")
    faults.wait_for("the migration to be inside its transaction", lambda: activity(database, "%pg_sleep%"), timeout=60)
    # Like a crash: the kubelet's process group gets SIGKILL; the containers (under their shims) run on.
    crashed = kubelet.servers.pop("kubelet")
    crashed.stop(sig=signal.SIGKILL)
    assert not crashed.alive()
    time.sleep(10)
    kubelet._start_kubelet(tools.binary("kubelet"))  # the node's own start: Ready again, then on
    status = app.wait("kubelet-crash", timeout=240)["status"]
    fault.saw(status)
    unchanged = {"public.project", "public.alembic_version"}  # the slow scenario inserts one project
    after = dbstate.capture(database)
    fault.intact(
        {t: v for t, v in after.rows.items() if t not in unchanged},
        {t: v for t, v in before.rows.items() if t not in unchanged},
        what="rows of every table the migration does not write",
    )
    assert status["phase"] == "Succeeded", status
    assert {step: s.get("attempt", 1) for step, s in status["steps"].items()} == dict.fromkeys(status["steps"], 1)
