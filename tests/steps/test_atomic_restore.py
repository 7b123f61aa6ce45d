"""The restore's one transaction is one transaction: nothing commits before the step's own COMMIT.

pg_restore's script carries transaction control (``BEGIN;``/``COMMIT;`` around large
objects); round 1 let it through, so a restore failing after the large objects had
already committed the dropped schemas and the reloaded data, and still said "unchanged".
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from alembic_operator.api import errors
from alembic_operator.job.database import guarding, loading, pgtools, urls

from . import bin_dirs, checksums, location_for, make_sample, run_step, step_env

pytestmark = pytest.mark.testbed


def _schema_dump(database: Any) -> str:
    """pg_dump --schema-only of the database, the server's own tool: any DDL difference shows."""
    proc = subprocess.run(
        [str(database.server.tool("pg_dump")), "--schema-only", "--restrict-key=test", "-d", database.name],
        env=database.server.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def _state(database: Any) -> tuple[str, dict[str, str], str]:
    large_objects = database.scalar(
        "SELECT count(*) || ':' || coalesce(md5(string_agg(lo_get(oid)::text, ',' ORDER BY oid)), '') "
        "FROM pg_largeobject_metadata"
    )
    return _schema_dump(database), checksums(database), large_objects


def test_large_objects_and_a_failing_grant_leave_the_database_exactly_as_before(
    database: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    role = f"reader_{database.name}"
    database.server.execute(f'DROP ROLE IF EXISTS "{role}"; CREATE ROLE "{role}"')
    make_sample(database)
    database.execute(
        "SELECT lo_from_bytea(0, convert_to(repeat('large object ', g), 'UTF8')) FROM generate_series(1, 5) g;"
        f'GRANT SELECT ON task TO "{role}"'  # ACLs come last in the script: after the large objects
    )
    env = step_env(database_url=database.url, s3=s3)
    code, _, _, stderr = run_step(["backup", "--location", location_for(bucket)], env=env, tmp_path=tmp_path)
    assert code == 0, stderr
    # the migration: rows gone, a large object gone, and the role the backup grants to is dropped
    database.execute(f'DELETE FROM audit.comment WHERE id % 2 = 0; REVOKE ALL ON task FROM "{role}";')
    database.execute("SELECT lo_unlink(min(oid)) FROM pg_largeobject_metadata")
    database.server.execute(f'DROP ROLE "{role}"')
    before = _state(database)

    code, result, _, stderr = run_step(
        ["restore", "--location", location_for(bucket), "--on-foreign-writes", "restore"], env=env, tmp_path=tmp_path
    )
    assert code == errors.RestoreFailed.exit_code, stderr
    assert result is not None and result["changedDatabase"] is False
    assert role in result["message"] and "the database is unchanged" in result["message"]
    assert _state(database) == before  # schema, every row, every large object


def test_a_commit_inside_the_script_aborts_everything(
    database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate: a COMMIT anywhere before the step's own meets a deferred trigger and rolls back."""
    monkeypatch.setenv("PG_BIN_DIRS", bin_dirs())
    database.execute("CREATE TABLE keep (id int); INSERT INTO keep VALUES (1), (2)")
    empty = tmp_path / "empty.pgdump"  # a valid archive holding nothing: pg_restore's script is only its frame
    empty.write_bytes(
        subprocess.run(
            [str(database.server.tool("pg_dump")), "-Fc", "-N", "*", "-d", database.name],
            env=database.server.env(),
            capture_output=True,
            check=True,
        ).stdout
    )
    tools = pgtools.restore_tools(server_major=database.server.major)
    with pytest.raises(errors.RestoreFailed) as failed:
        loading.load(
            url=urls.DatabaseURL.parse(database.url),
            database=None,
            restore_tool=tools[0],
            psql_tool=tools[1],
            sections=[("DELETE FROM public.keep;\nCOMMIT;\nBEGIN;\n", [str(empty)])],
            feed=None,
            guard_sql="",
            accept=lambda: None,
            lock_timeout_ms=5000,
        )
    assert "tried to commit before the restore was complete" in failed.value.message
    assert database.scalar("SELECT count(*) FROM keep") == "2"


def _dump_and_load(database: Any, tmp_path: Path, *, guard_sql: str, before_load: str) -> guarding.Counted | None:
    """pg_dump the database, run ``before_load``, then load the dump back in the restore's one transaction."""
    dump = tmp_path / "db.pgdump"
    subprocess.run(
        [str(database.server.tool("pg_dump")), "-Fc", "-f", str(dump), "-d", database.name],
        env=database.server.env(),
        check=True,
    )
    database.execute(before_load)
    tools = pgtools.restore_tools(server_major=database.server.major)
    return loading.load(
        url=urls.DatabaseURL.parse(database.url),
        database=None,
        restore_tool=tools[0],
        psql_tool=tools[1],
        sections=[(loading.preamble_full(server_major=database.server.major), [str(dump)])],
        feed=None,
        guard_sql=guard_sql,
        accept=lambda: None,
        lock_timeout_ms=5000,
    )


def test_the_counts_a_full_restore_reports_are_every_tables_taken_before_its_commit(
    database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restore's report comes from its own transaction (no second scan after COMMIT): every
    application table, odd names included, the guarded ones and any other, with the committed count."""
    monkeypatch.setenv("PG_BIN_DIRS", bin_dirs())
    odd = '"sch.ema"."we""ird' + "\n" + 'name"'
    database.execute(
        f'CREATE SCHEMA "sch.ema"; CREATE TABLE {odd} (id int); INSERT INTO {odd} SELECT generate_series(1, 7);'
        "CREATE TABLE keep (id int); INSERT INTO keep VALUES (1), (2);"
    )
    counted = _dump_and_load(
        database,
        tmp_path,
        # the guard is told of one table only: the report still holds both
        guard_sql=guarding.count_guard(expected={"public.keep": 2}, count_all=True)
        + "CREATE TABLE public.added_in_the_transaction (id int);",
        before_load="INSERT INTO keep VALUES (3)",  # the restore must bring back 2
    )
    assert counted == {("sch.ema", 'we"ird\nname'): 7, ("public", "keep"): 2}
    assert database.scalar(f"SELECT count(*) FROM {odd}") == "7"
    assert database.scalar("SELECT count(*) FROM keep") == "2"


def test_without_count_all_the_guard_reports_nothing(
    database: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PG_BIN_DIRS", bin_dirs())
    database.execute("CREATE TABLE keep (id int); INSERT INTO keep VALUES (1), (2)")
    counted = _dump_and_load(
        database, tmp_path, guard_sql=guarding.count_guard(expected={"public.keep": 2}), before_load="SELECT 1"
    )
    assert counted is None
    assert database.scalar("SELECT count(*) FROM keep") == "2"
