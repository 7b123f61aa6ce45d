"""The downgrade step (rollback.method: downgrade) against real PostgreSQL and S3: backup, a migration that
changed the database, another session's write, then ``alembic-operator downgrade`` in the app's directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.example.support import app_dir, revision, schema_dump, seed

from . import location_for, run_step, step_env

pytestmark = pytest.mark.testbed

on_pg15 = pytest.mark.parametrize("pg", [15], indirect=True, ids=["pg15"])
FOREIGN = "written after the backup"


def migrated_then(scenario: str, database: Any, s3: Any, bucket: str, tmp_path: Path) -> tuple[dict[str, str], str]:
    """The example at 0004 with data, backed up, then migrated in ``scenario``: (the step env, the schema before)."""
    env = step_env(database_url=database.url, s3=s3, location=location_for(bucket))
    code, _, _, stderr = run_step(["migrate"], env=env, tmp_path=tmp_path, cwd=app_dir())
    assert code == 0, stderr
    seed(database, 200)
    code, _, _, stderr = run_step(["backup", "--location", location_for(bucket)], env=env, tmp_path=tmp_path)
    assert code == 0, stderr
    before = schema_dump(database)
    run_step(["migrate"], env=env, tmp_path=tmp_path, cwd=app_dir(scenario))
    assert revision(database) == "0005" and schema_dump(database) != before
    return env, before


def test_a_downgrade_keeps_another_sessions_write_and_ends_with_the_backups_schema(database, s3, bucket, tmp_path):
    env, before = migrated_then("per-migration-tx", database, s3, bucket, tmp_path)  # 0005 committed, 0006 failed
    database.execute(f"INSERT INTO project (name, created_at) VALUES ('{FOREIGN}', now())")  # not the migration's

    code, result, _, stderr = run_step(["downgrade"], env=env, tmp_path=tmp_path, cwd=app_dir("per-migration-tx"))

    assert code == 0, stderr
    assert result is not None and result["ok"] is True
    assert (result["data"]["fromRevision"], result["data"]["toRevision"], result["data"]["applied"]) == (
        "0005",
        "0004",
        ["0005"],
    )
    assert "the schema equals the backup's (fingerprint)" in result["message"]
    assert revision(database) == "0004"
    assert schema_dump(database) == before  # pg_dump --schema-only: the backup's schema
    assert database.scalar(f"SELECT count(*) FROM project WHERE name = '{FOREIGN}'") == "1"


@on_pg15
def test_a_revision_without_a_downgrade_is_refused_before_anything_changes(database, s3, bucket, tmp_path):
    env, _ = migrated_then("no-downgrade", database, s3, bucket, tmp_path)
    migrated = schema_dump(database)

    code, result, _, stderr = run_step(["downgrade"], env=env, tmp_path=tmp_path, cwd=app_dir("no-downgrade"))

    assert code == 43, stderr
    assert result is not None and result["reason"] == "DowngradeMissing" and result["changedDatabase"] is False
    assert result["message"].startswith("revision 0005 has no downgrade (none, pass, or it only raises)")
    assert revision(database) == "0005" and schema_dump(database) == migrated


@on_pg15
def test_a_downgrade_that_leaves_another_schema_fails_naming_what_differs(database, s3, bucket, tmp_path):
    env, _ = migrated_then("partial-downgrade", database, s3, bucket, tmp_path)

    code, result, _, stderr = run_step(["downgrade"], env=env, tmp_path=tmp_path, cwd=app_dir("partial-downgrade"))

    assert code == 45, stderr
    assert result is not None and result["reason"] == "SchemaMismatch" and result["changedDatabase"] is True
    assert result["message"] == (
        "downgraded to 0004, but the schema is not the one the migration started from "
        "(fingerprint differs in: columns, indexes, relations)"
    )
    assert revision(database) == "0004"
