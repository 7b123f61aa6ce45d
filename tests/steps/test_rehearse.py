"""The rehearse step against real servers (PostgreSQL 15 and 18, S3): a scratch copy is made from the
run's backup, a command runs against it, and it is dropped — the real database is never written.

The operator's Jobs run exactly these commands (``controller/builders``); the copy is restored with
``pg_restore -j`` from the dump whose SHA-256 the manifest holds.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.job.commands import rehearse

from . import CONSOLE, SAMPLE_ROWS, backed_up, checksums, location_for, make_sample, read_json, run_step, step_env

pytestmark = pytest.mark.testbed

COUNTERS_SQL = """SELECT coalesce(sum(n_tup_ins), 0) || '/' || coalesce(sum(n_tup_upd), 0) || '/' ||
                         coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables"""


def scratch_name() -> str:
    return f"{rehearse.SCRATCH_PREFIX}{secrets.token_hex(4)}"


def exists(database: Any, name: str) -> bool:
    return database.server.scalar(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'") == "1"


def step(database: Any, s3: Any, bucket: str, tmp_path: Path, *argv: str, url: str | None = None) -> tuple:
    code, result, _, stderr = run_step(
        ["rehearse", *argv],
        env=step_env(database_url=url or database.url, s3=s3, location=location_for(bucket)),
        tmp_path=tmp_path,
    )
    return code, result, stderr


def test_a_rehearsal_copies_the_backup_runs_the_step_on_the_copy_and_drops_it_leaving_the_real_database_alone(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    backed_up(database, s3, bucket, tmp_path)
    before = checksums(database)
    counters = database.server.scalar(COUNTERS_SQL, database.name)
    name = scratch_name()

    code, result, stderr = step(database, s3, bucket, tmp_path, "prepare", "--database", name, "--jobs", "2")
    assert code == 0, stderr
    assert result["data"]["database"] == name and "pg_restore -j 2" in result["message"]
    assert exists(database, name)
    assert checksums(_Db(database.server, name)) == before  # an exact copy of the backed-up data

    # The data migration, run against the copy through exec (DATABASE_URL rewritten), then the real verify.
    sql = "DELETE FROM task WHERE id > 2900; UPDATE project SET name = name || '!' WHERE id <= 5"
    code, _, stderr = step(
        database, s3, bucket, tmp_path, "exec", "--database", name, "--run",
        "sh", "-c", f'"{database.server.tool("psql")}" "$DATABASE_URL" -v ON_ERROR_STOP=1 -c "{sql}"',
    )  # fmt: skip
    assert code == 0, stderr
    code, result, stderr = step(
        database, s3, bucket, tmp_path, "exec", "--database", name, "--run",
        str(CONSOLE), "--termination-message-path", str(tmp_path / "verify-on-copy.json"),
        "verify", "--location", location_for(bucket),
    )  # fmt: skip
    assert code == 30, stderr  # the verify step found the copy's lost rows: RowCountViolation
    assert "task" in (tmp_path / "verify-on-copy.json").read_text()

    code, result, stderr = step(database, s3, bucket, tmp_path, "drop", "--database", name)
    assert code == 0, stderr
    assert result["data"]["existed"] is True and not exists(database, name)
    writes = {w["table"]: w for w in result["data"]["writes"]}
    assert writes["public.task"]["deleted"] == 100 and writes["public.project"]["updated"] == 5
    report = read_json(s3.client(), bucket, "shop/migrations/run-1/" + rehearse.REPORT)
    assert report["database"] == name and report["writes"][0]["table"] == "public.task"

    # The real database: same rows (checksums), same schema, no write counted by its statistics.
    assert checksums(database) == before
    assert database.server.scalar(COUNTERS_SQL, database.name) == counters

    code, result, stderr = step(database, s3, bucket, tmp_path, "drop", "--database", name)
    assert code == 0 and result["data"]["existed"] is False, stderr  # dropping twice is fine (restarts)


def test_prepare_refuses_a_database_above_max_database_bytes_and_creates_nothing(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    backed_up(database, s3, bucket, tmp_path)
    name = scratch_name()
    code, result, _ = step(database, s3, bucket, tmp_path, "prepare", "--database", name, "--max-database-bytes", "1")
    assert code == 2 and "rehearsal.maxDatabaseBytes (1)" in result["message"]
    assert not exists(database, name)


def test_prepare_without_createdb_says_so(database: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    backed_up(database, s3, bucket, tmp_path)
    role, password = f"app_{secrets.token_hex(3)}", secrets.token_hex(8)
    database.server.create_role(role, password)
    try:
        database.execute(f'GRANT CONNECT ON DATABASE "{database.name}" TO {role}')
        url = database.url_for(user=role, password=password)
        code, result, _ = step(database, s3, bucket, tmp_path, "prepare", "--database", scratch_name(), url=url)
        assert code == 2 and "needs CREATEDB" in result["message"], result
        assert password not in result["message"]
    finally:
        database.execute(f'REVOKE ALL ON DATABASE "{database.name}" FROM {role}')
        database.server.drop_role(role)


def test_a_name_without_the_scratch_prefix_is_refused_before_anything_is_done(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    make_sample(database)
    code, result, _ = step(database, s3, bucket, tmp_path, "drop", "--database", database.name)
    assert code == 2 and "not a scratch database name" in result["message"]
    assert checksums(database)["public.task"].startswith(f"{SAMPLE_ROWS['public.task']}:")


class _Db:
    """Another database on the same server, as :func:`checksums` reads it."""

    def __init__(self, server: Any, name: str) -> None:
        self.server, self.name = server, name

    def query(self, sql: str) -> Any:
        return self.server.query(sql, self.name)

    def scalar(self, sql: str) -> Any:
        return self.server.scalar(sql, self.name)
