"""The wait step: an init container that blocks until the database is at this image's head."""

from __future__ import annotations

import threading
import time

import pytest

from tests.example.support import HEAD, app_dir, error_line, run_cli, run_step

pytestmark = pytest.mark.one_major  # alike on every major: 15 only in make test


def test_wait_returns_at_once_when_the_database_is_at_head(database, monkeypatch, capsys, tmp_path):
    assert run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir()).code == 0
    started = time.monotonic()
    run = run_step(monkeypatch, capsys, tmp_path, "wait", url=database.url, cwd=app_dir())
    assert run.code == 0
    assert run.data["revision"] == HEAD and run.data["checks"] == 1
    assert time.monotonic() - started < 5


def test_wait_times_out_clearly_when_the_database_is_behind(database, monkeypatch, capsys, tmp_path):
    assert (
        run_step(monkeypatch, capsys, tmp_path, "migrate", "--target", "0002", url=database.url, cwd=app_dir()).code
        == 0
    )
    run = run_cli(
        "wait",
        "--timeout-seconds",
        "1",
        "--interval-seconds",
        "0.2",
        url=database.url,
        cwd=app_dir(),
        tmp_path=tmp_path,
    )
    assert run.code == 50
    assert error_line(run.stderr) == "alembic-operator wait: WaitTimeout: database at 0002, image expects 0004 after 1s"
    assert run.stderr.count("\n") == 1


def test_wait_treats_a_missing_version_table_as_not_migrated_yet(database, monkeypatch, capsys, tmp_path):
    run = run_step(
        monkeypatch,
        capsys,
        tmp_path,
        "wait",
        "--timeout-seconds",
        "0.5",
        "--interval-seconds",
        "0.1",
        url=database.url,
        cwd=app_dir(),
    )
    assert run.code == 50
    assert run.message == "database not migrated yet (no version table), image expects 0004 after 0.5s"
    assert run.data["checks"] >= 2


def test_wait_succeeds_once_a_migration_lands(database, monkeypatch, capsys, tmp_path):
    def migrate_later() -> None:
        time.sleep(1.0)
        import asyncio

        from alembic_operator.job.database import urls
        from alembic_operator.job.migrations import alembic_runtime, revisions

        config = revisions.load_config(app_dir() / "alembic.ini")
        asyncio.run(
            alembic_runtime.upgrade(
                config,
                url=urls.DatabaseURL.parse(database.url),
                target="head",
                lock_timeout="10s",
                watch=alembic_runtime.CommitWatch(),
            )
        )

    thread = threading.Thread(target=migrate_later)
    thread.start()
    try:
        run = run_step(
            monkeypatch,
            capsys,
            tmp_path,
            "wait",
            "--timeout-seconds",
            "30",
            "--interval-seconds",
            "0.2",
            url=database.url,
            cwd=app_dir(),
        )
    finally:
        thread.join()
    assert run.code == 0, run.stderr
    assert run.data["checks"] >= 2 and run.data["waitedSeconds"] >= 0.5


def test_wait_keeps_a_newer_database_waiting_and_names_it(database, monkeypatch, capsys, tmp_path):
    assert run_step(monkeypatch, capsys, tmp_path, "migrate", url=database.url, cwd=app_dir()).code == 0
    database.execute("UPDATE alembic_version SET version_num = 'abcdef99'")
    run = run_step(
        monkeypatch,
        capsys,
        tmp_path,
        "wait",
        "--timeout-seconds",
        "0.3",
        "--interval-seconds",
        "0.1",
        url=database.url,
        cwd=app_dir(),
    )
    assert run.code == 50
    assert "database at abcdef99 (not in this image's scripts), image expects 0004" in run.message


def test_wait_on_an_unreachable_database_times_out_without_the_password(tmp_path):
    secret = "n0t-Th3-pw"
    run = run_cli(
        "wait",
        "--timeout-seconds",
        "0.5",
        "--interval-seconds",
        "0.1",
        url=f"postgresql://app:{secret}@127.0.0.1:1/shop",
        cwd=app_dir(),
        tmp_path=tmp_path,
    )
    assert run.code == 50
    line = error_line(run.stderr)
    assert line.startswith(
        "alembic-operator wait: WaitTimeout: database not reachable (cannot connect to "
        "postgresql://app:***@127.0.0.1:1/shop"
    )
    assert secret not in run.stderr + run.stdout + str(run.result)


def test_wait_refuses_scripts_with_multiple_heads(database, tmp_path):
    run = run_cli("wait", url=database.url, cwd=app_dir("multiple-heads"), tmp_path=tmp_path)
    assert run.code == 20
    assert error_line(run.stderr) == (
        "alembic-operator wait: RevisionError: the scripts have multiple heads "
        "(0005a, 0005b); merge them (alembic merge heads)"
    )


def test_wait_without_a_database_url_is_invalid_input(tmp_path):
    run = run_cli("wait", url=None, cwd=app_dir(), tmp_path=tmp_path)
    assert run.code == 2 and error_line(run.stderr) == "alembic-operator wait: InvalidInput: DATABASE_URL is not set"
