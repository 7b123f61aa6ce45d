"""The restore step: checksum first, then exactly the backed-up state in one transaction, proven by counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors

from . import (
    REVISION,
    SAMPLE_ROWS,
    assert_parses_into_its_model,
    bin_dirs,
    checksums,
    location_for,
    make_sample,
    read_json,
    run_step,
    step_env,
)

pytestmark = pytest.mark.testbed

RUN = "shop/migrations/run-1/"


def _backup(database: Any, s3: Any, bucket: str, tmp_path: Path, *flags: str) -> dict[str, Any]:
    code, result, _, stderr = run_step(
        ["backup", "--location", location_for(bucket), *flags],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
    )
    assert code == 0, stderr
    assert result is not None
    return result["data"]


def _restore(database: Any, s3: Any, bucket: str, tmp_path: Path, *flags: str, **env: str) -> tuple[int, Any, str]:
    """The restore step; these tests discard the failed migration's writes (the CLI's default holds)."""
    if "--on-foreign-writes" not in flags:
        flags = ("--on-foreign-writes", "restore", *flags)
    code, result, _, stderr = run_step(
        ["restore", "--location", location_for(bucket), *flags],
        env=step_env(database_url=database.url, s3=s3, **env),
        tmp_path=tmp_path,
    )
    return code, result, stderr


def _failed_migration(database: Any) -> None:
    """What a migration that went wrong leaves behind: lost rows, changed JSONB, new objects, new revision."""
    database.execute("""
        DELETE FROM audit.comment WHERE id % 3 = 0;
        DELETE FROM task WHERE id > 2880 AND id NOT IN (SELECT task_id FROM audit.comment);
        UPDATE task SET payload = payload || '{"migrated": true}' WHERE id < 10;
        ALTER TABLE project ADD COLUMN archived boolean DEFAULT false;
        CREATE TABLE label (id serial PRIMARY KEY, name text);
        INSERT INTO label (name) VALUES ('created by the failed migration');
        CREATE SCHEMA reporting; CREATE VIEW reporting.v AS SELECT count(*) FROM task;
        SELECT nextval('ticket_seq');
        UPDATE alembic_version SET version_num = 'ffff00001111';
    """)


def assert_restored(after: dict[str, str], *, before: dict[str, str], migrated: dict[str, str]) -> None:
    """Every row (and JSONB value) as at the backup; each sequence at the larger of its backup and
    migrated value, so no id handed out since the backup is handed out again."""
    rows = {k: v for k, v in before.items() if not k.startswith("seq:")}
    assert {k: v for k, v in after.items() if not k.startswith("seq:")} == rows
    for seq in (k for k in before if k.startswith("seq:")):
        assert after[seq] == max(before[seq], migrated[seq], key=lambda v: int(v.split("/")[0])), seq


@pytest.mark.parametrize("fmt", ["custom", "directory"])
def test_restore_brings_back_exactly_the_backed_up_rows(
    fmt: str, database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    before = checksums(database)
    _backup(database, s3, bucket, tmp_path, "--format", fmt)
    _failed_migration(database)
    migrated = checksums(database)
    code, _, _, stderr = run_step(
        ["verify", "--location", location_for(bucket)],
        env=step_env(database_url=database.url, s3=s3),
        tmp_path=tmp_path,
    )
    assert code == errors.RowCountViolation.exit_code and "task lost" in stderr and "comment lost" in stderr

    code, result, stderr = _restore(database, s3, bucket, tmp_path)
    assert code == 0, stderr
    assert result["data"]["sha256Verified"] is True
    assert result["data"]["tablesRestored"] == 4 and result["data"]["rows"] == sum(SAMPLE_ROWS.values())
    assert_restored(checksums(database), before=before, migrated=migrated)
    assert (
        database.scalar(
            "SELECT to_regclass('label') IS NULL AND to_regnamespace('reporting') IS NULL "
            "OR to_regclass('label') IS NULL"
        )
        == "t"
    )
    assert database.query("SELECT 1 FROM pg_namespace WHERE nspname = 'reporting'") == []
    assert database.scalar("SELECT count(*) FROM information_schema.columns WHERE column_name = 'archived'") == "0"
    assert database.scalar("SELECT version_num FROM alembic_version") == REVISION
    # indexes and the foreign key came back too
    assert (
        database.scalar("SELECT count(*) FROM pg_indexes WHERE indexname IN ('task_payload_gin', 'task_project')")
        == "2"
    )
    assert database.scalar("SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == "2"
    report = read_json(s3.client(), bucket, RUN + "restore.json")
    assert report["ok"] is True and report["tables"]["public.task"] == {"expected": 3000, "actual": 3000}


@pytest.mark.parametrize("fmt", ["custom", "directory"])
def test_a_corrupted_dump_is_refused_before_the_database_is_touched(
    fmt: str, database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    data = _backup(database, s3, bucket, tmp_path, "--format", fmt)
    key = data["uri"].split(f"s3://{bucket}/", 1)[1]
    client = s3.client()
    body = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    _failed_migration(database)
    after_migration = checksums(database)
    code, result, stderr = _restore(database, s3, bucket, tmp_path)
    assert code == errors.ChecksumMismatch.exit_code
    assert "does not match its manifest" in stderr and "nothing was restored" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert result["changedDatabase"] is False
    assert assert_parses_into_its_model(json.dumps(result)).data.retryable is False  # the same dump fails again
    assert checksums(database) == after_migration


def test_a_missing_dump_is_refused(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    make_sample(database)
    data = _backup(database, s3, bucket, tmp_path)
    s3.client().delete_object(Bucket=bucket, Key=data["uri"].split(f"s3://{bucket}/", 1)[1])
    before = checksums(database)
    code, result, stderr = _restore(database, s3, bucket, tmp_path)
    assert code == errors.StorageError.exit_code and "dump.pgdump named by the manifest is missing" in stderr
    assert assert_parses_into_its_model(json.dumps(result)).data.retryable is True  # S3 may come back
    assert checksums(database) == before


def test_restore_of_chosen_tables_leaves_the_others_untouched(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    before = checksums(database)
    _backup(database, s3, bucket, tmp_path)
    database.execute("DELETE FROM audit.comment WHERE id % 2 = 0; INSERT INTO project (name) VALUES ('new')")
    code, result, stderr = _restore(database, s3, bucket, tmp_path, "--table", "audit.comment")
    assert code == 0, stderr
    assert result["data"]["tablesRestored"] == 1 and result["data"]["rows"] == 1500
    after = checksums(database)
    assert after["audit.comment"] == before["audit.comment"]
    assert database.scalar("SELECT count(*) FROM project") == "41"  # not restored: kept the new row


def test_restore_of_a_dropped_table_recreates_it(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    make_sample(database)
    before = checksums(database)
    _backup(database, s3, bucket, tmp_path)
    database.execute("DROP TABLE audit.comment")
    code, _result, stderr = _restore(database, s3, bucket, tmp_path, "--table", "audit.comment")
    assert code == 0, stderr
    assert checksums(database)["audit.comment"] == before["audit.comment"]


def test_restore_of_a_table_not_in_the_backup_is_invalid_input(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    _backup(database, s3, bucket, tmp_path)
    code, _, stderr = _restore(database, s3, bucket, tmp_path, "--table", "nope")
    assert code == errors.InvalidInput.exit_code and "table 'nope' is not in the backup" in stderr


def test_restore_into_another_database(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    make_sample(database)
    before = checksums(database)
    _backup(database, s3, bucket, tmp_path)
    other = database.server.create_database()
    try:
        into = ("--into-url", database.server.url(other))
        code, _, stderr = _restore(database, s3, bucket, tmp_path, *into)
        assert code == errors.InvalidInput.exit_code and "taken from another database" in stderr
        assert database.server.query("SELECT 1 FROM pg_class WHERE relname = 'task'", other) == []  # untouched
        code, _, stderr = _restore(database, s3, bucket, tmp_path, *into, "--allow-other-database")
        assert code == 0, stderr

        class Other:
            def query(self, sql: str) -> Any:
                return database.server.query(sql, other)

            def scalar(self, sql: str) -> str:
                return database.server.scalar(sql, other)

        assert checksums(Other()) == before
    finally:
        database.server.drop_database(other)


def test_pg15_restores_with_pg15_tools_even_when_pg18_tools_come_first(
    pg15: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    """The pitfall: pg_restore 18's script sets transaction_timeout, which PostgreSQL 15 rejects."""
    from testbed.pytest_data import Database

    name = pg15.create_database()
    db = Database(name=name, url=pg15.url(name), server=pg15)
    try:
        make_sample(db)
        before = checksums(db)
        assert bin_dirs().split(":")[0].endswith("pginstall/bin")  # the 18 tools are searched first
        data = _backup(db, s3, bucket, tmp_path)
        assert data["pgDumpVersion"].startswith("15.")
        _failed_migration(db)
        migrated = checksums(db)
        code, result, stderr = _restore(db, s3, bucket, tmp_path)
        assert code == 0, stderr
        assert result["data"]["pgRestoreVersion"].startswith("15.")
        assert_restored(checksums(db), before=before, migrated=migrated)
    finally:
        pg15.drop_database(name)


def test_a_restore_that_fails_midway_rolls_everything_back(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    """A role the archive needs is gone: psql stops on the error and nothing of the restore stays."""
    database.server.execute("DROP ROLE IF EXISTS app_owner_tmp; CREATE ROLE app_owner_tmp")
    make_sample(database)
    database.execute("ALTER TABLE task OWNER TO app_owner_tmp")
    _backup(database, s3, bucket, tmp_path)
    _failed_migration(database)
    database.execute("ALTER TABLE task OWNER TO CURRENT_USER")
    database.server.execute("DROP ROLE app_owner_tmp")
    after_migration = checksums(database)
    code, result, stderr = _restore(database, s3, bucket, tmp_path)
    assert code == errors.RestoreFailed.exit_code
    assert "rolled back" in stderr and "app_owner_tmp" in stderr
    assert result["changedDatabase"] is False
    assert assert_parses_into_its_model(json.dumps(result)).data.retryable is True  # atomic: safe to try again
    assert checksums(database) == after_migration
