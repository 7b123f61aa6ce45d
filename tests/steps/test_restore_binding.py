"""A restore is bound to its backup and database, survives an estimated-count backup, and never waits blind."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors
from alembic_operator.job.database import sessions

from . import checksums, location_for, make_sample, read_json, run_step, step_env

pytestmark = pytest.mark.testbed


def _backup(database: Any, s3: Any, bucket: str, tmp_path: Path, *flags: str) -> dict[str, Any]:
    code, result, _, stderr = run_step(
        ["backup", "--location", location_for(bucket), *flags],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
    )
    assert code == 0 and result is not None, stderr
    return dict(result["data"])


def _restore(database: Any, s3: Any, bucket: str, tmp_path: Path, *flags: str) -> tuple[int, Any, str]:
    code, result, _, stderr = run_step(
        ["restore", "--location", location_for(bucket), "--on-foreign-writes", "restore", *flags],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
    )
    return code, result, stderr


@pytest.mark.one_major  # S3 and checksum logic only (tests/conftest.py)
def test_a_restore_refuses_a_dump_or_checksum_it_was_not_given(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    data = _backup(database, s3, bucket, tmp_path)
    database.execute("DELETE FROM audit.comment WHERE id % 2 = 0")
    after = checksums(database)
    other_uri = data["uri"].replace("run-1", "run-0")
    code, _, stderr = _restore(database, s3, bucket, tmp_path, "--backup-uri", other_uri)
    assert code == errors.InvalidInput.exit_code and "not the backup this restore was given" in stderr
    code, _, stderr = _restore(database, s3, bucket, tmp_path, "--backup-uri", data["uri"], "--backup-sha256", "0" * 64)
    assert code == errors.InvalidInput.exit_code and "SHA-256" in stderr
    assert checksums(database) == after  # refused before anything was touched
    code, _, stderr = _restore(
        database, s3, bucket, tmp_path, "--backup-uri", data["uri"], "--backup-sha256", data["sha256"]
    )
    assert code == 0, stderr


def test_a_backup_with_estimated_counts_restores(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    """Round 1 compared exact counts with planner estimates: such a backup could never be restored."""
    make_sample(database)
    # autovacuum would analyse the table (under load it sometimes does before the backup): the estimate
    # must stay stale for the backup to record one that differs from the rows
    database.execute("ALTER TABLE project SET (autovacuum_enabled = off)")
    database.execute("INSERT INTO project (name) SELECT 'unanalysed ' || g FROM generate_series(1, 33) g")
    before = checksums(database)
    _backup(database, s3, bucket, tmp_path, "--row-counts", "estimated", "--verify", "restore")
    stored = read_json(s3.client(), bucket, "shop/migrations/run-1/manifest.json")
    assert stored["rowCountMode"] == "estimated" and stored["verification"]["ok"] is True
    rows = {tuple(t["name"]): t["rows"] for t in stored["tables"]}
    assert rows[("public", "project")] == 40  # the estimate, not the 73 rows
    database.execute("DELETE FROM project WHERE name LIKE 'unanalysed%'; DELETE FROM audit.comment")
    code, result, stderr = _restore(database, s3, bucket, tmp_path)
    assert code == 0, stderr
    assert "estimated row counts" in result["message"]
    assert checksums(database) == before


def _hold_lock(database: Any, application_name: str) -> subprocess.Popen[str]:
    """A session of ``application_name`` idle in a transaction holding a lock on task (like a killed migrate)."""
    proc = subprocess.Popen(
        [str(database.server.tool("psql")), "-X", "-q", "-d", database.name],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**database.server.env(), "PGAPPNAME": application_name},
    )
    assert proc.stdin is not None
    proc.stdin.write("BEGIN; LOCK TABLE task IN ACCESS SHARE MODE;\n")
    proc.stdin.flush()
    for _ in range(100):
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
            f"AND application_name = '{application_name}'"
        )
        if database.scalar(query) == "1":
            return proc
        time.sleep(0.1)
    raise AssertionError("the lock holder did not start")


def test_a_lock_wait_has_a_limit_and_names_who_holds_the_lock(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    _backup(database, s3, bucket, tmp_path)
    database.execute("DELETE FROM audit.comment WHERE id % 2 = 0")
    after = checksums(database)
    holder = _hold_lock(database, "someone-elses-app")
    try:
        started = time.monotonic()
        code, result, stderr = _restore(database, s3, bucket, tmp_path, "--lock-timeout-seconds", "2")
        assert code == errors.RestoreFailed.exit_code, stderr
        assert time.monotonic() - started < 60
        assert "lock timeout" in result["message"]
        assert "someone-elses-app" in result["message"] and "idle in transaction since" in result["message"]
        assert result["changedDatabase"] is False
        assert checksums(database) == after
    finally:
        holder.kill()
        holder.wait()


def test_the_runs_own_orphaned_migrate_session_is_ended_first(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    before = checksums(database)
    _backup(database, s3, bucket, tmp_path)
    database.execute("DELETE FROM audit.comment WHERE id % 2 = 0")
    orphan = sessions.migrate_application_name(location_for(bucket))
    assert len(orphan.encode()) <= 63 and orphan != sessions.migrate_application_name(location_for(bucket, "run-2"))
    holder = _hold_lock(database, orphan)
    try:
        code, _, stderr = _restore(database, s3, bucket, tmp_path, "--lock-timeout-seconds", "10")
        assert code == 0, stderr
        assert checksums(database) == before
        assert database.scalar(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{orphan}'") == "0"
    finally:
        holder.kill()
        holder.wait()
