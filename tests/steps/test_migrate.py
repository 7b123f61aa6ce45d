"""The migrate step against real PostgreSQL 15 and 18 (the ``database`` fixture runs each test on both;
`make test` on 15: Alembic, the advisory lock and lock_timeout behave alike on every major)."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.example.support import (
    HEAD,
    app_dir,
    counts,
    error_line,
    finish,
    revision,
    run_cli,
    run_step,
    schema_dump,
    seed,
    spawn_step,
)

pytestmark = pytest.mark.one_major  # alike on every major: 15 only in make test


def test_migrate_on_an_empty_database_reaches_head_and_reports_from_and_to(database, monkeypatch, capsys, tmp_path):
    run = run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir())
    assert run.code == 0, run.stderr
    assert run.result["ok"] is True and run.result["changedDatabase"] is False
    assert run.data["fromRevision"] is None
    assert run.data["toRevision"] == HEAD
    assert run.data["applied"] == ["0001", "0002", "0003", "0004"]
    assert run.data["noop"] is False and run.data["durationSeconds"] >= 0
    assert revision(database) == HEAD
    assert "base to 0004" in run.message


def test_a_second_migrate_finds_nothing_to_do(database, monkeypatch, capsys, tmp_path):
    first = run_step(monkeypatch, capsys, tmp_path, "migrate", "--target", "0002", url=database.url, cwd=app_dir())
    assert first.code == 0 and first.data["toRevision"] == "0002"
    seed(database, 100)
    second = run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir())
    assert second.code == 0
    assert (second.data["fromRevision"], second.data["toRevision"], second.data["applied"]) == (
        "0002",
        HEAD,
        ["0003", "0004"],
    )
    third = run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir())
    assert third.code == 0 and third.data["noop"] is True and third.data["applied"] == []
    assert counts(database)["task"] == 100


def test_a_migration_that_raises_commits_nothing_and_says_so(database, monkeypatch, capsys, tmp_path):
    assert run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir()).code == 0
    seed(database, 300)
    before_schema, before_counts = schema_dump(database), counts(database)

    run = run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir("raises"))

    assert run.code == 22
    assert run.result["reason"] == "MigrationFailed"
    assert run.result["changedDatabase"] is False
    assert "no changes were committed" in run.message
    assert "revision 0005" in run.message and "RuntimeError" in run.message
    assert run.data["failedRevision"] == "0005" and run.data["toRevision"] == HEAD
    assert schema_dump(database) == before_schema
    assert counts(database) == before_counts
    assert revision(database) == HEAD


def test_per_migration_transactions_leave_committed_revisions_and_say_so(database, monkeypatch, capsys, tmp_path):
    assert run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir()).code == 0

    run = run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir("per-migration-tx"))

    assert run.code == 22
    assert run.result["changedDatabase"] is True
    assert run.data["applied"] == ["0005"] and run.data["toRevision"] == "0005"
    assert run.data["failedRevision"] == "0006"
    assert "changes were committed" in run.message
    assert revision(database) == "0005"
    assert (
        database.scalar(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'task' AND column_name = 'archived'"
        )
        == "1"
    )


def _wait_for_advisory_lock(database, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while database.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") == "0":
        assert time.monotonic() < deadline, "the first migrate never took the lock"
        time.sleep(0.05)


def test_two_concurrent_migrates_apply_the_revisions_once(database, tmp_path):
    env = {"SCENARIO_SLEEP_SECONDS": "2"}
    slow = app_dir("slow")
    first = spawn_step("migrate", url=database.url, cwd=slow, term=tmp_path / "a.json", env=env)
    second = spawn_step("migrate", url=database.url, cwd=slow, term=tmp_path / "b.json", env=env)
    runs = [finish(first, tmp_path / "a.json"), finish(second, tmp_path / "b.json")]

    assert [r.code for r in runs] == [0, 0], [r.stderr for r in runs]
    assert sorted(r.data["noop"] for r in runs) == [False, True]
    worker = next(r for r in runs if not r.data["noop"])
    assert worker.data["applied"] == ["0001", "0002", "0003", "0004", "0005"]
    waiter = next(r for r in runs if r.data["noop"])
    assert waiter.data["fromRevision"] == "0005"
    assert database.scalar("SELECT count(*) FROM project WHERE name = 'created-by-0005'") == "1"


def test_a_migrate_that_cannot_get_the_lock_in_time_fails_with_lock_timeout(database, tmp_path):
    # The first holds the lock for 15 s: under CI's load the second's start took over 4 s once, found the
    # migration done and succeeded (ci30), so the lock must outlast a slow process start.
    first = spawn_step(
        "migrate", url=database.url, cwd=app_dir("slow"), term=tmp_path / "a.json", env={"SCENARIO_SLEEP_SECONDS": "15"}
    )
    try:
        _wait_for_advisory_lock(database)
        second = run_cli(
            "migrate", "--lock-wait-seconds", "0.5", url=database.url, cwd=app_dir("slow"), tmp_path=tmp_path
        )
    finally:
        done = finish(first, tmp_path / "a.json")
    assert second.code == 21
    line = error_line(second.stderr)
    assert line.startswith("alembic-operator migrate: LockTimeout: another migration of database")
    assert "0.5s" in line and database.server.password not in second.stderr
    assert second.result["changedDatabase"] is False
    assert done.code == 0 and done.data["toRevision"] == "0005"
    assert database.scalar("SELECT count(*) FROM project WHERE name = 'created-by-0005'") == "1"


def test_lock_timeout_stops_a_migration_queued_behind_a_long_transaction(database, monkeypatch, capsys, tmp_path):
    assert (
        run_step(monkeypatch, capsys, tmp_path, "migrate", "--target", "0003", url=database.url, cwd=app_dir()).code
        == 0
    )
    server = database.server
    holder = subprocess.Popen(
        [
            str(server.tool("psql")),
            "-X",
            "-q",
            "-d",
            database.name,
            "-c",
            "BEGIN; LOCK TABLE task IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30);",
        ],
        env=server.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while (
            database.scalar(
                "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' "
                "AND relation = 'task'::regclass AND granted"
            )
            == "0"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = time.monotonic()
        run = run_step(
            monkeypatch, capsys, tmp_path, "migrate", "--lock-timeout", "500ms", url=database.url, cwd=app_dir()
        )
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert run.code == 22
    assert "lock_timeout 500ms" in run.message and "no changes were committed" in run.message
    assert run.result["changedDatabase"] is False
    assert elapsed < 10
    assert revision(database) == "0003"


def test_an_unknown_database_revision_is_refused_and_nothing_changes(database, monkeypatch, capsys, tmp_path):
    assert (
        run_step(monkeypatch, capsys, tmp_path, "migrate", "--target", "0002", url=database.url, cwd=app_dir()).code
        == 0
    )
    database.execute("UPDATE alembic_version SET version_num = '9f9f9f'")
    before = schema_dump(database)

    run = run_cli("migrate", url=database.url, cwd=app_dir(), tmp_path=tmp_path)

    assert run.code == 20
    assert error_line(run.stderr) == (
        "alembic-operator migrate: RevisionError: database is at revision 9f9f9f "
        "which this image's scripts do not contain; heads are 0004"
    )
    assert run.stderr.count("\n") == 1
    assert schema_dump(database) == before


def test_multiple_heads_are_refused_naming_them(database, tmp_path):
    run = run_cli("migrate", url=database.url, cwd=app_dir("multiple-heads"), tmp_path=tmp_path)
    assert run.code == 20
    assert "multiple heads (0005a, 0005b)" in error_line(run.stderr)
    assert run.stderr.count("\n") == 1
    assert revision(database) is None


def test_an_unknown_target_is_refused_before_connecting(database, tmp_path):
    run = run_cli("migrate", "--target", "does-not-exist", url=database.url, cwd=app_dir(), tmp_path=tmp_path)
    assert run.code == 20
    assert "unknown target revision 'does-not-exist'" in error_line(run.stderr)
    assert revision(database) is None


def test_a_bad_database_url_is_one_line_without_the_password(database, tmp_path):
    secret = "s3cr3t-Pa55word"
    url = database.url_for(password=secret)  # right server, wrong password
    run = run_cli("migrate", url=url, cwd=app_dir(), tmp_path=tmp_path)
    assert run.code == 3
    line = error_line(run.stderr)
    assert line.startswith(
        "alembic-operator migrate: DatabaseUnreachable: cannot connect to postgresql://postgres:***@"
    )
    assert "password authentication failed" in line
    assert secret not in run.stderr + run.stdout + str(run.result)
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1

    refused = run_cli("migrate", url=f"postgresql://u:{secret}@127.0.0.1:1/x", cwd=app_dir(), tmp_path=tmp_path)
    assert refused.code == 3 and secret not in refused.stderr and refused.stderr.count("\n") == 1

    malformed = run_cli("migrate", url=f"mysql://u:{secret}@h/x", cwd=app_dir(), tmp_path=tmp_path)
    assert malformed.code == 2 and secret not in malformed.stderr and malformed.stderr.count("\n") == 1


def test_a_failing_migration_prints_one_error_line_and_no_traceback(database, tmp_path):
    run = run_cli("migrate", url=database.url, cwd=app_dir("raises"), tmp_path=tmp_path)
    assert run.code == 22
    assert "Traceback" not in run.stderr
    assert database.server.password not in run.stderr + run.stdout
    assert error_line(run.stderr).startswith(
        "alembic-operator migrate: MigrationFailed: migration failed in revision 0005: RuntimeError: scenario raises"
    )
    assert run.result["changedDatabase"] is False
    assert revision(database) is None  # 0001-0005 ran in one transaction and all rolled back


def test_a_missing_config_is_invalid_input(database, tmp_path):
    run = run_cli("migrate", "--config", "nope.ini", url=database.url, cwd=tmp_path, tmp_path=tmp_path)
    assert run.code == 2
    assert "Alembic config 'nope.ini' not found" in error_line(run.stderr)


def test_a_commit_inside_a_failed_revision_counts_as_a_change(database, monkeypatch, capsys, tmp_path):
    """Schema and version table unchanged, but an autocommit block committed data: the commit watch sees it."""
    app = tmp_path / "app"
    (app / "versions").mkdir(parents=True)
    example = app_dir()
    (app / "alembic.ini").write_text(
        f"[alembic]\nscript_location = {example}/migrations\nprepend_sys_path = {example}\npath_separator = os\n"
        f"version_locations = {example}/migrations/versions:{app}/versions\nmodels_package = taskapp.models\n"
    )
    (app / "versions" / "0005_autocommit.py").write_text(
        "from alembic import op\nrevision = '0005'\ndown_revision = '0004'\nbranch_labels = None\n"
        "depends_on = None\n\n\ndef upgrade():\n    with op.get_context().autocommit_block():\n"
        "        op.execute(\"INSERT INTO project (name, created_at) VALUES ('autocommitted', now())\")\n"
        "    raise RuntimeError('fails after an autocommit block')\n\n\ndef downgrade():\n    pass\n"
    )
    assert run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir()).code == 0

    run = run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app)

    assert run.code == 22
    assert run.result["changedDatabase"] is True
    assert "a transaction was committed in an autocommit block" in run.message
    assert revision(database) == HEAD
    assert database.scalar("SELECT count(*) FROM project WHERE name = 'autocommitted'") == "1"
